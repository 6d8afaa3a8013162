import type { StatTest } from '../stat-test.js';
import { chisquare } from './chisquare.js';
import { jensenshannon } from './jensenshannon.js';
import { klDiv } from './kl-div.js';
import { ks } from './ks.js';
import { psi } from './psi.js';
import { wasserstein } from './wasserstein.js';
import { z } from './z.js';

export { chisquare, jensenshannon, klDiv, ks, psi, wasserstein, z };

/** Every drift test by Evidently's name. */
export const statTests: ReadonlyMap<string, StatTest> = new Map<string, StatTest>(
  [ks, chisquare, z, wasserstein, jensenshannon, psi, klDiv].map((t) => [t.name, t]),
);
