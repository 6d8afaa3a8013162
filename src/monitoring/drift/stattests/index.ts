import type { StatTest } from '../stat-test.js';

/** Every drift test by Evidently's name. */
export const statTests: ReadonlyMap<string, StatTest> = new Map<string, StatTest>([]);
