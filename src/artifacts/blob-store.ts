import type { Readable } from 'node:stream';

export interface BlobInfo {
  /** Lowercase hex SHA-256 of the bytes: the blob's name. */
  sha256: string;
  size: number;
}

/**
 * Content-addressed bytes: a blob is named by its SHA-256, written under a temporary name and
 * published whole, so a reader never sees half a blob. Implementations: a local folder and
 * S3-compatible object storage; one contract suite runs against both.
 *
 * @example
 *   const { sha256 } = await blobs.put(createReadStream('model.onnx'));
 *   const file = await blobs.localPath(sha256); // for ONNX Runtime, which reads files
 */
export interface BlobStore {
  readonly kind: 'folder' | 's3';
  /** Stores the bytes (once: the same content twice is one blob) and returns their digest. */
  put(body: Readable | Uint8Array): Promise<BlobInfo>;
  /** A stream of the blob's bytes, or undefined when there is no such blob. */
  get(sha256: string): Promise<Readable | undefined>;
  stat(sha256: string): Promise<BlobInfo | undefined>;
  delete(sha256: string): Promise<void>;
  /** A local file holding the blob (remote stores download it into a cache once). */
  localPath(sha256: string): Promise<string>;
  close(): Promise<void>;
}

export const SHA256_HEX = /^[0-9a-f]{64}$/;
