import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { SlipwayError } from '../errors/index.js';
import { type BlobInfo, type BlobStore, SHA256_HEX } from './blob-store.js';
import { tempPath, writeAll, writeHashedTemp } from './temp-file.js';

export interface S3BlobStoreOptions {
  bucket: string;
  /** Key prefix inside the bucket (`team-a/`); a missing trailing `/` is added. */
  prefix: string;
  /** An S3-compatible server (`http://127.0.0.1:9000`); undefined for AWS. */
  endpoint?: string;
  region: string;
  /** Both or neither; neither falls back to the AWS SDK's chain (environment, profile, instance role). */
  accessKeyId?: string;
  secretAccessKey?: string;
  /** `endpoint/bucket/key` addressing, which most S3-compatible servers need. */
  forcePathStyle: boolean;
  /** Local folder for downloaded blobs (ONNX Runtime reads files) and upload staging. */
  cacheDir: string;
  /** Blobs larger than this go up as a multipart upload in parts of this size (default 64 MiB, min 5 MiB). */
  partSize?: number;
}

const MIB = 1024 * 1024;
/** Parts of one multipart upload in flight at once. */
const PART_CONCURRENCY = 4;

/**
 * Blobs as objects `<prefix>blobs/sha256/<hex>` in an S3 bucket, with a local cache. A put
 * stages the bytes in `<cacheDir>/tmp` while hashing them (the key is the digest), uploads them
 * unless the bucket already holds that blob, and keeps the file as the cached copy; `localPath`
 * downloads a blob once, checks its digest, and publishes it into the cache by rename.
 *
 * @example
 *   const blobs = new S3BlobStore({ bucket: 'models', prefix: 'prod/', region: 'us-east-1',
 *     endpoint: 'http://127.0.0.1:9000', forcePathStyle: true, cacheDir: '.slipway/s3-cache' });
 *   await blobs.checkBucket();
 *   const { sha256 } = await blobs.put(createReadStream('model.onnx'));
 */
export class S3BlobStore implements BlobStore {
  readonly kind = 's3' as const;
  readonly bucket: string;
  readonly prefix: string;
  private readonly client: S3Client;
  private readonly ownsClient: boolean;
  private readonly where: string;
  private readonly tmp: string;
  private readonly cache: string;
  private readonly partSize: number;
  /** Downloads in progress, so concurrent `localPath` calls for one blob fetch it once. */
  private readonly downloads = new Map<string, Promise<string>>();

  /** `client` replaces the one built from the options (the options still name the bucket in errors). */
  constructor(options: S3BlobStoreOptions, client?: S3Client) {
    if (!options.bucket) throw new SlipwayError('SLIPWAY_ERR_CONFIG', 'S3 artifact store: bucket is empty');
    if ((options.accessKeyId === undefined) !== (options.secretAccessKey === undefined)) {
      throw new SlipwayError(
        'SLIPWAY_ERR_CONFIG',
        'S3 artifact store: set both the access key id and the secret access key, or neither',
      );
    }
    this.bucket = options.bucket;
    const p = options.prefix.replace(/^\/+/, '');
    this.prefix = p === '' || p.endsWith('/') ? p : `${p}/`;
    this.where = `bucket '${options.bucket}' at ${options.endpoint ? withoutUserinfo(options.endpoint) : `AWS S3 (${options.region})`}`;
    this.tmp = join(options.cacheDir, 'tmp');
    this.cache = join(options.cacheDir, 'sha256');
    this.partSize = Math.max(5 * MIB, options.partSize ?? 64 * MIB);
    this.ownsClient = client === undefined;
    this.client =
      client ??
      new S3Client({
        region: options.region,
        endpoint: options.endpoint,
        forcePathStyle: options.forcePathStyle,
        credentials:
          options.accessKeyId !== undefined && options.secretAccessKey !== undefined
            ? { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey }
            : undefined,
        // Only the checksums S3 requires: the SDK's default CRC32 trailers trip some S3-compatible
        // servers; single-request uploads carry their SHA-256 explicitly instead.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        // The SDK otherwise console.warns about every failed upload; the failure reaches the caller.
        logger: QUIET,
      });
  }

  /** Fails with SLIPWAY_ERR_CONFIG unless the bucket exists and the credentials may use it. */
  async checkBucket(): Promise<void> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
    } catch (err) {
      throw this.failure(err, 'check', undefined, true);
    }
  }

  async put(body: Readable | Uint8Array): Promise<BlobInfo> {
    const { tmpPath, sha256, size } = await writeHashedTemp(this.tmp, body);
    try {
      const key = this.keyOf(sha256);
      const existing = await this.head(key);
      if (existing?.size !== size) {
        if (size > this.partSize) await this.uploadParts(key, tmpPath, size);
        else {
          await this.sendFile(tmpPath, undefined, (Body) =>
            this.client.send(
              new PutObjectCommand({
                Bucket: this.bucket,
                Key: key,
                Body,
                ContentLength: size,
                ChecksumSHA256: Buffer.from(sha256, 'hex').toString('base64'),
              }),
            ),
          ).catch((err) => {
            throw this.failure(err, 'upload', key);
          });
        }
      }
      await mkdir(this.cache, { recursive: true });
      await rename(tmpPath, join(this.cache, sha256));
    } catch (err) {
      await unlink(tmpPath).catch(() => undefined);
      throw err;
    }
    return { sha256, size };
  }

  /** The object's bytes as a stream; read it to the end or destroy it, as it holds a connection. */
  async get(sha256: string): Promise<Readable | undefined> {
    const key = this.keyOf(sha256);
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      return res.Body as Readable;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw this.failure(err, 'download', key);
    }
  }

  async stat(sha256: string): Promise<BlobInfo | undefined> {
    const info = await this.head(this.keyOf(sha256));
    return info && { sha256, size: info.size };
  }

  async delete(sha256: string): Promise<void> {
    const key = this.keyOf(sha256);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      throw this.failure(err, 'delete', key);
    }
    await unlink(join(this.cache, sha256)).catch(() => undefined);
  }

  async localPath(sha256: string): Promise<string> {
    const key = this.keyOf(sha256);
    const file = join(this.cache, sha256);
    if (await exists(file)) return file;
    let pending = this.downloads.get(sha256);
    if (!pending) {
      pending = this.download(sha256, key, file).finally(() => this.downloads.delete(sha256));
      this.downloads.set(sha256, pending);
    }
    return pending;
  }

  async close(): Promise<void> {
    if (this.ownsClient) this.client.destroy();
  }

  private keyOf(sha256: string): string {
    if (!SHA256_HEX.test(sha256)) {
      throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `'${sha256}' is not a SHA-256 hex digest`);
    }
    return `${this.prefix}blobs/sha256/${sha256}`;
  }

  private async head(key: string): Promise<{ size: number } | undefined> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { size: res.ContentLength ?? 0 };
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw this.failure(err, 'stat', key);
    }
  }

  /** A multipart upload (single PutObjects stop at 5 GiB); aborted on any failure so no parts linger. */
  private async uploadParts(key: string, file: string, size: number): Promise<void> {
    const created = await this.client
      .send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key }))
      .catch((err) => {
        throw this.failure(err, 'upload', key);
      });
    const uploadId = created.UploadId!;
    const count = Math.ceil(size / this.partSize);
    const etags: string[] = new Array(count);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < count) {
        const i = next++;
        const start = i * this.partSize;
        const end = Math.min(size, start + this.partSize);
        const res = await this.sendFile(file, { start, end: end - 1 }, (Body) =>
          this.client.send(
            new UploadPartCommand({
              Bucket: this.bucket,
              Key: key,
              UploadId: uploadId,
              PartNumber: i + 1,
              Body,
              ContentLength: end - start,
            }),
          ),
        );
        etags[i] = res.ETag!;
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(PART_CONCURRENCY, count) }, worker));
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) },
        }),
      );
    } catch (err) {
      await this.client
        .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }))
        .catch(() => undefined);
      throw this.failure(err, 'upload', key);
    }
  }

  /**
   * Sends a command whose body streams from (a range of) a file, retrying transient failures
   * with a fresh stream: the SDK cannot retry a request whose stream it has already consumed.
   */
  private async sendFile<T>(
    file: string,
    range: { start: number; end: number } | undefined,
    send: (body: Readable) => Promise<T>,
  ): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const body = createReadStream(file, range);
      try {
        return await send(body);
      } catch (err) {
        if (attempt >= UPLOAD_ATTEMPTS || !isTransient(err)) throw err;
        await new Promise((r) => setTimeout(r, 100 * 2 ** attempt));
      } finally {
        // A failed request may leave the stream unread, holding its file descriptor.
        body.destroy();
      }
    }
  }

  /** Downloads into a temp file, checks the digest, flushes, then renames into the cache. */
  private async download(sha256: string, key: string, file: string): Promise<string> {
    const body = await this.get(sha256);
    if (!body) {
      throw new SlipwayError('SLIPWAY_ERR_ARTIFACT_NOT_FOUND', `no blob sha256:${sha256} in ${this.where}`);
    }
    await mkdir(this.tmp, { recursive: true });
    await mkdir(this.cache, { recursive: true });
    const tmpPath = tempPath(this.tmp);
    const hash = createHash('sha256');
    const fh = await open(tmpPath, 'wx');
    try {
      try {
        for await (const chunk of body) {
          hash.update(chunk as Buffer);
          await writeAll(fh, chunk as Buffer);
        }
      } catch (err) {
        throw this.failure(err, 'download', key);
      }
      const got = hash.digest('hex');
      if (got !== sha256) {
        throw new SlipwayError(
          'SLIPWAY_ERR_INTERNAL',
          `object '${key}' in ${this.where} holds bytes with sha256 ${got}, not ${sha256}; it was not cached`,
        );
      }
      await fh.sync();
      await fh.close();
      await rename(tmpPath, file);
      return file;
    } catch (err) {
      body.destroy();
      await fh.close().catch(() => undefined);
      await unlink(tmpPath).catch(() => undefined);
      throw err;
    }
  }

  /**
   * A SlipwayError for an S3 failure: a missing bucket or refused credentials is a configuration
   * fault naming the bucket and endpoint (never the secret); anything else is internal.
   */
  private failure(err: unknown, op: string, key: string | undefined, startup = false): SlipwayError {
    if (err instanceof SlipwayError) return err;
    const e = err as {
      name?: string;
      code?: string;
      message?: string;
      $metadata?: { httpStatusCode?: number };
    };
    const status = e.$metadata?.httpStatusCode;
    const name = e.name && e.name !== 'Unknown' ? e.name : status ? `HTTP ${status}` : 'Error';
    const what = key === undefined ? this.where : `'${key}' in ${this.where}`;
    // At start-up a bad bucket or key is the operator's configuration; once serving, it is the
    // server's storage failing, which a client may retry (503), never its own mistake (4xx).
    const code = startup ? 'SLIPWAY_ERR_CONFIG' : 'SLIPWAY_ERR_STORAGE_UNAVAILABLE';
    if (name === 'NoSuchBucket' || (key === undefined && status === 404)) {
      return new SlipwayError(code, `S3 artifact store: ${this.where} does not exist`, {
        cause: err,
      });
    }
    if (CREDENTIAL_ERRORS.has(name) || status === 401 || status === 403) {
      return new SlipwayError(
        code,
        `S3 artifact store: ${this.where} refused the credentials (${name}); check the access key id, ` +
          'the secret access key and the permissions on the bucket',
        { cause: err },
      );
    }
    if (startup) {
      return new SlipwayError(
        'SLIPWAY_ERR_CONFIG',
        `S3 artifact store: cannot reach ${this.where}: ${name}${e.code ? ` ${e.code}` : ''}: ${e.message}`,
        { cause: err },
      );
    }
    return new SlipwayError(
      'SLIPWAY_ERR_STORAGE_UNAVAILABLE',
      `S3 ${op} of ${what} failed: ${name}${e.code ? ` ${e.code}` : ''}: ${e.message}`,
      { cause: err },
    );
  }
}

const CREDENTIAL_ERRORS = new Set([
  'CredentialsProviderError',
  'InvalidAccessKeyId',
  'SignatureDoesNotMatch',
  'AccessDenied',
  'InvalidToken',
  'ExpiredToken',
  'Forbidden',
]);

const UPLOAD_ATTEMPTS = 3;

const QUIET = { debug() {}, info() {}, warn() {}, error() {} };

/** A dropped connection, a timeout, throttling or a server fault: worth another try. */
function isTransient(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode;
  if (status === undefined || status === 0) return !CREDENTIAL_ERRORS.has(e.name ?? '');
  return status >= 500 || status === 429 || e.name === 'RequestTimeout';
}

/** A missing key: GetObject says NoSuchKey; HeadObject has no body, so only its 404. */
function isMissing(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  if (e.name === 'NoSuchBucket') return false;
  return e.name === 'NoSuchKey' || e.name === 'NotFound' || e.$metadata?.httpStatusCode === 404;
}

/** An endpoint as errors may show it: no `user:password@`. */
function withoutUserinfo(endpoint: string): string {
  try {
    const u = new URL(endpoint);
    if (!u.username && !u.password) return endpoint;
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return endpoint.replace(/\/\/[^/@]*@/, '//');
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}
