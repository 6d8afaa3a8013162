export { confinePath, isRegistryPath, joinPath, REGISTRY_ROOT } from './artifact-paths.js';
export {
  type ArtifactEntry,
  type ArtifactFile,
  ArtifactRepository,
  artifactMigrations,
} from './artifact-repository.js';
export { type BlobInfo, type BlobStore, SHA256_HEX } from './blob-store.js';
export { FolderBlobStore } from './folder-blob-store.js';
export type { S3BlobStore, S3BlobStoreOptions } from './s3-blob-store.js';

/**
 * Opens the S3 blob store and checks the bucket. The AWS SDK is loaded only here, so a server
 * that keeps artifacts in a folder never holds it in memory.
 */
export async function openS3BlobStore(
  options: import('./s3-blob-store.js').S3BlobStoreOptions,
): Promise<import('./s3-blob-store.js').S3BlobStore> {
  const { S3BlobStore } = await import('./s3-blob-store.js');
  const s3 = new S3BlobStore(options);
  try {
    await s3.checkBucket();
  } catch (err) {
    await s3.close();
    throw err;
  }
  return s3;
}
