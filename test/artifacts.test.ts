/**
 * Artifact storage on every implementation: one blob-store contract suite run against the folder
 * store and the S3 store (on a real S3-compatible server), the S3 store's own failure modes, and
 * the artifact repository over both blob stores on SQLite and PostgreSQL.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { stat as fsStat, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  ArtifactRepository,
  artifactMigrations,
  type BlobStore,
  confinePath,
  FolderBlobStore,
  type S3BlobStoreOptions,
} from '../src/artifacts/index.js';
import { S3BlobStore } from '../src/artifacts/s3-blob-store.js';
import { SlipwayError } from '../src/errors/index.js';
import { Database } from '../src/store/index.js';
import { postgresDatabase, sqliteDatabase, type TestDatabase } from './support/databases.js';
import { createTestBucket, S3_TEST_CREDENTIALS, s3TestClient, startS3Server } from './support/s3.js';

const MIB = 1024 * 1024;
const ARTIFACTS_INDEX = fileURLToPath(new URL('../src/artifacts/index.js', import.meta.url));
const S3_BLOB_STORE = fileURLToPath(new URL('../src/artifacts/s3-blob-store.js', import.meta.url));

const sha256Of = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function readAll(s: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of s) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** A stream of `bytes` in chunks of `chunk` bytes, as a socket would deliver them. */
function streamOf(bytes: Uint8Array, chunk = 64 * 1024): Readable {
  return Readable.from(
    (function* () {
      for (let i = 0; i < bytes.byteLength; i += chunk) yield Buffer.from(bytes.subarray(i, i + chunk));
    })(),
  );
}

async function filesIn(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

function isCode(code: string, text?: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof SlipwayError, `expected a SlipwayError, got ${inspect(err)}`);
    assert.equal(err.code, code, err.message);
    if (text) assert.match(err.message, text);
    return true;
  };
}

/**
 * One blob-store implementation as the suites see it: fresh stores, and a look at what the
 * store holds from outside its interface (which blobs exist, which temp files are left).
 */
interface BlobHarness {
  readonly name: string;
  /** Set in `start` when this implementation cannot run here, with the reason. */
  skip?: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  fresh(): Promise<BlobStore>;
  /** The digests the store holds, sorted. */
  blobs(store: BlobStore): Promise<string[]>;
  /** Where the store stages uploads. */
  tempDir(store: BlobStore): string;
  /** How a child process builds the same store (for the killed-writer test). */
  recipe(store: BlobStore): { kind: 'folder'; root: string } | { kind: 's3'; options: S3BlobStoreOptions };
}

function folderHarness(): BlobHarness {
  let dir = '';
  let n = 0;
  return {
    name: 'folder',
    async start() {
      dir = await mkdtemp(join(tmpdir(), 'slipway-blobs-'));
    },
    stop: () => rm(dir, { recursive: true, force: true }),
    fresh: async () => new FolderBlobStore(join(dir, `store-${++n}`)),
    async blobs(store) {
      const root = join((store as FolderBlobStore).root, 'blobs', 'sha256');
      const out: string[] = [];
      for (const fan of await filesIn(root)) out.push(...(await filesIn(join(root, fan))));
      return out.sort();
    },
    tempDir: (store) => join((store as FolderBlobStore).root, 'tmp'),
    recipe: (store) => ({ kind: 'folder', root: (store as FolderBlobStore).root }),
  };
}

/** Stores on one bucket of a real S3-compatible server, each under its own prefix and cache. */
function s3Harness(): BlobHarness & {
  endpoint: string;
  bucket: string;
  client: S3Client;
  options(): S3BlobStoreOptions;
} {
  let server: Awaited<ReturnType<typeof startS3Server>> | undefined;
  let dir = '';
  let n = 0;
  const made = new WeakMap<BlobStore, S3BlobStoreOptions>();
  const h = {
    name: 's3',
    skip: undefined as string | undefined,
    endpoint: '',
    bucket: '',
    client: undefined as unknown as S3Client,
    async start() {
      server = await startS3Server();
      if ('skip' in server) {
        h.skip = server.skip;
        return;
      }
      h.endpoint = server.endpoint;
      h.client = s3TestClient(server.endpoint);
      h.bucket = await createTestBucket(h.client);
      dir = await mkdtemp(join(tmpdir(), 'slipway-s3-cache-'));
    },
    async stop() {
      h.client?.destroy();
      if (server && 'stop' in server) await server.stop();
      if (dir) await rm(dir, { recursive: true, force: true });
    },
    /** Options for a store under a fresh prefix with a fresh cache. */
    options(): S3BlobStoreOptions {
      n++;
      return {
        bucket: h.bucket,
        prefix: `store-${n}/`,
        endpoint: h.endpoint,
        region: 'us-east-1',
        ...S3_TEST_CREDENTIALS,
        forcePathStyle: true,
        cacheDir: join(dir, `cache-${n}`),
      };
    },
    async fresh() {
      const options = h.options();
      const store = new S3BlobStore(options);
      made.set(store, options);
      return store;
    },
    async blobs(store: BlobStore) {
      const s = store as S3BlobStore;
      const res = await h.client.send(new ListObjectsV2Command({ Bucket: h.bucket, Prefix: s.prefix }));
      const keys = (res.Contents ?? []).map((o) => o.Key!);
      for (const k of keys) assert.match(k, new RegExp(`^${s.prefix}blobs/sha256/[0-9a-f]{64}$`));
      return keys.map((k) => k.slice(-64)).sort();
    },
    tempDir: (store: BlobStore) => join(made.get(store)!.cacheDir, 'tmp'),
    recipe: (store: BlobStore) => ({ kind: 's3' as const, options: made.get(store)! }),
  };
  return h;
}

const folder = folderHarness();
const s3 = s3Harness();
/** One S3 server and one PostgreSQL cluster for the whole file: each takes seconds to start. */
const databases: { name: string; server?: TestDatabase | { skip: string } }[] = [
  { name: 'sqlite' },
  { name: 'postgres' },
];

before(async () => {
  await Promise.all([folder.start(), s3.start()]);
  databases[0].server = await sqliteDatabase();
  databases[1].server = await postgresDatabase();
});
after(async () => {
  await Promise.all([folder.stop(), s3.stop()]);
  for (const d of databases) if (d.server && 'stop' in d.server) await d.server.stop();
});

for (const h of [folder, s3] as BlobHarness[]) {
  describe(`blob store contract: ${h.name}`, () => {
    const open: BlobStore[] = [];
    after(async () => {
      for (const s of open) await s.close();
    });
    const fresh = async () => {
      const s = await h.fresh();
      open.push(s);
      return s;
    };

    test('bytes round-trip: digest is the SHA-256 of the bytes; get, stat and localPath agree', async (t) => {
      if (h.skip) return t.skip(h.skip);
      const store = await fresh();
      const bytes = new TextEncoder().encode('{"weights":[1,2,3]}\n');
      const info = await store.put(bytes);
      assert.deepEqual(info, { sha256: sha256Of(bytes), size: bytes.byteLength });
      assert.deepEqual(await readAll((await store.get(info.sha256))!), Buffer.from(bytes));
      assert.deepEqual(await store.stat(info.sha256), info);
      assert.deepEqual(await readFile(await store.localPath(info.sha256)), Buffer.from(bytes));
      assert.deepEqual(await h.blobs(store), [info.sha256]);
      assert.deepEqual(await filesIn(h.tempDir(store)), []);
    });

    test('a 5 MiB stream round-trips byte for byte', async (t) => {
      if (h.skip) return t.skip(h.skip);
      const store = await fresh();
      const bytes = randomBytes(5 * MIB);
      const info = await store.put(streamOf(bytes));
      assert.equal(info.sha256, sha256Of(bytes));
      assert.equal(info.size, 5 * MIB);
      const back = await readAll((await store.get(info.sha256))!);
      assert.equal(back.byteLength, bytes.byteLength);
      assert.ok(back.equals(bytes));
      assert.ok((await readFile(await store.localPath(info.sha256))).equals(bytes));
    });

    test('an empty blob is a blob', async (t) => {
      if (h.skip) return t.skip(h.skip);
      const store = await fresh();
      const info = await store.put(new Uint8Array(0));
      assert.deepEqual(info, { sha256: sha256Of(new Uint8Array(0)), size: 0 });
      assert.equal((await readAll((await store.get(info.sha256))!)).byteLength, 0);
      assert.deepEqual(await store.stat(info.sha256), info);
    });

    test('the same content twice is the same digest and one blob', async (t) => {
      if (h.skip) return t.skip(h.skip);
      const store = await fresh();
      const bytes = randomBytes(300_000);
      const a = await store.put(bytes);
      const b = await store.put(streamOf(bytes, 1000));
      const c = await store.put(randomBytes(10));
      assert.deepEqual(a, b);
      assert.notEqual(c.sha256, a.sha256);
      assert.deepEqual(await h.blobs(store), [a.sha256, c.sha256].sort());
    });

    test('stat and delete: a deleted blob is gone from stat, get and localPath', async (t) => {
      if (h.skip) return t.skip(h.skip);
      const store = await fresh();
      const keep = await store.put(Buffer.from('keep'));
      const gone = await store.put(Buffer.from('gone'));
      assert.deepEqual(await store.stat(gone.sha256), { sha256: gone.sha256, size: 4 });
      await store.delete(gone.sha256);
      assert.equal(await store.stat(gone.sha256), undefined);
      assert.equal(await store.get(gone.sha256), undefined);
      await assert.rejects(store.localPath(gone.sha256), isCode('SLIPWAY_ERR_ARTIFACT_NOT_FOUND'));
      assert.deepEqual(await h.blobs(store), [keep.sha256]);
      await store.delete(gone.sha256); // deleting again is not an error
      assert.deepEqual(await readAll((await store.get(keep.sha256))!), Buffer.from('keep'));
    });

    test('a blob never stored: get and stat say undefined, localPath says not found', async (t) => {
      if (h.skip) return t.skip(h.skip);
      const store = await fresh();
      const missing = sha256Of(Buffer.from('never stored'));
      assert.equal(await store.get(missing), undefined);
      assert.equal(await store.stat(missing), undefined);
      await assert.rejects(store.localPath(missing), isCode('SLIPWAY_ERR_ARTIFACT_NOT_FOUND', /sha256:/));
    });

    test('a malformed digest is refused by every method, never turned into a path or key', async (t) => {
      if (h.skip) return t.skip(h.skip);
      const store = await fresh();
      for (const bad of ['../../etc/passwd', 'ABC', `${'a'.repeat(63)}/`, `${'A'.repeat(64)}`]) {
        await assert.rejects(store.get(bad), isCode('SLIPWAY_ERR_BAD_REQUEST'), bad);
        await assert.rejects(store.stat(bad), isCode('SLIPWAY_ERR_BAD_REQUEST'), bad);
        await assert.rejects(store.delete(bad), isCode('SLIPWAY_ERR_BAD_REQUEST'), bad);
        await assert.rejects(store.localPath(bad), isCode('SLIPWAY_ERR_BAD_REQUEST'), bad);
      }
    });

    test('concurrent puts of the same content make one blob with the right bytes', async (t) => {
      if (h.skip) return t.skip(h.skip);
      const store = await fresh();
      const bytes = randomBytes(1 * MIB + 17);
      const infos = await Promise.all(
        [4096, 65536, 1000, 1 * MIB].map((chunk) => store.put(streamOf(bytes, chunk))),
      );
      for (const i of infos) assert.deepEqual(i, { sha256: sha256Of(bytes), size: bytes.byteLength });
      assert.deepEqual(await h.blobs(store), [sha256Of(bytes)]);
      assert.deepEqual(await filesIn(h.tempDir(store)), []);
      assert.ok((await readAll((await store.get(sha256Of(bytes)))!)).equals(bytes));
    });

    test('a put whose stream fails midway rejects with that error and leaves no blob and no temp file', async (t) => {
      if (h.skip) return t.skip(h.skip);
      const store = await fresh();
      const first = randomBytes(1 * MIB);
      const body = Readable.from(
        (async function* () {
          yield first;
          await new Promise((r) => setTimeout(r, 20));
          throw new Error('client went away');
        })(),
      );
      await assert.rejects(store.put(body), /client went away/);
      assert.deepEqual(await h.blobs(store), []);
      assert.deepEqual(await filesIn(h.tempDir(store)), []);
      assert.equal(await store.stat(sha256Of(first)), undefined);
    });

    test('a writer killed mid-upload leaves a temp file that never shows as a blob', async (t) => {
      if (h.skip) return t.skip(h.skip);
      const store = await fresh();
      const part = Buffer.alloc(256 * 1024, 'staged but never finished');
      // The child writes `part` and then waits forever for more, as a stalled upload would.
      const script = `
        import { FolderBlobStore } from ${JSON.stringify(ARTIFACTS_INDEX)};
        import { S3BlobStore } from ${JSON.stringify(S3_BLOB_STORE)};
        import { Readable } from 'node:stream';
        const recipe = JSON.parse(process.env.RECIPE);
        const store = recipe.kind === 'folder' ? new FolderBlobStore(recipe.root) : new S3BlobStore(recipe.options);
        const body = new Readable({ read() {} });
        body.push(Buffer.alloc(256 * 1024, 'staged but never finished'));
        setInterval(() => {}, 1000);
        store.put(body);
      `;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
        env: { ...process.env, RECIPE: JSON.stringify(h.recipe(store)) },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => {
        stderr += c.toString();
      });
      const exited = new Promise((r) => child.once('exit', r));
      try {
        const deadline = Date.now() + 20_000;
        for (;;) {
          const temps = await filesIn(h.tempDir(store));
          if (
            temps.length === 1 &&
            (await fsStat(join(h.tempDir(store), temps[0]))).size === part.byteLength
          ) {
            break;
          }
          assert.equal(child.exitCode, null, `the writer exited early: ${stderr}`);
          assert.ok(Date.now() < deadline, 'the writer never staged its bytes');
          await new Promise((r) => setTimeout(r, 25));
        }
      } finally {
        child.kill('SIGKILL');
        await exited;
      }
      assert.equal((await filesIn(h.tempDir(store))).length, 1, 'the killed writer leaves its temp file');
      assert.deepEqual(await h.blobs(store), []);
      assert.equal(await store.stat(sha256Of(part)), undefined);
      assert.equal(await store.get(sha256Of(part)), undefined);
      const whole = await store.put(Buffer.concat([part, Buffer.from('rest')]));
      assert.deepEqual(await h.blobs(store), [whole.sha256]);
      assert.equal(await store.stat(sha256Of(part)), undefined);
    });
  });
}

describe('S3 blob store specifics', () => {
  const open: BlobStore[] = [];
  after(async () => {
    for (const s of open) await s.close();
  });

  /** A store with its own client, counting the commands it sends by name. */
  const counted = (options: S3BlobStoreOptions) => {
    const client = s3TestClient(options.endpoint!);
    const sent: string[] = [];
    client.middlewareStack.add(
      (next, context) => (args) => {
        sent.push(context.commandName!);
        return next(args);
      },
      { step: 'initialize', name: 'countCommands' },
    );
    const store = new S3BlobStore(options, client);
    open.push(store);
    return { store, sent, client };
  };

  test('keys are <prefix>blobs/sha256/<hex>; a prefix without a trailing slash gets one', async (t) => {
    if (s3.skip) return t.skip(s3.skip);
    const options = { ...s3.options(), prefix: `/team-a-${Date.now()}` };
    const store = new S3BlobStore(options);
    open.push(store);
    const { sha256 } = await store.put(Buffer.from('layout'));
    const res = await s3.client.send(
      new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: options.prefix.slice(1) }),
    );
    assert.deepEqual(
      res.Contents?.map((o) => o.Key),
      [`${options.prefix.slice(1)}/blobs/sha256/${sha256}`],
    );
  });

  test('another replica downloads a blob once into its cache, checked, under sha256/<hex>', async (t) => {
    if (s3.skip) return t.skip(s3.skip);
    const writerOptions = s3.options();
    const writer = new S3BlobStore(writerOptions);
    open.push(writer);
    const bytes = randomBytes(2 * MIB + 3);
    const { sha256 } = await writer.put(bytes);
    // The writer keeps its staged copy: localPath costs it no download.
    assert.equal(await writer.localPath(sha256), join(writerOptions.cacheDir, 'sha256', sha256));

    const readerOptions = { ...s3.options(), prefix: writerOptions.prefix };
    const { store: reader, sent } = counted(readerOptions);
    const paths = await Promise.all([1, 2, 3, 4].map(() => reader.localPath(sha256)));
    assert.deepEqual(new Set(paths), new Set([join(readerOptions.cacheDir, 'sha256', sha256)]));
    assert.ok((await readFile(paths[0])).equals(bytes));
    assert.deepEqual(
      sent.filter((c) => c === 'GetObjectCommand'),
      ['GetObjectCommand'],
    );
    assert.deepEqual(await filesIn(join(readerOptions.cacheDir, 'tmp')), []);
    await reader.localPath(sha256);
    assert.equal(
      sent.filter((c) => c === 'GetObjectCommand').length,
      1,
      'the second call is served from the cache',
    );
  });

  test('a put of a blob the bucket already holds uploads nothing', async (t) => {
    if (s3.skip) return t.skip(s3.skip);
    const first = s3.options();
    const bytes = randomBytes(100_000);
    const a = counted(first);
    await a.store.put(bytes);
    assert.deepEqual(a.sent, ['HeadObjectCommand', 'PutObjectCommand']);
    const b = counted({ ...s3.options(), prefix: first.prefix });
    assert.deepEqual(await b.store.put(streamOf(bytes)), { sha256: sha256Of(bytes), size: bytes.byteLength });
    assert.deepEqual(b.sent, ['HeadObjectCommand']);
  });

  test('a blob larger than the part size goes up as a multipart upload', async (t) => {
    if (s3.skip) return t.skip(s3.skip);
    const options = { ...s3.options(), partSize: 5 * MIB };
    const { store, sent } = counted(options);
    const bytes = randomBytes(11 * MIB + 5);
    const info = await store.put(streamOf(bytes));
    assert.deepEqual(info, { sha256: sha256Of(bytes), size: bytes.byteLength });
    assert.deepEqual(
      sent.filter((c) => c !== 'UploadPartCommand'),
      ['HeadObjectCommand', 'CreateMultipartUploadCommand', 'CompleteMultipartUploadCommand'],
    );
    assert.equal(sent.filter((c) => c === 'UploadPartCommand').length, 3);
    assert.ok((await readAll((await store.get(info.sha256))!)).equals(bytes));
    assert.deepEqual(await s3.blobs(store), [info.sha256]);
  });

  test('an upload whose connection drops is sent again with a fresh stream', async (t) => {
    if (s3.skip) return t.skip(s3.skip);
    const { store, sent, client } = counted(s3.options());
    let dropped = 0;
    // Fails the first PutObject after its body stream was handed over, as a reset socket would.
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === 'PutObjectCommand' && dropped++ === 0) {
          throw Object.assign(new Error('socket hang up'), {
            name: 'Error',
            code: 'ECONNRESET',
            $metadata: {},
          });
        }
        return next(args);
      },
      { step: 'finalizeRequest', name: 'dropFirstUpload' },
    );
    const bytes = randomBytes(200_000);
    const info = await store.put(streamOf(bytes));
    assert.equal(info.sha256, sha256Of(bytes));
    assert.deepEqual(sent, ['HeadObjectCommand', 'PutObjectCommand', 'PutObjectCommand']);
    assert.ok((await readAll((await store.get(info.sha256))!)).equals(bytes));
  });

  test('an upload refused for good is not retried', async (t) => {
    if (s3.skip) return t.skip(s3.skip);
    const { store, sent } = counted({ ...s3.options(), bucket: `slipway-missing-${Date.now()}` });
    await assert.rejects(store.put(Buffer.from('x')), isCode('SLIPWAY_ERR_STORAGE_UNAVAILABLE'));
    assert.deepEqual(sent, ['HeadObjectCommand', 'PutObjectCommand']);
  });

  test('an object whose bytes do not match its digest is refused by localPath and not cached', async (t) => {
    if (s3.skip) return t.skip(s3.skip);
    const options = s3.options();
    const store = new S3BlobStore(options);
    open.push(store);
    const claimed = sha256Of(Buffer.from('the real bytes'));
    const key = `${options.prefix}blobs/sha256/${claimed}`;
    await s3.client.send(
      new PutObjectCommand({ Bucket: s3.bucket, Key: key, Body: Buffer.from('tampered') }),
    );
    await assert.rejects(
      store.localPath(claimed),
      isCode('SLIPWAY_ERR_INTERNAL', new RegExp(`${key}.*not cached`)),
    );
    assert.deepEqual(await filesIn(join(options.cacheDir, 'sha256')), []);
    assert.deepEqual(await filesIn(join(options.cacheDir, 'tmp')), []);
  });

  test('a missing bucket is a configuration error naming the bucket and endpoint', async (t) => {
    if (s3.skip) return t.skip(s3.skip);
    const options = { ...s3.options(), bucket: `slipway-missing-${Date.now()}` };
    const store = new S3BlobStore(options);
    open.push(store);
    const named = new RegExp(`bucket '${options.bucket}' at ${options.endpoint}.*does not exist`);
    await assert.rejects(store.checkBucket(), isCode('SLIPWAY_ERR_CONFIG', named));
    // Once serving, the same fault is the server's storage failing: 503, which clients retry.
    await assert.rejects(store.put(Buffer.from('x')), isCode('SLIPWAY_ERR_STORAGE_UNAVAILABLE', named));
    await assert.rejects(
      store.get(sha256Of(Buffer.from('x'))),
      isCode('SLIPWAY_ERR_STORAGE_UNAVAILABLE', named),
    );
    assert.deepEqual(await filesIn(join(options.cacheDir, 'tmp')), []);
    assert.deepEqual(await filesIn(join(options.cacheDir, 'sha256')), []);
  });

  test('an unreachable endpoint at start-up is a configuration error', async (t) => {
    if (s3.skip) return t.skip(s3.skip);
    // Port 9 (discard) on loopback: nothing listens there.
    const store = new S3BlobStore({ ...s3.options(), endpoint: 'http://127.0.0.1:9' });
    open.push(store);
    await assert.rejects(
      store.checkBucket(),
      isCode('SLIPWAY_ERR_CONFIG', /cannot reach bucket '.*' at http:\/\/127\.0\.0\.1:9.*ECONNREFUSED/),
    );
  });

  test('half a key pair is refused at construction', () => {
    assert.throws(
      () =>
        new S3BlobStore({
          bucket: 'b',
          prefix: '',
          region: 'us-east-1',
          accessKeyId: 'only-the-id',
          forcePathStyle: true,
          cacheDir: tmpdir(),
        }),
      isCode('SLIPWAY_ERR_CONFIG', /both/),
    );
  });
});

describe('S3 blob store with refused credentials', () => {
  let server: Awaited<ReturnType<typeof startS3Server>>;
  let dir = '';
  before(async () => {
    server = await startS3Server({ enforceAuth: true });
    dir = await mkdtemp(join(tmpdir(), 'slipway-s3-auth-'));
  });
  after(async () => {
    if ('stop' in server) await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('bad credentials are a configuration error naming bucket and endpoint, never the secret', async (t) => {
    if ('skip' in server) return t.skip(server.skip);
    const secret = 'wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY';
    const options: S3BlobStoreOptions = {
      bucket: 'slipway-artifacts',
      prefix: '',
      endpoint: server.endpoint,
      region: 'us-east-1',
      accessKeyId: 'AKIASLIPWAYTESTKEY01',
      secretAccessKey: secret,
      forcePathStyle: true,
      cacheDir: dir,
    };
    const store = new S3BlobStore(options);
    try {
      const named = new RegExp(`bucket 'slipway-artifacts' at ${server.endpoint} refused the credentials`);
      const attempts = [
        ['SLIPWAY_ERR_CONFIG', () => store.checkBucket()],
        ['SLIPWAY_ERR_STORAGE_UNAVAILABLE', () => store.put(Buffer.from('x'))],
      ] as const;
      for (const [code, attempt] of attempts) {
        await assert.rejects(attempt(), (err) => {
          isCode(code, named)(err);
          assert.ok(!inspect(err, { depth: null, showHidden: true }).includes(secret), 'the secret leaked');
          return true;
        });
      }
      assert.deepEqual(await filesIn(join(dir, 'tmp')), []);
    } finally {
      await store.close();
    }
  });
});

/** Artifact repository over both blob stores and both databases. */
for (const h of [folder, s3] as BlobHarness[]) {
  for (const dbKind of databases) {
    describe(`artifact repository: ${h.name} blobs, ${dbKind.name} index`, () => {
      const closers: (() => Promise<void>)[] = [];
      after(async () => {
        for (const c of closers.reverse()) await c();
      });
      const skipReason = () =>
        h.skip ?? (dbKind.server && 'skip' in dbKind.server ? dbKind.server.skip : undefined);
      const fresh = async () => {
        const db = await Database.open({ url: await (dbKind.server as TestDatabase).fresh() });
        await db.migrate(artifactMigrations);
        const blobs = await h.fresh();
        closers.push(
          () => db.close(),
          () => blobs.close(),
        );
        return { repo: new ArtifactRepository(db, blobs), blobs };
      };
      const text = async (repo: ArtifactRepository, path: string) => {
        const got = await repo.get(path);
        assert.ok(got, `no artifact at ${path}`);
        return (await readAll(got.body)).toString();
      };

      test('put, stat, get and localPath of bytes and of a stream', async (t) => {
        const skip = skipReason();
        if (skip) return t.skip(skip);
        const { repo } = await fresh();
        const small = await repo.put('1/run/artifacts/MLmodel', Buffer.from('flavors: {}\n'));
        assert.equal(small.path, '1/run/artifacts/MLmodel');
        assert.equal(small.sha256, sha256Of(Buffer.from('flavors: {}\n')));
        assert.equal(small.size, 12);
        const big = randomBytes(3 * MIB);
        const model = await repo.put('1/run/artifacts/model.onnx', streamOf(big));
        assert.deepEqual(await repo.stat('1/run/artifacts/model.onnx'), model);
        assert.equal(await text(repo, '1/run/artifacts/MLmodel'), 'flavors: {}\n');
        assert.ok((await readFile(await repo.localPath('1/run/artifacts/model.onnx'))).equals(big));
        assert.equal(await repo.stat('1/run/artifacts/nothing'), undefined);
        assert.equal(await repo.get('1/run/artifacts/nothing'), undefined);
        await assert.rejects(
          repo.localPath('1/run/artifacts/nothing'),
          isCode('SLIPWAY_ERR_ARTIFACT_NOT_FOUND'),
        );
        await assert.rejects(repo.put('', Buffer.from('x')), isCode('SLIPWAY_ERR_ARTIFACT_PATH'));
      });

      test('list gives immediate children with isDir and sizes; a file path lists nothing', async (t) => {
        const skip = skipReason();
        if (skip) return t.skip(skip);
        const { repo } = await fresh();
        for (const [p, body] of [
          ['r/a.txt', 'abc'],
          ['r/dir/b.bin', 'bbbbb'],
          ['r/dir/sub/c.txt', 'c'],
          ['r/dir/sub/deeper/d.txt', 'dd'],
          ['r/dir2/e', ''],
          ['r/dir.txt', 'x'],
          ['rr/other', 'o'],
        ] as const) {
          await repo.put(p, Buffer.from(body));
        }
        assert.deepEqual(await repo.list('r'), [
          { path: 'r/a.txt', isDir: false, size: 3 },
          { path: 'r/dir', isDir: true },
          { path: 'r/dir.txt', isDir: false, size: 1 },
          { path: 'r/dir2', isDir: true },
        ]);
        assert.deepEqual(await repo.list('r/dir/'), [
          { path: 'r/dir/b.bin', isDir: false, size: 5 },
          { path: 'r/dir/sub', isDir: true },
        ]);
        assert.deepEqual(await repo.list(''), [
          { path: 'r', isDir: true },
          { path: 'rr', isDir: true },
        ]);
        assert.deepEqual(await repo.list('r/dir/b.bin'), []);
        assert.deepEqual(await repo.list('r/di'), [], 'a name prefix is not a folder');
        assert.deepEqual(await repo.list('nowhere'), []);
        assert.deepEqual(
          (await repo.filesUnder('r/dir')).map((f) => [f.path, f.size]),
          [
            ['r/dir/b.bin', 5],
            ['r/dir/sub/c.txt', 1],
            ['r/dir/sub/deeper/d.txt', 2],
          ],
        );
        assert.equal((await repo.filesUnder('')).length, 7);
        assert.deepEqual(await repo.filesUnder('r/dir/b.bin'), []);
      });

      test('folders named outside ASCII list and filter like any other', async (t) => {
        const skip = skipReason();
        if (skip) return t.skip(skip);
        const { repo } = await fresh();
        await repo.put('runs/🚀 launch/model.onnx', Buffer.from('m'));
        await repo.put('runs/café/notes.txt', Buffer.from('n'));
        await repo.put('runs/🚀 launchpad/x', Buffer.from('x'));
        assert.deepEqual(
          (await repo.filesUnder('runs/🚀 launch')).map((f) => f.path),
          ['runs/🚀 launch/model.onnx'],
        );
        assert.deepEqual(await repo.list('runs/café'), [
          { path: 'runs/café/notes.txt', isDir: false, size: 1 },
        ]);
        assert.deepEqual(
          (await repo.list('runs')).map((e) => e.path),
          ['runs/café', 'runs/🚀 launch', 'runs/🚀 launchpad'],
        );
      });

      test('link maps a path to a stored blob without new bytes; it checks the blob', async (t) => {
        const skip = skipReason();
        if (skip) return t.skip(skip);
        const { repo } = await fresh();
        const src = await repo.put('1/run/artifacts/model.onnx', Buffer.from('onnx bytes'));
        const before = await h.blobs(repo.blobs);
        const copy = await repo.link('registry/m/1/model.onnx', src.sha256, src.size);
        assert.equal(copy.sha256, src.sha256);
        assert.equal(await text(repo, 'registry/m/1/model.onnx'), 'onnx bytes');
        assert.deepEqual(await h.blobs(repo.blobs), before);
        const missing = sha256Of(Buffer.from('not stored'));
        await assert.rejects(
          repo.link('registry/m/2/model.onnx', missing, 10),
          isCode('SLIPWAY_ERR_ARTIFACT_NOT_FOUND'),
        );
        await assert.rejects(
          repo.link('registry/m/2/model.onnx', src.sha256, src.size + 1),
          isCode('SLIPWAY_ERR_BAD_REQUEST', /size/),
        );
        await assert.rejects(
          repo.link('registry/m/2/model.onnx', 'nothex', 1),
          isCode('SLIPWAY_ERR_BAD_REQUEST'),
        );
        await assert.rejects(repo.link('', src.sha256, src.size), isCode('SLIPWAY_ERR_ARTIFACT_PATH'));
        assert.equal(await repo.stat('registry/m/2/model.onnx'), undefined);
      });

      test('a put over a path replaces its bytes; delete removes the path but not a shared blob', async (t) => {
        const skip = skipReason();
        if (skip) return t.skip(skip);
        const { repo } = await fresh();
        await repo.put('d/f.txt', Buffer.from('first'));
        const second = await repo.put('d/f.txt', streamOf(Buffer.from('second version')));
        assert.equal(await text(repo, 'd/f.txt'), 'second version');
        assert.deepEqual(await repo.list('d'), [{ path: 'd/f.txt', isDir: false, size: 14 }]);
        assert.equal((await repo.stat('d/f.txt'))!.sha256, second.sha256);

        await repo.link('d/g.txt', second.sha256, second.size);
        await repo.delete('d/f.txt');
        assert.equal(await repo.stat('d/f.txt'), undefined);
        assert.equal(await repo.get('d/f.txt'), undefined);
        assert.equal(await text(repo, 'd/g.txt'), 'second version');
        assert.deepEqual(await repo.list('d'), [{ path: 'd/g.txt', isDir: false, size: 14 }]);
        await repo.delete('d/f.txt'); // twice is fine
      });

      test('a path whose blob vanished from the store is reported, not served empty', async (t) => {
        const skip = skipReason();
        if (skip) return t.skip(skip);
        const { repo, blobs } = await fresh();
        const f = await repo.put('x/y', Buffer.from('will vanish'));
        await blobs.delete(f.sha256);
        await assert.rejects(repo.get('x/y'), isCode('SLIPWAY_ERR_ARTIFACT_NOT_FOUND', /sha256:/));
      });

      test('a file and a folder cannot share a path', async (t) => {
        const skip = skipReason();
        if (skip) return t.skip(skip);
        const { repo } = await fresh();
        const f = await repo.put('m/model.onnx', Buffer.from('m'));
        await assert.rejects(
          repo.put('m/model.onnx/inner', Buffer.from('x')),
          isCode('SLIPWAY_ERR_ARTIFACT_PATH', /is a file/),
        );
        await assert.rejects(
          repo.put('m', Buffer.from('x')),
          isCode('SLIPWAY_ERR_ARTIFACT_PATH', /is a folder/),
        );
        await assert.rejects(
          repo.link('m', f.sha256, f.size),
          isCode('SLIPWAY_ERR_ARTIFACT_PATH', /is a folder/),
        );
        assert.deepEqual(await repo.list('m'), [{ path: 'm/model.onnx', isDir: false, size: 1 }]);
      });

      test('paths that escape or hide their meaning are refused by every method', async (t) => {
        const skip = skipReason();
        if (skip) return t.skip(skip);
        const { repo } = await fresh();
        const stored = await repo.put('ok/file', Buffer.from('ok'));
        const bad = [
          '../x',
          'a/../b',
          '/etc/passwd',
          'a/%2e%2e/b',
          'a/%252e%252e/b',
          'a/%2E%2E',
          'a\\b',
          '..\\x',
          'a\u0000b',
          'C:/x',
          'c:x',
          './a',
          'a//b',
          'a/%2fb',
        ];
        for (const p of bad) {
          const refused = isCode('SLIPWAY_ERR_ARTIFACT_PATH');
          assert.throws(() => confinePath(p), refused, JSON.stringify(p));
          await assert.rejects(repo.put(p, Buffer.from('x')), refused, JSON.stringify(p));
          await assert.rejects(repo.link(p, stored.sha256, stored.size), refused, JSON.stringify(p));
          await assert.rejects(repo.get(p), refused, JSON.stringify(p));
          await assert.rejects(repo.stat(p), refused, JSON.stringify(p));
          await assert.rejects(repo.list(p), refused, JSON.stringify(p));
          await assert.rejects(repo.filesUnder(p), refused, JSON.stringify(p));
          await assert.rejects(repo.localPath(p), refused, JSON.stringify(p));
          await assert.rejects(repo.delete(p), refused, JSON.stringify(p));
        }
        assert.deepEqual(
          (await repo.filesUnder('')).map((f) => f.path),
          ['ok/file'],
        );
        // What is allowed: dots inside names, a trailing slash, percent signs that decode to nothing odd.
        assert.equal(confinePath('a/..b/c.'), 'a/..b/c.');
        assert.equal(confinePath('a/b/'), 'a/b');
        assert.equal(confinePath('a/100%25'), 'a/100%25');
      });

      test('a path longer than the index holds (1024 characters) is refused, not cut or failed', async (t) => {
        const skip = skipReason();
        if (skip) return t.skip(skip);
        const { repo } = await fresh();
        const long = `d/${'é'.repeat(1023)}`;
        await assert.rejects(repo.put(long, Buffer.from('x')), isCode('SLIPWAY_ERR_ARTIFACT_PATH', /1024/));
        const ok = await repo.put(`d/${'é'.repeat(1022)}`, Buffer.from('x'));
        await assert.rejects(
          repo.link(long, ok.sha256, ok.size),
          isCode('SLIPWAY_ERR_ARTIFACT_PATH', /1024/),
        );
        assert.equal(await repo.stat(long), undefined);
        assert.deepEqual(
          (await repo.filesUnder('d')).map((f) => f.path.length),
          [1024],
        );
      });
    });
  }
}
