import assert from 'node:assert/strict';
import { test } from 'node:test';
import { resolveModelConfig } from '../src/inference/index.js';
import { selectVersions } from '../src/inference/model-config.js';

test('config.json fields map onto the model config with defaults', () => {
  const c = resolveModelConfig('m', {
    max_batch_size: 32,
    dynamic_batching: {
      max_queue_delay_microseconds: 100,
      preferred_batch_size: [16, 8],
      max_queue_size: 10,
    },
    instance_count: 2,
    intra_op_threads: 1,
    version_policy: { specific: { versions: [1, 3] } },
    feature_names: ['a', 'b'],
    label_names: ['no', 'yes'],
  });
  assert.equal(c.maxBatchSize, 32);
  assert.equal(c.maxQueueDelayUs, 100);
  assert.deepEqual(c.preferredBatchSizes, [8, 16]);
  assert.equal(c.maxQueueSize, 10);
  assert.equal(c.instanceCount, 2);
  assert.deepEqual(c.versionPolicy, { kind: 'specific', versions: [1, 3] });
  assert.deepEqual(c.featureNames, ['a', 'b']);
});

test('bad fields are rejected by name', () => {
  assert.throws(
    () => resolveModelConfig('m', { max_batch_size: -1 }),
    /model 'm' config.json: 'max_batch_size' must be an integer/,
  );
  assert.throws(() => resolveModelConfig('m', { instance_count: 0 }), /'instance_count'/);
  assert.throws(() => resolveModelConfig('m', { batch: 4 }), /'batch' must be one of/);
  assert.throws(
    () => resolveModelConfig('m', { version_policy: { latest: {}, all: {} } }),
    /'version_policy'/,
  );
  assert.throws(
    () => resolveModelConfig('m', { max_batch_size: 4, dynamic_batching: { preferred_batch_size: [8] } }),
    /preferred_batch_size' must be at most max_batch_size/,
  );
  assert.throws(
    () => resolveModelConfig('m', { label_names: ['a', 'a'] }),
    /'label_names' must be an array of distinct strings/,
  );
});

test('version policies select versions on disk', () => {
  assert.deepEqual(selectVersions({ kind: 'latest', numVersions: 1 }, [1, 3, 2]), [3]);
  assert.deepEqual(selectVersions({ kind: 'latest', numVersions: 2 }, [1, 3, 2]), [2, 3]);
  assert.deepEqual(selectVersions({ kind: 'all' }, [2, 1]), [1, 2]);
  assert.deepEqual(selectVersions({ kind: 'specific', versions: [1, 5] }, [1, 2]), [1]);
});
