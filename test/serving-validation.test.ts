import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { App } from '../src/app.js';
import { FIXTURES, getJson, postJson, REPO_ROOT, startTestApp, tempRepository } from './helpers.js';

/** The `tabular` fixture's features, with a schema a data scientist would write for them. */
const SCHEMA = {
  format: 'slipway.schema',
  version: 1,
  columns: [
    { name: 'age', type: 'float', nullable: false, range: { min: 0, max: 120 } },
    { name: 'hours_per_week', type: 'float', nullable: false, range: { min: 1, max: 99 } },
    {
      name: 'workclass',
      type: 'categorical',
      nullable: false,
      categories: ['Private', 'State-gov', 'Self-emp'],
    },
    { name: 'income', type: 'categorical', environments: ['training'] },
  ],
  rules: [{ name: 'hours within age', expr: 'hours_per_week <= age * 10' }],
};

const good = { age: 41, hours_per_week: 40, workclass: 'Private' };

describe('serving-time validation against a model version schema', () => {
  let app: App;
  let url: string;
  let remove: () => Promise<void>;

  before(async () => {
    const repo = await tempRepository(['tabular']);
    remove = repo.remove;
    // The same model twice: rejecting invalid rows, and quarantining them.
    const { cp } = await import('node:fs/promises');
    await cp(join(repo.dir, 'tabular'), join(repo.dir, 'tabular_q'), { recursive: true });
    await writeFile(join(repo.dir, 'tabular', '1', 'schema.json'), JSON.stringify(SCHEMA));
    await writeFile(join(repo.dir, 'tabular_q', 'schema.json'), JSON.stringify(SCHEMA));
    await writeFile(
      join(repo.dir, 'tabular_q', 'config.json'),
      JSON.stringify({ max_batch_size: 64, label_names: ['<=50K', '>50K'], data_validation: 'quarantine' }),
    );
    app = await startTestApp({ models: repo.dir });
    url = app.http.url;
  });
  after(async () => {
    await app?.close();
    await remove?.();
  });

  test('valid records are answered as before', async () => {
    const r = await postJson(`${url}/v1/models/tabular:predict`, { instances: [good, { ...good, age: 60 }] });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.predictions.length, 2);
    assert.ok(['<=50K', '>50K'].includes(r.body.predictions[0].label));
    assert.equal(r.body.quarantined, undefined);
  });

  test('reject mode: a request with invalid rows is a 400 listing every problem by 1-based row', async () => {
    const r = await postJson(`${url}/v1/models/tabular:predict`, {
      instances: [
        good,
        { ...good, age: 130 },
        { ...good, workclass: 'Pirate', hours_per_week: null },
        { ...good, hours_per_week: 90, age: 5 },
      ],
    });
    assert.equal(r.status, 400);
    assert.equal(r.body.code, 'SLIPWAY_ERR_INVALID_ROWS');
    assert.match(r.body.error, /3 of 4 rows break the schema of model 'tabular' version 1/);
    assert.deepEqual(r.body.details, [
      { row: 2, field: 'age', rule: 'range', value: 130, expected: '0..120' },
      { row: 3, field: 'hours_per_week', rule: 'nullable', value: null, expected: 'a value (not missing)' },
      {
        row: 3,
        field: 'workclass',
        rule: 'categories',
        value: 'Pirate',
        expected: 'one of "Private", "State-gov", "Self-emp"',
      },
      {
        row: 4,
        field: 'hours within age',
        rule: 'expression',
        value: { hours_per_week: 90, age: 5 },
        expected: 'hours_per_week <= age * 10',
      },
    ]);
  });

  test('reject mode: a training-only label in a serving request is refused for every row', async () => {
    const r = await postJson(`${url}/v1/models/tabular:predict`, {
      instances: [{ ...good, income: '>50K' }],
    });
    assert.equal(r.status, 400);
    assert.deepEqual(r.body.details[0], {
      row: null,
      field: 'income',
      rule: 'absent',
      value: 'income',
      expected: 'the column absent in serving (it belongs to training)',
    });
  });

  test('reject mode: V2 infer checks the same columns, one input per column', async () => {
    const body = (ages: number[]) => ({
      inputs: [
        { name: 'age', datatype: 'FP32', shape: [ages.length, 1], data: ages },
        { name: 'hours_per_week', datatype: 'FP32', shape: [ages.length, 1], data: ages.map(() => 40) },
        { name: 'workclass', datatype: 'BYTES', shape: [ages.length, 1], data: ages.map(() => 'Private') },
      ],
    });
    const ok = await postJson(`${url}/v2/models/tabular/infer`, body([41, 50]));
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const badAge = await postJson(`${url}/v2/models/tabular/infer`, body([41, 130]));
    assert.equal(badAge.status, 400);
    assert.deepEqual(badAge.body.details, [
      { row: 2, field: 'age', rule: 'range', value: 130, expected: '0..120' },
    ]);
  });

  test('quarantine mode: valid rows are answered, invalid ones stored with their reasons and counted', async () => {
    const r = await postJson(`${url}/v1/models/tabular_q:predict`, {
      id: 'req-q1',
      instances: [good, { ...good, age: 300 }, { ...good, age: 30 }, { ...good, workclass: 'Pirate' }],
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.predictions.length, 4);
    assert.equal(r.body.predictions[1], null);
    assert.equal(r.body.predictions[3], null);
    assert.ok(r.body.predictions[0].label);
    assert.ok(r.body.predictions[2].label);
    assert.deepEqual(
      r.body.quarantined.map((q: { row: number; problems: { rule: string }[] }) => [
        q.row,
        q.problems.map((p) => p.rule),
      ]),
      [
        [2, ['range']],
        [4, ['categories']],
      ],
    );
    // The same prediction as a request of the valid row alone: quarantining changes nothing else.
    const alone = await postJson(`${url}/v1/models/tabular_q:predict`, { instances: [{ ...good, age: 30 }] });
    assert.deepEqual(alone.body.predictions[0], r.body.predictions[2]);

    const stored = await app.quarantine.list({ model: 'tabular_q' });
    const mine = stored.filter((s) => s.requestId === 'req-q1').sort((a, b) => a.row - b.row);
    assert.deepEqual(
      mine.map((s) => [s.row, s.version, s.protocol, s.record.age]),
      [
        [2, '1', 'records', 300],
        [4, '1', 'records', 41],
      ],
    );
    assert.equal((mine[1]!.problems[0] as { value: unknown }).value, 'Pirate');

    const metrics = await (await fetch(`${url}/metrics`)).text();
    assert.match(
      metrics,
      /slipway_invalid_rows_total\{model="tabular_q",version="1",action="quarantined"\} 2/,
    );
  });

  test('quarantine mode on V2: outputs cover the kept rows, quarantined_rows names the others', async () => {
    const r = await postJson(`${url}/v2/models/tabular_q/infer`, {
      id: 'req-q2',
      inputs: [
        { name: 'age', datatype: 'FP32', shape: [3, 1], data: [41, -1, 50] },
        { name: 'hours_per_week', datatype: 'FP32', shape: [3, 1], data: [40, 40, 40] },
        { name: 'workclass', datatype: 'BYTES', shape: [3, 1], data: ['Private', 'Private', 'Private'] },
      ],
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.parameters.quarantined_rows, '2');
    const label = r.body.outputs.find((o: { name: string }) => o.name === 'label');
    assert.deepEqual(label.shape, [2]);
    const stored = (await app.quarantine.list({ model: 'tabular_q' })).filter(
      (s) => s.requestId === 'req-q2',
    );
    assert.deepEqual(
      stored.map((s) => [s.row, s.protocol, s.record]),
      [[2, 'rest', { age: -1, hours_per_week: 40, workclass: 'Private' }]],
    );
  });

  test('quarantine mode: a request whose every row is invalid answers nulls (records) or 400 (V2), rows stored', async () => {
    const r = await postJson(`${url}/v1/models/tabular_q:predict`, { instances: [{ ...good, age: -2 }] });
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.predictions, [null]);
    const v2 = await postJson(`${url}/v2/models/tabular_q/infer`, {
      inputs: [
        { name: 'age', datatype: 'FP32', shape: [1, 1], data: [-3] },
        { name: 'hours_per_week', datatype: 'FP32', shape: [1, 1], data: [40] },
        { name: 'workclass', datatype: 'BYTES', shape: [1, 1], data: ['Private'] },
      ],
    });
    assert.equal(v2.status, 400);
    assert.equal(v2.body.code, 'SLIPWAY_ERR_INVALID_ROWS');
    const ages = (await app.quarantine.list({ model: 'tabular_q' })).map((s) => s.record.age);
    assert.ok(ages.includes(-2) && ages.includes(-3));
  });

  test('a version whose schema.json is invalid does not load, and says which field', async () => {
    const repo = await tempRepository(['tabular']);
    await writeFile(
      join(repo.dir, 'tabular', '1', 'schema.json'),
      JSON.stringify({ ...SCHEMA, columns: [{ name: 'age', type: 'number' }] }),
    );
    const other = await startTestApp({ models: repo.dir });
    try {
      const r = await getJson(`${other.http.url}/v2/models/tabular/ready`);
      assert.equal(r.status, 503);
      const index = await postJson(`${other.http.url}/v2/repository/index`, {});
      assert.match(JSON.stringify(index.body), /schema\.json: schema columns\[0\]\.type must be one of/);
    } finally {
      await other.close();
      await repo.remove();
    }
  });
});

describe('a registered version carries its schema and steps, with lineage to its data', () => {
  const cli = (args: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [join(REPO_ROOT, 'bin', 'slipway.js'), ...args], (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'slipway-lineage-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('models push --schema --steps --train-data; models show prints the lineage; serving enforces the schema', async () => {
    const data = ['--data-dir', join(dir, 'store')];
    const adult = join(REPO_ROOT, 'datasets', 'adult', 'adult.csv');
    assert.equal((await cli(['data', 'add', adult, '--name', 'adult', ...data])).code, 0);
    await writeFile(join(dir, 'schema.json'), JSON.stringify(SCHEMA));
    await writeFile(
      join(dir, 'spec.json'),
      JSON.stringify({ steps: [{ step: 'impute', columns: ['age'], strategy: 'median' }] }),
    );
    const fit = await cli([
      'data',
      'fit',
      'adult@1',
      '--steps',
      join(dir, 'spec.json'),
      '-o',
      join(dir, 'fitted.json'),
      ...data,
    ]);
    assert.equal(fit.code, 0, fit.stderr);

    const badSchema = join(dir, 'bad-schema.json');
    await writeFile(badSchema, JSON.stringify({ ...SCHEMA, columns: [{ name: 'age', type: 'int' }] }));
    const refused = await cli([
      'models',
      'push',
      join(FIXTURES, 'tabular', '1', 'model.onnx'),
      '--name',
      'adult-income',
      '--schema',
      badSchema,
      ...data,
    ]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /--schema .*bad-schema\.json: schema columns\[0\]\.type must be one of/);

    const pushed = await cli([
      'models',
      'push',
      join(FIXTURES, 'tabular', '1', 'model.onnx'),
      '--name',
      'adult-income',
      '--schema',
      join(dir, 'schema.json'),
      '--steps',
      join(dir, 'fitted.json'),
      '--train-data',
      'adult@1',
      '--eval-data',
      'adult@1',
      '--serving-config',
      join(FIXTURES, 'tabular', 'config.json'),
      ...data,
    ]);
    assert.equal(pushed.code, 0, pushed.stderr);
    const shown = await cli(['models', 'show', 'adult-income', '--version', '1', ...data]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /training data +adult@1 \(sha256 [0-9a-f]{12}, 48,842 rows, 1 file, added /);
    assert.match(shown.stdout, /evaluation data +adult@1 \(sha256 [0-9a-f]{12}, 48,842 rows/);
    assert.match(shown.stdout, /schema +schema\.json/);
    assert.match(shown.stdout, /cleaning steps +steps\.json, fitted on adult@1/);

    const app = await startTestApp({ models: null, dataDir: join(dir, 'store') });
    try {
      const ok = await postJson(`${app.http.url}/v1/models/adult-income:predict`, { instances: [good] });
      assert.equal(ok.status, 200, JSON.stringify(ok.body));
      const bad = await postJson(`${app.http.url}/v1/models/adult-income:predict`, {
        instances: [{ ...good, age: -1 }],
      });
      assert.equal(bad.status, 400);
      assert.equal(bad.body.details[0].rule, 'range');
    } finally {
      await app.close();
    }
  });
});
