/** openStore with an S3 bucket: the settings reach the S3 blob store, and a wrong bucket fails at start. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { openStore } from '../src/app.js';
import { loadSettings } from '../src/config/index.js';
import { createTestBucket, S3_TEST_CREDENTIALS, s3TestClient, startS3Server } from './support/s3.js';

let s3: Awaited<ReturnType<typeof startS3Server>>;
let dir: string;
before(async () => {
  s3 = await startS3Server();
  dir = await mkdtemp(join(tmpdir(), 'slipway-s3-store-'));
});
after(async () => {
  if ('stop' in s3) await s3.stop();
  await rm(dir, { recursive: true, force: true });
});

const env = {
  SLIPWAY_S3_ACCESS_KEY_ID: S3_TEST_CREDENTIALS.accessKeyId,
  SLIPWAY_S3_SECRET_ACCESS_KEY: S3_TEST_CREDENTIALS.secretAccessKey,
};

test('artifacts go to the bucket under the prefix when s3Bucket is set', async (t) => {
  if ('skip' in s3) return t.skip(s3.skip);
  const client = s3TestClient(s3.endpoint);
  const bucket = await createTestBucket(client);
  const store = await openStore(
    loadSettings({
      env,
      flags: { dataDir: dir, s3Bucket: bucket, s3Endpoint: s3.endpoint, s3Prefix: 'team-a/' },
    }),
  );
  try {
    assert.equal(store.blobs.kind, 's3');
    const f = await store.artifacts.put('runs/1/model.onnx', Buffer.from('bytes'));
    const listed = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'team-a/' }));
    assert.deepEqual(
      (listed.Contents ?? []).map((o) => o.Key),
      [`team-a/blobs/sha256/${f.sha256}`],
    );
  } finally {
    await store.close();
  }
});

test('a bucket that does not exist stops the store from opening, naming it', async (t) => {
  if ('skip' in s3) return t.skip(s3.skip);
  await assert.rejects(
    openStore(
      loadSettings({ env, flags: { dataDir: dir, s3Bucket: 'no-such-bucket', s3Endpoint: s3.endpoint } }),
    ),
    /no-such-bucket/,
  );
});
