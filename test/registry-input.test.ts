/**
 * Bad input to the registry, its artifact folders and tokens: a 4xx naming the field, never a
 * 500, a hang or a silently changed write. Found by fuzzing; each test failed before its fix.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { App } from '../src/app.js';
import { likeMatch } from '../src/registry/search.js';
import { fetchReply as call, FIXTURES, startTestApp } from './helpers.js';

const ADD_SUB = readFileSync(join(FIXTURES, 'add_sub/1/model.onnx'));

/** What LIKE meant before: a backtracking regex (exponential on `%a%a%a%b`). */
function oldLike(text: string, pattern: string, flags: string): boolean {
  let re = '';
  for (const c of pattern) {
    if (c === '%') re += '[\\s\\S]*';
    else if (c === '_') re += '[\\s\\S]';
    else re += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, flags).test(text);
}

/**
 * POSTs `size` bytes the way Python's http.client does: the whole body first, then the answer.
 * Resolves with the status once both the body has been taken and the answer read.
 */
function sendAllThenRead(url: string, size: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
    });
    let flushed = false;
    let answer: { status: number; text: string } | undefined;
    const done = () => {
      if (flushed && answer) resolve(answer);
    };
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        text += d;
      });
      res.on('end', () => {
        answer = { status: res.statusCode!, text };
        done();
      });
    });
    req.on('error', reject);
    req.end(Buffer.alloc(size, 7), () => {
      flushed = true;
      done();
    });
  });
}

function openFds(): number {
  return readdirSync('/proc/self/fd').length;
}

describe('LIKE matching', () => {
  test('pathological patterns return quickly', () => {
    const cases: [string, string][] = [
      ['a'.repeat(200), '%a%a%a%a%b'],
      ['a'.repeat(5000), '%a%a%b'],
      ['a'.repeat(5000), `${'%a'.repeat(20)}%b`],
      ['ab'.repeat(3000), '%a_%a_%a_%c'],
    ];
    for (const [text, pattern] of cases) {
      for (const caseless of [false, true]) {
        const t0 = performance.now();
        assert.equal(likeMatch(text, pattern, caseless), false);
        const ms = performance.now() - t0;
        assert.ok(ms < 200, `${pattern} over ${text.length} chars took ${ms.toFixed(0)} ms`);
      }
    }
  });

  test('matches as the regex did on ordinary patterns', () => {
    const texts = [
      '',
      'a',
      'abc',
      'income-v2',
      'Income',
      'a%b',
      'a_b',
      'aXbYc',
      'ÄPFEL',
      'äpfel',
      'straße',
      'ı',
      'ſ',
      'K',
      'x.y*z',
      'line\nbreak',
      '%',
    ];
    const patterns = [
      '',
      '%',
      '_',
      '%%',
      'a',
      'A',
      'a%',
      '%c',
      '%b%',
      'a_c',
      '_b_',
      'inc%v_',
      '%INCOME%',
      'a%b%c',
      'a%%c',
      '__',
      'äPFEL',
      'STRASSE',
      'I',
      'i',
      's',
      'k',
      'x.y*z',
      'x_y%z',
      'line_break',
      '%_%',
      '\\%',
    ];
    for (const t of texts) {
      for (const p of patterns) {
        assert.equal(
          likeMatch(t, p, false),
          oldLike(t, p, ''),
          `${JSON.stringify(t)} LIKE ${JSON.stringify(p)}`,
        );
        assert.equal(
          likeMatch(t, p, true),
          oldLike(t, p, 'i'),
          `${JSON.stringify(t)} ILIKE ${JSON.stringify(p)}`,
        );
      }
    }
  });
});

describe('registry input', () => {
  let app: App;
  let url: string;
  before(async () => {
    app = await startTestApp({ models: null });
    url = app.http.url;
  });
  after(async () => {
    await app?.close();
  });

  const upload = (model: string, query = '', body: Uint8Array = ADD_SUB) =>
    call(
      `${url}/api/v1/models/${encodeURIComponent(model)}/versions?create_model=true${query}`,
      'POST',
      body,
    );

  test('the artifact proxy reads registry versions but never writes or deletes them', async () => {
    const made = await upload('imm');
    assert.equal(made.status, 201, made.text);
    const art = `${url}/api/2.0/mlflow-artifacts/artifacts`;
    const before = await call(`${art}/registry/imm/1/model.onnx`, 'GET');
    assert.equal(before.status, 200);

    let r = await call(`${art}/registry/imm/1/model.onnx`, 'PUT', 'garbage');
    assert.equal(r.status, 400, r.text);
    assert.equal(r.body.error_code, 'INVALID_PARAMETER_VALUE');
    assert.match(r.body.message, /registry\/imm\/1\/model\.onnx.*immutable/);
    r = await call(`${art}/registry/imm/2/new.bin`, 'PUT', 'garbage');
    assert.equal(r.status, 400, r.text);
    for (const p of ['registry/imm/1', 'registry/imm/1/model.onnx', 'registry', '']) {
      r = await call(`${art}/${p}`, 'DELETE');
      assert.equal(r.status, 400, `${p}: ${r.text}`);
      assert.match(r.body.message, /immutable/);
    }
    assert.match(r.body.message, /^path must name a file or folder: deleting the artifact root/);
    const after = await fetch(`${art}/registry/imm/1/model.onnx`);
    assert.equal(after.status, 200);
    assert.deepEqual(Buffer.from(await after.arrayBuffer()), ADD_SUB);
    // Other paths stay writable.
    r = await call(`${art}/runs/x/a.txt`, 'PUT', 'hello');
    assert.equal(r.status, 200, r.text);
    r = await call(`${art}/registryx/a.txt`, 'PUT', 'hello');
    assert.equal(r.status, 200, r.text);
    r = await call(`${art}/runs/x`, 'DELETE');
    assert.equal(r.status, 200, r.text);
  });

  test('token expiry is whole milliseconds; a bad expiry, scope or name is a 400 naming it', async () => {
    const tokens = `${url}/api/v1/tokens`;
    for (const days of [1e-9, 0.123456789]) {
      const r = await call(tokens, 'POST', { name: 't', scopes: ['read'], expires_in_days: days });
      assert.equal(r.status, 201, r.text);
      assert.ok(Number.isInteger(r.body.info.expires_ms));
      assert.ok(r.body.info.expires_ms > r.body.info.created_ms);
    }
    const bad: [unknown, RegExp][] = [
      [{ name: 't', scopes: ['read'], expires_in_days: 0 }, /expires_in_days/],
      [{ name: 't', scopes: ['read'], expires_in_days: -1 }, /expires_in_days/],
      [{ name: 't', scopes: ['read'], expires_in_days: 1e300 }, /expires_in_days.*3650/],
      [{ name: 't', scopes: ['read'], expires_in_days: '5' }, /expires_in_days/],
      [{ name: 't', scopes: ['read'], expires_in_days: true }, /expires_in_days/],
      [{ name: 't', scopes: ['read'], expires_in_days: null }, /expires_in_days/],
      [{ name: 't', scopes: [['read']] }, /scopes/],
      [{ name: 't', scopes: 'read' }, /scopes/],
      [{ name: 'a\0b', scopes: ['read'] }, /name.*NUL/],
      [{ name: 5, scopes: ['read'] }, /name/],
      [{ name: 't', scopes: ['read'], extra: 1 }, /extra/],
    ];
    const count = (await call(tokens, 'GET')).body.tokens.length;
    for (const [body, why] of bad) {
      const r = await call(tokens, 'POST', body);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${r.text}`);
      assert.match(r.body.error, why);
    }
    assert.equal((await call(tokens, 'GET')).body.tokens.length, count, 'a refused token is not stored');

    // A row an older version stored with a fractional expiry still lists and revokes.
    await app.db
      .as<any>()
      .insertInto('api_tokens')
      .values({
        id: 'aaaaaaaaaaaa',
        name: 'old',
        secret_sha256: '0'.repeat(64),
        scopes: '["read"]',
        created_ms: 1000,
        created_by: 'test',
        expires_ms: 1000.0000864,
        revoked_ms: null,
        last_used_ms: null,
      })
      .execute();
    const list = await call(tokens, 'GET');
    assert.equal(list.status, 200, list.text);
    assert.equal(list.body.tokens.find((t: any) => t.id === 'aaaaaaaaaaaa').expires_ms, 1000);
    const del = await call(`${tokens}/aaaaaaaaaaaa`, 'DELETE');
    assert.equal(del.status, 200, del.text);
    assert.equal(del.body.expires_ms, 1000);
  });

  test('registry filters are linear on long names and tags, and prototype names are plain names', async () => {
    const long = 'a'.repeat(200);
    assert.equal((await upload(long)).status, 201);
    const tagged = await call(`${url}/api/v1/models`, 'POST', {
      name: 'tagged',
      tags: { t: 'a'.repeat(5000) },
    });
    assert.equal(tagged.status, 201, tagged.text);
    const mlflow = `${url}/api/2.0/mlflow`;
    const q = (f: string) => encodeURIComponent(f);
    for (const path of [
      `${mlflow}/registered-models/search?filter=${q("name LIKE '%a%a%a%a%b'")}`,
      `${mlflow}/model-versions/search?filter=${q("name LIKE '%a%a%a%a%b'")}`,
      `${url}/api/v1/models?filter=${q("name LIKE '%a%a%a%a%b'")}`,
      `${mlflow}/registered-models/search?filter=${q("tags.t LIKE '%a%a%a%a%b'")}`,
      `${mlflow}/registered-models/search?filter=${q("tags.t ILIKE '%A%A%A%A%B'")}`,
    ]) {
      const t0 = performance.now();
      const r = await call(path, 'GET');
      assert.equal(r.status, 200, r.text);
      assert.ok(performance.now() - t0 < 1000, `${path} took ${(performance.now() - t0).toFixed(0)} ms`);
    }
    let r = await call(`${mlflow}/registered-models/search?filter=${q("tags.t LIKE 'a%a'")}`, 'GET');
    assert.deepEqual(
      r.body.registered_models.map((m: any) => m.name),
      ['tagged'],
    );

    for (const f of ["constructor = 'x'", "toString LIKE '%'", "attributes.__proto__ = 'x'"]) {
      r = await call(`${mlflow}/registered-models/search?filter=${q(f)}`, 'GET');
      assert.equal(r.status, 400, `${f}: ${r.text}`);
      assert.match(r.body.message, /unknown attribute/);
      assert.doesNotMatch(r.body.message, /function|native code/);
    }
    for (const key of ['constructor', '__proto__', 'toString', 'hasOwnProperty']) {
      r = await call(`${mlflow}/registered-models/search?filter=${q(`tags.${key} LIKE '%'`)}`, 'GET');
      assert.equal(r.status, 200, r.text);
      assert.deepEqual(r.body.registered_models ?? [], [], `tags.${key}`);
    }
  });

  test('an upload refused before its body is read still gets its answer', async () => {
    const size = 32 * 1024 * 1024;
    const base = `${url}/api/v1/models`;
    for (const [path, why] of [
      [`${base}/missing/versions`, /missing/],
      [`${base}/up/versions?create_model=true&alias=latest`, /alias/],
      [`${base}/up/versions?create_model=true&training_data=@`, /training_data/],
      [
        `${base}/up/versions?create_model=true&config=${encodeURIComponent('{"max_batch_size":"x"}')}`,
        /max_batch_size/,
      ],
    ] as const) {
      const r = await Promise.race([
        sendAllThenRead(path, size),
        sleep(10_000).then(() => assert.fail(`${path}: no answer within 10 s`)),
      ]);
      assert.ok(r.status === 400 || r.status === 404, `${path}: ${r.status} ${r.text}`);
      assert.match(r.text, why);
    }
  });

  test('an upload the client aborts leaves no temp file and no open file', async () => {
    const tmp = join(app.settings.dataDir, 'artifacts', 'tmp');
    const temps = () => {
      try {
        return readdirSync(tmp).length;
      } catch {
        return 0;
      }
    };
    const fds = openFds();
    const { port } = new URL(url);
    for (let i = 0; i < 5; i++) {
      await new Promise<void>((resolve, reject) => {
        const sock = connect(Number(port), '127.0.0.1', () => {
          sock.write(
            'POST /api/v1/models/aborted/versions?create_model=true HTTP/1.1\r\nHost: x\r\n' +
              'Content-Type: application/octet-stream\r\nContent-Length: 5000000\r\n\r\n',
          );
          sock.write(Buffer.alloc(1_000_000, 1), () => setTimeout(() => sock.destroy(), 100));
        });
        sock.on('close', () => resolve());
        sock.on('error', reject);
      });
    }
    for (let i = 0; i < 50 && (temps() > 0 || openFds() > fds); i++) await sleep(50);
    assert.equal(temps(), 0, 'temp files left');
    assert.ok(openFds() <= fds, `open files: ${fds} before, ${openFds()} after`);
    const r = await call(`${url}/api/v1/models/aborted`, 'GET');
    assert.equal(r.status, 404, 'nothing was registered');
  });

  test('prototype-named metric and tag keys are stored as given; metric values are decimal', async () => {
    let r = await upload('proto', '&metric=__proto__=1&metric=constructor=2&tag=__proto__=x&tag=toString=y');
    assert.equal(r.status, 201, r.text);
    for (const v of [r.body, (await call(`${url}/api/v1/models/proto/versions/1`, 'GET')).body]) {
      assert.deepEqual(Object.entries(v.metrics).sort(), [
        ['__proto__', 1],
        ['constructor', 2],
      ]);
      assert.deepEqual(Object.entries(v.tags).sort(), [
        ['__proto__', 'x'],
        ['toString', 'y'],
      ]);
    }
    for (const bad of ['a=0x10', 'a=0b1', 'a=0o7', 'a=Infinity', 'a=NaN', 'a=', 'a=1_000']) {
      r = await upload('proto', `&metric=${encodeURIComponent(bad)}`);
      assert.equal(r.status, 400, `${bad}: ${r.text}`);
      assert.match(r.body.error, /^metric: /);
    }
    r = await upload('proto', `&metric=${encodeURIComponent('a=-1.5e-3')}&metric=b=.5&metric=c=7`);
    assert.equal(r.status, 201, r.text);
    assert.deepEqual(r.body.metrics, { a: -0.0015, b: 0.5, c: 7 });
  });

  test('more than 1000 tags in one request is a 400 naming tags; 1000 are stored', async () => {
    const many = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));
    let r = await call(`${url}/api/v1/models`, 'POST', { name: 'many', tags: many(20_000) });
    assert.equal(r.status, 400, r.text);
    assert.match(r.body.error, /^tags: at most 1000 tags, got 20000/);
    r = await call(`${url}/api/2.0/mlflow/registered-models/create`, 'POST', {
      name: 'many',
      tags: Array.from({ length: 12_000 }, (_, i) => ({ key: `k${i}`, value: 'v' })),
    });
    assert.equal(r.status, 400, r.text);
    assert.equal(r.body.error_code, 'INVALID_PARAMETER_VALUE');
    assert.match(r.body.message, /tags/);

    r = await call(`${url}/api/v1/models`, 'POST', { name: 'many', tags: many(1000) });
    assert.equal(r.status, 201, r.text);
    assert.equal(Object.keys(r.body.tags).length, 1000);
    assert.equal((await upload('many')).status, 201);
    r = await call(`${url}/api/v1/models/many`, 'PATCH', { tags: many(20_000) });
    assert.equal(r.status, 400, r.text);
    assert.match(r.body.error, /^tags: at most 1000/);
    r = await call(`${url}/api/v1/models/many/versions/1`, 'PATCH', { tags: many(20_000) });
    assert.equal(r.status, 400, r.text);
    assert.match(r.body.error, /^tags: at most 1000/);
    r = await call(`${url}/api/v1/models/many/versions/1`, 'PATCH', { tags: many(1000) });
    assert.equal(r.status, 200, r.text);
    assert.equal(Object.keys(r.body.tags).length, 1000);
  });

  test('errors name the field as sent: file_name, training_data, drive letters, version numbers', async () => {
    let r = await upload('named', '&file_name=a%00b');
    assert.equal(r.status, 400, r.text);
    assert.match(r.body.error, /^file_name: must not contain NUL/);
    r = await upload('named', '&training_data=@');
    assert.match(r.body.error, /^training_data: /);
    r = await upload('named', '&evaluation_data=@');
    assert.match(r.body.error, /^evaluation_data: /);
    r = await upload('named', '&evaluation_data=s3://b/test.parquet&training_data=adult@3');
    assert.equal(r.status, 400, r.text);
    assert.match(r.body.error, /^training_data: dataset 'adult@3' is not in this store/);
    r = await upload('named', '&training_data=adult@v1.2');
    assert.equal(r.status, 400, r.text);
    assert.match(r.body.error, /^training_data: /);
    assert.equal((await call(`${url}/api/v1/models/named`, 'GET')).status, 404, 'nothing registered');

    r = await call(`${url}/api/2.0/mlflow-artifacts/artifacts/x:y`, 'PUT', 'z');
    assert.equal(r.status, 400, r.text);
    assert.match(r.body.message, /drive letter, 'x:'/);

    assert.equal((await upload('named')).status, 201);
    const v = `${url}/api/v1/models/named/versions`;
    assert.equal((await call(`${v}/1`, 'GET')).body.version, 1);
    for (const bad of ['1e3', '1%20', '%201', '0x1', '1.0', '-1', '+1']) {
      r = await call(`${v}/${bad}`, 'GET');
      assert.equal(r.status, 400, `${bad}: ${r.text}`);
      assert.match(r.body.error, /version/);
    }
    for (const bad of ['0', '99999999999']) {
      r = await call(`${v}/${bad}`, 'GET');
      assert.equal(r.status, 400, `${bad}: ${r.text}`);
      assert.match(r.body.error, /version/);
    }
    r = await call(`${v}/1e3`, 'PATCH', { description: 'x' });
    assert.equal(r.status, 400, r.text);
    r = await call(`${v}/1%20`, 'DELETE');
    assert.equal(r.status, 400, r.text);
    assert.equal((await call(`${v}/1`, 'GET')).status, 200, 'version 1 is still there');
  });
});
