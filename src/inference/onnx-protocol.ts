/** Messages between the main thread and an ONNX Runtime worker (see onnx-worker.ts). */
import type { TensorData } from './types.js';

export interface WorkerInit {
  path: string;
  intraOpThreads: number;
  interOpThreads: number;
  graphOptimizationLevel: 'disabled' | 'basic' | 'extended' | 'all';
}

export interface WorkerFeed {
  name: string;
  /** ONNX Runtime's element type name (float32, int64, string, …). */
  type: string;
  dims: number[];
  data: TensorData;
}

export type WorkerValueMetadata =
  | { name: string; isTensor: true; type: string; shape: (number | string)[] }
  | { name: string; isTensor: false };

export type WorkerRequest =
  | { kind: 'run'; id: number; feeds: WorkerFeed[]; outputs: string[] }
  | { kind: 'close' };

export type WorkerReply =
  | { kind: 'loaded'; inputs: WorkerValueMetadata[]; outputs: WorkerValueMetadata[] }
  | { kind: 'load-failed'; message: string }
  | { kind: 'result'; id: number; outputs: WorkerFeed[]; inferNs: number }
  | { kind: 'error'; id: number; message: string }
  | { kind: 'closed' };
