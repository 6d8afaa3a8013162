import type { StatTest } from '../stat-test.js';
import { anderson } from './anderson.js';
import { chisquare } from './chisquare.js';
import { cramerVonMisesTest } from './cramer-von-mises.js';
import { empiricalMmdTest } from './empirical-mmd.js';
import { energyDistanceTest } from './energy-distance.js';
import { eppsSingletonTest } from './epps-singleton.js';
import { fisherExact } from './fisher-exact.js';
import { gTest } from './g-test.js';
import { hellinger } from './hellinger.js';
import { jensenshannon } from './jensenshannon.js';
import { klDiv } from './kl-div.js';
import { ks } from './ks.js';
import { mannWhitney } from './mann-whitney.js';
import { psi } from './psi.js';
import { tTest } from './t-test.js';
import { tvd } from './tvd.js';
import { wasserstein } from './wasserstein.js';
import { z } from './z.js';

export {
  anderson,
  chisquare,
  cramerVonMisesTest,
  empiricalMmdTest,
  energyDistanceTest,
  eppsSingletonTest,
  fisherExact,
  gTest,
  hellinger,
  jensenshannon,
  klDiv,
  ks,
  mannWhitney,
  psi,
  tTest,
  tvd,
  wasserstein,
  z,
};

/** Every drift test of Evidently's catalogue (18), by Evidently's name. */
export const statTests: ReadonlyMap<string, StatTest> = new Map<string, StatTest>(
  [
    ks,
    chisquare,
    z,
    wasserstein,
    jensenshannon,
    psi,
    klDiv,
    hellinger,
    anderson,
    cramerVonMisesTest,
    fisherExact,
    gTest,
    eppsSingletonTest,
    tTest,
    mannWhitney,
    energyDistanceTest,
    empiricalMmdTest,
    tvd,
  ].map((t) => [t.name, t]),
);
