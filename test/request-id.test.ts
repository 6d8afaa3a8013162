import assert from 'node:assert/strict';
import { test } from 'node:test';
import { RequestIds } from '../src/inference/request-id.js';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('generated request ids are RFC 9562 version 7 UUIDs carrying their millisecond', () => {
  const ids = new RequestIds();
  const now = Date.now();
  const id = ids.next(now);
  assert.match(id, V7);
  assert.equal(Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16), now);
  assert.equal(id.length, 36);
});

test('ids of one generator are unique and increase, across milliseconds and the counter carry', () => {
  const ids = new RequestIds();
  const seen = new Set<string>();
  let last = '';
  const t0 = 1_764_000_000_000;
  // 200,000 ids pass the low 16 bits of the counter at least three times.
  for (let i = 0; i < 200_000; i++) {
    const id = ids.next(t0 + Math.floor(i / 5000));
    assert.ok(id > last, `${id} after ${last}`);
    last = id;
    seen.add(id);
  }
  assert.equal(seen.size, 200_000);
  assert.match(last, V7);
});

test('two generators draw different random parts', () => {
  const a = new RequestIds().next(1);
  const b = new RequestIds().next(1);
  assert.notEqual(a.slice(14), b.slice(14));
});
