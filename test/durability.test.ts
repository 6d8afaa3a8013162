/**
 * Durability: the server is killed with SIGKILL in the middle of a burst of registrations,
 * metric logging and artifact uploads. After a restart every write that was acknowledged is
 * there, and every artifact's bytes still hash to the digest the store recorded.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openStore } from '../src/app.js';
import { loadSettings } from '../src/config/index.js';
import { FIXTURES, REPO_ROOT } from './helpers.js';
import { postgresDatabase, sqliteDatabase, type TestDatabase } from './support/databases.js';

interface Server {
  child: ChildProcess;
  url: string;
}

async function startServer(args: string[]): Promise<Server> {
  const child = spawn(
    process.execPath,
    [join(REPO_ROOT, 'bin/slipway.js'), 'serve', '--port', '0', '--no-grpc', '--log-level', 'warn', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  child.stderr!.on('data', (c: Buffer) => {
    out += c.toString();
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const m = /REST\s+(http:\/\/\S+)/.exec(out);
    if (m) return { child, url: m[1]!.replace(/\/$/, '') };
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`server did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function exited(child: ChildProcess): Promise<unknown> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => child.once('exit', r));
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

async function mlflow(url: string, path: string, body: unknown): Promise<any> {
  const res = await fetch(`${url}/api/2.0/mlflow${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}

const ONNX_FILES = ['identity_fp32', 'identity_int64', 'add_sub', 'matrix', 'tabular'].map((m) =>
  join(FIXTURES, m, '1', 'model.onnx'),
);

for (const make of [sqliteDatabase, postgresDatabase]) {
  const dialect = make === sqliteDatabase ? 'sqlite' : 'postgres';
  describe(`acknowledged writes survive SIGKILL (${dialect})`, () => {
    let db: TestDatabase | { skip: string };
    let dataDir: string;
    before(async () => {
      db = await make();
      dataDir = await mkdtemp(join(tmpdir(), 'slipway-durability-'));
    });
    after(async () => {
      if ('stop' in db) await db.stop();
      await rm(dataDir, { recursive: true, force: true });
    });

    test('every acknowledged registration, metric batch and artifact is there after a restart', async (t) => {
      if ('skip' in db) return t.skip(db.skip);
      const storeArgs = ['--data-dir', dataDir];
      if (db.dialect === 'postgres') storeArgs.push('--database-url', await db.fresh());
      const first = await startServer(storeArgs);
      const files = await Promise.all(ONNX_FILES.map((f) => readFile(f)));

      const exp = await mlflow(first.url, '/experiments/create', { name: 'durability' });
      const runs: { id: string; artifactRoot: string }[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await mlflow(first.url, '/runs/create', {
          experiment_id: exp.experiment_id,
          start_time: Date.now(),
        });
        runs.push({
          id: r.run.info.run_id,
          artifactRoot: r.run.info.artifact_uri.replace(/^mlflow-artifacts:\/+/, ''),
        });
      }
      const acked = {
        versions: [] as { name: string; version: number; sha256: string }[],
        batches: [] as { run: string; key: string; steps: number[] }[],
        artifacts: [] as { path: string; sha256: string }[],
      };
      let stop = false;
      let attempted = 0;
      const loops = [
        // Registrations: an ONNX upload per request, through the admin API.
        ...[0, 1].map((w) =>
          (async () => {
            for (let i = 0; !stop; i++) {
              const k = (w + i) % files.length;
              attempted++;
              try {
                const res = await fetch(
                  `${first.url}/api/v1/models/m${w}/versions?create_model=true&metric=i=${i}`,
                  {
                    method: 'POST',
                    headers: { 'content-type': 'application/octet-stream' },
                    body: files[k],
                  },
                );
                if (res.status !== 201) continue;
                const v = (await res.json()) as { version: number };
                acked.versions.push({ name: `m${w}`, version: v.version, sha256: sha256(files[k]!) });
              } catch {
                // The kill cut this request off: it was never acknowledged.
              }
            }
          })(),
        ),
        // Metrics: 200 per log-batch, through the MLflow API.
        ...runs.map((run, w) =>
          (async () => {
            for (let b = 0; !stop; b++) {
              const steps = Array.from({ length: 200 }, (_, s) => b * 200 + s);
              const metrics = steps.map((step) => ({
                key: `loss${w}`,
                value: 1 / (step + 1),
                timestamp: 1,
                step,
              }));
              attempted++;
              try {
                await mlflow(first.url, '/runs/log-batch', { run_id: run.id, metrics });
                acked.batches.push({ run: run.id, key: `loss${w}`, steps });
              } catch {
                // not acknowledged
              }
            }
          })(),
        ),
        // Artifacts: random payloads through the mlflow-artifacts proxy.
        ...[0, 1].map((w) =>
          (async () => {
            for (let i = 0; !stop; i++) {
              const bytes = randomBytes(50_000 + ((i * 7919) % 400_000));
              const path = `${runs[w]!.artifactRoot}/burst/${w}-${i}.bin`;
              attempted++;
              try {
                const res = await fetch(`${first.url}/api/2.0/mlflow-artifacts/artifacts/${path}`, {
                  method: 'PUT',
                  body: bytes,
                });
                if (res.ok) acked.artifacts.push({ path, sha256: sha256(bytes) });
                await res.arrayBuffer();
              } catch {
                // not acknowledged
              }
            }
          })(),
        ),
      ];
      // Kill once every kind of write has been acknowledged a few times, mid-burst.
      const deadline = Date.now() + 20_000;
      while (
        (acked.versions.length < 3 || acked.batches.length < 6 || acked.artifacts.length < 6) &&
        Date.now() < deadline
      ) {
        await new Promise((r) => setTimeout(r, 20));
      }
      const gone = exited(first.child);
      first.child.kill('SIGKILL');
      stop = true;
      await Promise.all(loops);
      await gone;
      assert.ok(acked.versions.length >= 3 && acked.batches.length >= 6 && acked.artifacts.length >= 6);
      assert.ok(
        attempted > acked.versions.length + acked.batches.length + acked.artifacts.length,
        'nothing was in flight at the kill',
      );

      const second = await startServer(storeArgs);
      try {
        for (const v of acked.versions) {
          const res = await fetch(`${second.url}/api/v1/models/${v.name}/versions/${v.version}`);
          assert.equal(res.status, 200, `${v.name} v${v.version} is missing`);
          const body = (await res.json()) as { model_file: { path: string; sha256: string } };
          assert.equal(body.model_file.sha256, v.sha256);
          const file = await fetch(
            `${second.url}/api/2.0/mlflow-artifacts/artifacts/${body.model_file.path}`,
          );
          assert.equal(sha256(Buffer.from(await file.arrayBuffer())), v.sha256);
        }
        const byRunKey = new Map<string, Set<number>>();
        for (const b of acked.batches) {
          const k = `${b.run}/${b.key}`;
          if (!byRunKey.has(k)) {
            const res = await fetch(
              `${second.url}/api/2.0/mlflow/metrics/get-history?run_id=${b.run}&metric_key=${b.key}&max_results=100000`,
            );
            const body = (await res.json()) as { metrics?: { step: number }[] };
            byRunKey.set(k, new Set((body.metrics ?? []).map((m) => m.step)));
          }
          const have = byRunKey.get(k)!;
          for (const s of b.steps) assert.ok(have.has(s), `${k} step ${s} was acknowledged and is missing`);
        }
        for (const a of acked.artifacts) {
          const res = await fetch(`${second.url}/api/2.0/mlflow-artifacts/artifacts/${a.path}`);
          assert.equal(res.status, 200, `${a.path} is missing`);
          assert.equal(sha256(Buffer.from(await res.arrayBuffer())), a.sha256, `${a.path} changed`);
        }
      } finally {
        const done = exited(second.child);
        second.child.kill('SIGTERM');
        await done;
      }

      // Every artifact the store knows, acknowledged or not, has bytes that hash to its digest.
      const settings = loadSettings({ flags: { dataDir, databaseUrl: storeArgs[3] } });
      const store = await openStore(settings);
      try {
        const all = await store.artifacts.filesUnder('');
        assert.ok(all.length >= acked.artifacts.length);
        for (const f of all) {
          const got = await store.artifacts.get(f.path);
          assert.ok(got, `${f.path} has no bytes`);
          const h = createHash('sha256');
          for await (const c of got.body) h.update(c as Buffer);
          assert.equal(h.digest('hex'), f.sha256, `${f.path} does not hash to its digest`);
        }
        // No half-written blob was published; leftovers stay in tmp/ only.
        const blobDirs = await readdir(join(dataDir, 'artifacts', 'blobs', 'sha256'));
        assert.ok(blobDirs.length > 0);
      } finally {
        await store.close();
      }
      t.diagnostic(
        `acknowledged before the kill: ${acked.versions.length} versions, ${acked.batches.length} metric batches, ${acked.artifacts.length} artifacts`,
      );
    });
  });
}
