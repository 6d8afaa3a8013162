import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ERROR_CODES, SlipwayError, toSlipwayError } from '../src/errors/index.js';
import { REPO_ROOT } from './helpers.js';

test('every error code is documented in docs/ERRORS.md with its statuses', () => {
  const doc = readFileSync(`${REPO_ROOT}/docs/ERRORS.md`, 'utf8');
  for (const [code, spec] of Object.entries(ERROR_CODES)) {
    const row = doc.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
    assert.ok(row, `${code} is missing from docs/ERRORS.md`);
    assert.ok(row.includes(`| ${spec.http} |`), `${code}: HTTP ${spec.http} not in its row`);
    assert.ok(row.includes(`| ${spec.mlflow} |`), `${code}: MLflow ${spec.mlflow} not in its row`);
  }
});

test('codes are unique, prefixed, and client errors are 4xx', () => {
  for (const [code, spec] of Object.entries(ERROR_CODES)) {
    assert.match(code, /^SLIPWAY_ERR_[A-Z_]+$/);
    assert.ok(spec.http >= 400 && spec.http < 600);
  }
  assert.equal(new SlipwayError('SLIPWAY_ERR_INPUT_SHAPE', 'x').httpStatus, 400);
  assert.equal(new SlipwayError('SLIPWAY_ERR_TIMEOUT', 'x').grpcStatus, 4);
});

test('unknown errors become INTERNAL, known ones pass through', () => {
  const e = new SlipwayError('SLIPWAY_ERR_QUEUE_FULL', 'full', { retryAfterSeconds: 2 });
  assert.equal(toSlipwayError(e), e);
  assert.equal(e.retryAfterSeconds, 2);
  const wrapped = toSlipwayError(new TypeError('boom'));
  assert.equal(wrapped.code, 'SLIPWAY_ERR_INTERNAL');
  assert.equal(wrapped.httpStatus, 500);
});
