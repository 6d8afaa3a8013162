/**
 * Bad input to the monitoring API is a 400 naming the field — never a 500, never read as
 * something else: times outside a Date's range or off the calendar, short epoch milliseconds,
 * feedback that AJV would have coerced, drift and performance options, reversed ranges.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { App } from '../src/app.js';
import {
  MAX_DURATION_MS,
  parseDurationInput,
  parseTime,
  parseWindowReference,
} from '../src/monitoring/durations.js';
import { getJson, postJson, startTestApp, tempRepository } from './helpers.js';

/** What a call throws: its code and message. */
function thrown(f: () => unknown): { code?: string; message: string } {
  try {
    f();
  } catch (e) {
    return e as { code?: string; message: string };
  }
  return assert.fail('did not throw');
}

describe('time and duration inputs', () => {
  const now = Date.UTC(2026, 5, 15);

  test('digits only are epoch milliseconds, however short', () => {
    assert.equal(parseTime('0', 'since', now), 0);
    assert.equal(parseTime('1', 'since', now), 1);
    assert.equal(parseTime('2026', 'since', now), 2026);
    assert.equal(parseTime('1767225600000', 'since', now), Date.UTC(2026, 0, 1));
  });

  test('a duration ago, and ISO dates and date-times as Date.parse reads them', () => {
    assert.equal(parseTime('1h', 'since', now), now - 3_600_000);
    assert.equal(parseTime(' 1.5h ', 'since', now), now - 5_400_000);
    assert.equal(parseTime('2026-03-01', 'since', now), Date.UTC(2026, 2, 1));
    assert.equal(parseTime('2026-03-01T12:30:00Z', 'since', now), Date.UTC(2026, 2, 1, 12, 30));
    assert.equal(
      parseTime('2026-03-01T12:30:00.250+01:00', 'since', now),
      Date.UTC(2026, 2, 1, 11, 30, 0, 250),
    );
    assert.equal(parseTime('2024-02-29', 'since', now), Date.UTC(2024, 1, 29));
  });

  test('a date off the calendar is refused, not rolled into the next month', () => {
    for (const [text, why] of [
      ['2026-02-30', /day 30 \(2026-02 has 28 days\)/],
      ['2026-02-29T00:00:00Z', /day 29 \(2026-02 has 28 days\)/],
      ['2026-04-31', /day 31 \(2026-04 has 30 days\)/],
      ['2026-13-01', /month 13/],
      ['2026-01-01T25:00:00Z', /hour 25/],
      ['2026-01-01T00:60Z', /minute 60/],
      ['2026-01-01T00:00:00+99:00', /UTC offset 99:00/],
    ] as const) {
      const e = thrown(() => parseTime(text, 'since', now));
      assert.equal(e.code, 'SLIPWAY_ERR_BAD_REQUEST');
      assert.match(
        e.message,
        new RegExp(`^since: "${text.replace(/[+.]/g, '\\$&')}" is not a calendar date-time: `),
      );
      assert.match(e.message, why);
    }
  });

  test('what Date.parse would guess at is refused, naming the field and the forms it takes', () => {
    for (const text of ['x 1', 'Jan 1 2026', 'yesterday', '1y', '-1h', '1e3h', 'NaN', '']) {
      const e = thrown(() => parseTime(text, 'until', now));
      assert.match(
        e.message,
        /^until must be epoch milliseconds \(digits only\), an ISO 8601 date or date-time/,
      );
    }
  });

  test('a time outside the range of a Date, or a duration ago that leaves it, is refused', () => {
    for (const text of [
      '8640000000000001',
      '99999999999999999999',
      '999999999999999w',
      '99999999999999999999999d',
      '+275760-09-13T00:00:00.001Z',
    ]) {
      const e = thrown(() => parseTime(text, 'until', now));
      assert.equal(e.code, 'SLIPWAY_ERR_BAD_REQUEST');
      assert.match(e.message, /^until must lie between -271821-04-20T00:00:00Z and \+275760-09-13T00:00:00Z/);
    }
    assert.equal(parseTime('8640000000000000', 'until', now), 8.64e15);
  });

  test('durations are 1 ms to 366 days', () => {
    assert.equal(parseDurationInput('366d', 'window'), MAX_DURATION_MS);
    assert.match(thrown(() => parseDurationInput('367d', 'window')).message, /^window must be at most 366d/);
    assert.match(thrown(() => parseDurationInput('0.1ms', 'window')).message, /^window must be at least 1ms/);
    assert.match(thrown(() => parseDurationInput('5x', 'window')).message, /^window must be a duration/);
  });

  test('a window reference: either separator, two ends, in order', () => {
    const day = 86_400_000;
    const want = { sinceMs: now - 8 * day, untilMs: now - day };
    assert.deepEqual(parseWindowReference('window:8d/1d', 'reference', now), want);
    assert.deepEqual(parseWindowReference('window:8d..1d', 'reference', now), want);
    assert.match(
      thrown(() => parseWindowReference('window:1d/8d', 'reference', now)).message,
      /^reference "window:1d\/8d" is reversed: its since \(1d\) must be before its until \(8d\)/,
    );
    assert.match(thrown(() => parseWindowReference('window:1d..1d', 'reference', now)).message, /is empty/);
    for (const spec of ['window:', 'window:8d', 'window:8d/', 'window:2h..1h..0h', 'window:2h/1h/0h']) {
      assert.match(
        thrown(() => parseWindowReference(spec, 'reference', now)).message,
        /^reference must be window:<since>\/<until> \(or window:<since>\.\.<until>\)/,
      );
    }
    assert.match(
      thrown(() => parseWindowReference('window:x..1d', 'reference', now)).message,
      /^reference since must be epoch milliseconds/,
    );
  });
});

describe('the monitoring API refuses bad input with a 400 naming the field', () => {
  let app: App;
  let url: string;
  let remove: () => Promise<void>;
  let start: number;
  let mid: number;
  const api = (path: string) => getJson(`${url}/api/v1/monitoring/${path}`);

  before(async () => {
    const repo = await tempRepository(['tabular', 'identity_fp32']);
    remove = repo.remove;
    app = await startTestApp({ models: repo.dir, predictionFlushMs: 50 });
    url = app.http.url;
    start = Date.now();
    const rows = (shift: number) =>
      Array.from({ length: 40 }, (_, i) => ({
        age: 20 + (i % 40) + shift,
        hours_per_week: 30 + (i % 20),
        workclass: i % 3 ? 'Private' : 'State-gov',
      }));
    const first = await postJson(`${url}/v1/models/tabular:predict`, { id: 'in-1', instances: rows(0) });
    assert.equal(first.status, 200, JSON.stringify(first.body));
    await app.predictions!.flush();
    mid = Date.now() + 1;
    await new Promise((r) => setTimeout(r, 5));
    const second = await postJson(`${url}/v1/models/tabular:predict`, { id: 'in-2', instances: rows(20) });
    assert.equal(second.status, 200);
    const truth = first.body.predictions.map((p: { label: string }, row: number) => ({
      request_id: 'in-1',
      row,
      ground_truth: row % 4 ? p.label : p.label === '>50K' ? '<=50K' : '>50K',
    }));
    assert.deepEqual((await postJson(`${url}/v1/feedback`, truth)).body, { accepted: 40 });
    await app.predictions!.flush();
    await app.predictions!.checkpoint();
  });
  after(async () => {
    await app?.close();
    await remove?.();
  });

  const endpoints = ['predictions', 'performance', 'service', 'versions', 'profile', 'drift'];

  test('a time outside the range of a Date, or a duration ago that leaves it, on every endpoint', async () => {
    for (const ep of endpoints) {
      for (const [field, value] of [
        ['until', '8640000000000001'],
        ['until', '99999999999999999999'],
        ['since', '999999999999999w'],
        ['since', '99999999999999999999999d'],
      ] as const) {
        const r = await api(`${ep}?model=tabular&${field}=${value}`);
        assert.equal(r.status, 400, `${ep} ${field}=${value}: ${JSON.stringify(r.body)}`);
        assert.equal(r.body.code, 'SLIPWAY_ERR_BAD_REQUEST');
        assert.match(r.body.error, new RegExp(`^${field} must lie between`), `${ep} ${field}=${value}`);
      }
      const calendar = await api(`${ep}?model=tabular&since=2026-02-30`);
      assert.equal(calendar.status, 400, ep);
      assert.match(calendar.body.error, /^since: "2026-02-30" is not a calendar date-time: day 30/);
      const reversed = await api(`${ep}?model=tabular&since=1h&until=2h`);
      assert.equal(reversed.status, 400, `${ep} reversed: ${JSON.stringify(reversed.body)}`);
      assert.match(reversed.body.error, /^since must be before until/);
    }
  });

  test('since=0 and since=1 are epoch milliseconds (1970), not the years 2000 and 2001', async () => {
    for (const [since, iso] of [
      ['0', '1970-01-01T00:00:00.000Z'],
      ['1', '1970-01-01T00:00:00.001Z'],
    ]) {
      const r = await api(`performance?model=tabular&since=${since}`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.equal(r.body.since, iso);
      assert.equal(r.body.labelled, 40);
    }
  });

  test('a performance window past 366 days, or giving more than 10 000 windows', async () => {
    const huge = await api('performance?model=tabular&window=99999999999999w');
    assert.equal(huge.status, 400);
    assert.match(huge.body.error, /^window must be at most 366d/);
    const many = await api('performance?model=tabular&since=30d&window=1m');
    assert.equal(many.status, 400);
    assert.match(many.body.error, /^window: at most 10 000 windows/);
  });

  test('positive must be a class of the model', async () => {
    const ok = await api('performance?model=tabular&since=1h&positive=%3C%3D50K');
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.metrics.positive, '<=50K');
    const r = await api('performance?model=tabular&since=1h&positive=nope');
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.equal(
      r.body.error,
      `positive: "nope" is not a class of model 'tabular' (classes: "<=50K", ">50K")`,
    );
  });

  test('feedback: nothing is coerced; each bad field is one 400 naming it, in the single and the list form', async () => {
    const cases: [Record<string, unknown>, string, RegExp][] = [
      [{ ground_truth: null }, 'ground_truth', /must be a string, a finite number or a boolean, got null/],
      [{ ground_truth: [] }, 'ground_truth', /must be a string, a finite number or a boolean, got an array/],
      [{ row: null }, 'row', /must be a non-negative integer when present .*got null/],
      [{ row: '0' }, 'row', /must be a non-negative integer when present .*got "0"/],
      [{ row: 1.5 }, 'row', /must be a non-negative integer/],
      [{ weight: '2' }, 'weight', /must be a positive finite number when present, got "2"/],
      [{ weight: null }, 'weight', /must be a positive finite number when present, got null/],
      [{ weight: 0 }, 'weight', /must be a positive finite number/],
      [{ request_id: 1 }, 'request_id', /must be a non-empty string of at most 1024 characters, got 1/],
      [{ request_id: ['a'] }, 'request_id', /must be a non-empty string .*got an array/],
      [{ request_id: '' }, 'request_id', /must be a non-empty string/],
      [{ request_id: 'r'.repeat(1025) }, 'request_id', /at most 1024 characters/],
      [
        { ground_truth: 'c'.repeat(1025) },
        'ground_truth',
        /is 1025 characters long, and a class name may be at most 1024/,
      ],
      [{ extra: 1 }, 'extra', /is not a feedback field \(request_id, row, ground_truth, weight\)/],
    ];
    for (const [change, field, re] of cases) {
      const item = { request_id: 'in-2', ground_truth: '>50K', ...change };
      const one = await postJson(`${url}/v1/feedback`, item);
      assert.equal(one.status, 400, `${JSON.stringify(change)}: ${JSON.stringify(one.body)}`);
      assert.equal(one.body.code, 'SLIPWAY_ERR_BAD_REQUEST');
      assert.match(one.body.error, new RegExp(`^${field} `));
      assert.match(one.body.error, re);
      assert.doesNotMatch(
        one.body.error,
        /oneOf|must be array|;/,
        'one message, not every branch of the union',
      );
      const list = [
        { request_id: 'in-2', ground_truth: '>50K' },
        { request_id: 'in-2', row: 1, ground_truth: '>50K' },
        { request_id: 'in-2', row: 2, ground_truth: '>50K' },
        { ...item, row: 'row' in change ? change.row : 3 },
      ];
      for (const body of [list, { feedback: list }]) {
        const many = await postJson(`${url}/v1/feedback`, body);
        assert.equal(many.status, 400, JSON.stringify(many.body));
        assert.match(many.body.error, new RegExp(`^feedback\\[3\\]\\.${field} `));
      }
    }
    const missing = await postJson(`${url}/v1/feedback`, { request_id: 'in-2' });
    assert.equal(
      missing.body.error,
      'ground_truth must be a string, a finite number or a boolean, got nothing',
    );
    for (const [body, re] of [
      [null, /^the body must be a feedback item/],
      ['"x"', /^the body must be a feedback item/],
      [[], /^feedback must hold 1 to 100000 items, got 0/],
      [{ feedback: null }, /^feedback must be an array of feedback items/],
      [{ feedback: [] }, /^feedback must hold 1 to 100000 items/],
      [
        { feedback: [{ request_id: 'a', ground_truth: 1 }], request_id: 'b' },
        /^request_id is not a field beside feedback/,
      ],
      [[null], /^feedback\[0\] must be an object/],
      [
        `{"feedback":[${'['.repeat(100_000)}${']'.repeat(100_000)}]}`,
        /^feedback\[0\] must be an object .*got an array/,
      ],
    ] as const) {
      const r = await postJson(`${url}/v1/feedback`, body === null ? 'null' : body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
      assert.match(r.body.error, re);
    }
    // Nothing of the refused items was stored: in-2 has no ground truth.
    const listed = await api('predictions?model=tabular&request_id=in-2&limit=100');
    assert.equal(listed.body.predictions.length, 40);
    assert.ok(listed.body.predictions.every((p: object) => !('ground_truth' in p)));
    // Still taken: an explicit empty class, a boolean, a tiny positive weight.
    const ok = await postJson(`${url}/v1/feedback`, [
      { request_id: 'fine-1', ground_truth: '' },
      { request_id: 'fine-2', ground_truth: true, weight: 1e-300, row: 0 },
    ]);
    assert.deepEqual([ok.status, ok.body], [200, { accepted: 2 }]);
  });

  test('drift: a reversed reference window says so, whichever way it is written', async () => {
    for (const ref of ['window:2m..30m', 'window:2m/30m', `window:${mid}..${start}`]) {
      const r = await api(`drift?model=tabular&since=${mid}&reference=${ref}`);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.match(r.body.error, /^reference ".*" is reversed: its since .* must be before its until/);
    }
    const ok = await api(`drift?model=tabular&since=${mid}&reference=window:${start}..${mid}`);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    const three = await api('drift?model=tabular&since=1h&reference=window:2h..1h..0h');
    assert.equal(three.status, 400);
    assert.match(three.body.error, /^reference must be window:<since>\/<until>/);
  });

  test('drift: an unknown test or a threshold that is not a number >= 0 is refused before anything is read', async () => {
    for (const test of ['nope', 'KS', '__proto__', 'constructor']) {
      // An unknown model too: the test is checked first.
      const r = await api(`drift?model=nope&since=${mid}&reference=window:${start}..${mid}&test=${test}`);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.match(
        r.body.error,
        new RegExp(`^test must be one of Evidently's tests \\(ks, .*\\), got "${test}"`),
      );
    }
    for (const threshold of ['-Infinity', 'Infinity', 'NaN', 'x', '-1']) {
      const r = await api(
        `drift?model=tabular&since=${mid}&reference=window:${start}..${mid}&threshold=${threshold}`,
      );
      assert.equal(r.status, 400, `${threshold}: ${JSON.stringify(r.body)}`);
      assert.match(r.body.error, /threshold/);
    }
    const ok = await api(
      `drift?model=tabular&since=${mid}&reference=window:${start}..${mid}&test=psi&threshold=0.2`,
    );
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.columns.age.test, 'psi');
  });

  test('drift: a model nothing here knows is a 404; a known model with nothing in range a 400', async () => {
    const unknown = await api(`drift?model=nope&since=1h&reference=window:2h..1h`);
    assert.equal(unknown.status, 404, JSON.stringify(unknown.body));
    assert.equal(unknown.body.code, 'SLIPWAY_ERR_MODEL_NOT_FOUND');
    assert.equal(unknown.body.error, "model 'nope' is not served here and has no logged predictions");
    const empty = await api(`drift?model=identity_fp32&since=1h&reference=window:2h..1h`);
    assert.equal(empty.status, 400, JSON.stringify(empty.body));
    assert.match(empty.body.error, /^no logged predictions of model 'identity_fp32' in that range/);
    const noReference = await api(`drift?model=tabular&since=${mid}&reference=window:3h..2h`);
    assert.equal(noReference.status, 400);
    assert.match(
      noReference.body.error,
      /^no logged predictions of model 'tabular' in the reference window \d{4}-/,
    );
  });
});
