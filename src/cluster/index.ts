export { ClusterDataPlane } from './cluster-plane.js';
export { mergeStatistics } from './merge.js';
export { type Peers, ProcessPeers, throwFirstFailure } from './peers.js';
export {
  type PeerOp,
  type PeerResult,
  type PrimaryMessage,
  REPLAY_ENV,
  type ReadyReport,
  type RepositoryOp,
  replayedOps,
  type WorkerMessage,
} from './protocol.js';
export { runSupervisor } from './supervisor.js';
