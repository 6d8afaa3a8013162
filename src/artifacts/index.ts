export { confinePath, joinPath } from './artifact-paths.js';
export {
  type ArtifactEntry,
  type ArtifactFile,
  ArtifactRepository,
  artifactMigrations,
} from './artifact-repository.js';
export { type BlobInfo, type BlobStore, SHA256_HEX } from './blob-store.js';
export { FolderBlobStore } from './folder-blob-store.js';
export { S3BlobStore, type S3BlobStoreOptions } from './s3-blob-store.js';
