export { ClusterDataPlane } from './cluster-plane.js';
export { mergeStatistics } from './merge.js';
export { type Peers, ProcessPeers, throwFirstFailure } from './peers.js';
export type {
  PeerOp,
  PeerResult,
  PrimaryMessage,
  ReadyReport,
  RepositoryOp,
  WorkerMessage,
} from './protocol.js';
export { runSupervisor } from './supervisor.js';
