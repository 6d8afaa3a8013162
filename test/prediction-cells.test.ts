import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { PredictionEntry, Tensor } from '../src/inference/index.js';
import { profileCells, tensorCellPlan, tensorPredictionRow } from '../src/monitoring/prediction-rows.js';

/** An entry of `n` rows with these tensors (the fields the window profiles do not read are fixed). */
function entry(inputs: Tensor[], outputs: Tensor[], featureNames?: string[]): PredictionEntry {
  return {
    timeMs: 0,
    model: 'm',
    version: '1',
    protocol: 'rest',
    requestId: 'r',
    latencyUs: 1,
    inputs,
    outputs,
    ...(featureNames ? { featureNames } : {}),
  };
}

const n = 3;
const f32 = (name: string, width: number, shape = [n, width]): Tensor => ({
  name,
  datatype: 'FP32',
  shape,
  data: Float32Array.from({ length: n * width }, (_, i) => i / 8 - 0.5),
});

const cases: Record<string, PredictionEntry> = {
  'one matrix with feature names, a label and two probabilities': entry(
    [f32('x', 3)],
    [
      { name: 'label', datatype: 'INT64', shape: [n], data: BigInt64Array.of(0n, 1n, 1n) },
      f32('probabilities', 2),
    ],
    ['age', 'hours', 'education_num'],
  ),
  'a matrix without names (kept as an array, not profiled)': entry([f32('x', 30)], [f32('y', 1, [n])]),
  'feature names that look like integers, and a repeated one': entry(
    [f32('x', 4)],
    [f32('scores', 2)],
    ['b', '10', '2', 'b'],
  ),
  'feature names of the wrong length': entry([f32('x', 3)], [f32('y', 1, [n, 1])], ['a', 'b']),
  'one input per column, as skl2onnx pipelines take them': entry(
    [
      { name: 'workclass', datatype: 'BYTES', shape: [n, 1], data: ['Private', 'State-gov', 'Private'] },
      { name: 'age', datatype: 'INT64', shape: [n, 1], data: BigInt64Array.of(41n, 2n ** 60n, -3n) },
      { name: 'married', datatype: 'BOOL', shape: [n, 1], data: Uint8Array.of(1, 0, 1) },
      {
        name: 'hours',
        datatype: 'FP64',
        shape: [n, 1],
        data: Float64Array.of(40, Number.NaN, Number.POSITIVE_INFINITY),
      },
      { name: 'half', datatype: 'FP16', shape: [n, 1], data: Uint16Array.of(1, 2, 3) },
    ],
    [
      { name: 'label', datatype: 'BYTES', shape: [n], data: ['<=50K', '>50K', '<=50K'] },
      f32('wide', 17),
      f32('edge', 16),
      { name: '7', datatype: 'INT32', shape: [n], data: Int32Array.of(1, 2, 3) },
    ],
    ['ignored'],
  ),
};

describe('the window profiles’ cell plan for V2 rows', () => {
  for (const [name, e] of Object.entries(cases)) {
    test(`${name}: the same columns and cells as a row object gives`, () => {
      const plan = tensorCellPlan(e);
      for (let i = 0; i < n; i++) {
        const columns: string[] = [];
        const expected: unknown[] = [];
        profileCells(tensorPredictionRow(e, i), columns, expected);
        assert.deepEqual(plan.columns, columns);
        const cells: unknown[] = [];
        plan.cells(i, cells);
        assert.deepEqual(cells, expected);
      }
    });
  }

  test('the plan of a row object with nothing to profile is empty', () => {
    const plan = tensorCellPlan(entry([f32('x', 30)], [f32('y', 20)]));
    assert.deepEqual(plan.columns, []);
    const cells: unknown[] = [];
    plan.cells(0, cells);
    assert.deepEqual(cells, []);
  });
});
