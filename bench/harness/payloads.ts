/**
 * The benchmark's requests: one body per sample row (64 rows of the Adult test split, 30 FP32
 * features each) in every wire format, written once to bench/.out/ for wrk and ghz, and the
 * checks that each server answers them with the probabilities scikit-learn computed.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';

export const MODEL = 'logreg30';
export const N_FEATURES = 30;
export const INFER_PATH = `/v2/models/${MODEL}/infer`;

export interface Samples {
  feature_names: string[];
  rows: number[][];
  /** scikit-learn's predict_proba for each row, [p(<=50K), p(>50K)]. */
  probabilities: number[][];
}

export function loadSamples(root: string): Samples {
  const s = JSON.parse(
    readFileSync(join(root, 'bench', 'models', `${MODEL}-samples.json`), 'utf8'),
  ) as Samples;
  if (s.rows.some((r) => r.length !== N_FEATURES))
    throw new Error(`every sample row must have ${N_FEATURES} values`);
  return s;
}

/** A V2 JSON body, exactly what a client library sends for one row. */
export function jsonBody(row: number[], extra: Record<string, unknown> = {}): Buffer {
  const body = { inputs: [{ name: 'input', shape: [1, N_FEATURES], datatype: 'FP32', data: row }], ...extra };
  return Buffer.from(JSON.stringify(body));
}

const BINARY_HEADER = JSON.stringify({
  inputs: [
    {
      name: 'input',
      shape: [1, N_FEATURES],
      datatype: 'FP32',
      parameters: { binary_data_size: N_FEATURES * 4 },
    },
  ],
  parameters: { binary_data_output: true },
});

export function rawRow(row: number[]): Buffer {
  const b = Buffer.alloc(N_FEATURES * 4);
  for (let i = 0; i < row.length; i++) b.writeFloatLE(row[i]!, i * 4);
  return b;
}

/** Binary tensor extension: the JSON header, then the row as little-endian FP32. */
export function binaryBody(row: number[]): { body: Buffer; headerLength: number } {
  const header = Buffer.from(BINARY_HEADER);
  return { body: Buffer.concat([header, rawRow(row)]), headerLength: header.length };
}

/** How wrk sends one case: a path, headers shared by every body, and the bodies in turn. */
export interface WrkPayload {
  path: string;
  headers: Record<string, string>;
  bodies: Buffer[];
}

export type HttpFormat = 'json' | 'binary' | 'mlserver' | 'records' | 'records-checked';

/** The records-API copies of the model: named features, and the same with a schema check. */
export const RECORDS_MODEL = `${MODEL}_records`;
export const CHECKED_MODEL = `${MODEL}_checked`;

/** A records-API body: one instance with the 30 named features. */
export function recordsBody(row: number[], names: readonly string[]): Buffer {
  const instance: Record<string, number> = {};
  names.forEach((n, i) => {
    instance[n] = row[i]!;
  });
  return Buffer.from(JSON.stringify({ instances: [instance] }));
}

export function wrkPayload(format: HttpFormat, samples: Samples): WrkPayload {
  if (format === 'records' || format === 'records-checked') {
    return {
      path: `/v1/models/${format === 'records' ? RECORDS_MODEL : CHECKED_MODEL}:predict`,
      headers: { 'Content-Type': 'application/json' },
      bodies: samples.rows.map((r) => recordsBody(r, samples.feature_names)),
    };
  }
  if (format === 'binary') {
    const bodies = samples.rows.map((r) => binaryBody(r));
    return {
      path: INFER_PATH,
      headers: {
        'Content-Type': 'application/octet-stream',
        'Inference-Header-Content-Length': String(bodies[0]!.headerLength),
      },
      bodies: bodies.map((b) => b.body),
    };
  }
  // MLServer's scikit-learn runtime answers predict() unless told; ask for the probabilities,
  // the output the other servers return too.
  const extra = format === 'mlserver' ? { outputs: [{ name: 'predict_proba' }] } : {};
  return {
    path: INFER_PATH,
    headers: { 'Content-Type': 'application/json' },
    bodies: samples.rows.map((r) => jsonBody(r, extra)),
  };
}

/** Writes the bodies and the manifest bench/wrk/post.lua reads; returns the manifest's path. */
export function writeWrkManifest(dir: string, name: string, payload: WrkPayload): string {
  const bodies = join(dir, name);
  mkdirSync(bodies, { recursive: true });
  const lines = [`path ${payload.path}`];
  for (const [k, v] of Object.entries(payload.headers)) lines.push(`header ${k}: ${v}`);
  payload.bodies.forEach((b, i) => {
    const file = join(bodies, `${i}.body`);
    writeFileSync(file, b);
    lines.push(`body ${file}`);
  });
  const manifest = join(dir, `${name}.manifest`);
  writeFileSync(manifest, `${lines.join('\n')}\n`);
  return manifest;
}

/** ghz's data file: one ModelInferRequest per row (protobuf JSON, bytes in base64), sent in turn. */
export function writeGhzData(dir: string, samples: Samples): string {
  const messages = samples.rows.map((r) => ({
    model_name: MODEL,
    inputs: [{ name: 'input', datatype: 'FP32', shape: [1, N_FEATURES] }],
    raw_input_contents: [rawRow(r).toString('base64')],
  }));
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'grpc-data.json');
  writeFileSync(file, JSON.stringify(messages));
  return file;
}

// ---------------------------------------------------------------------------------------------
// Answer checks: every case but the bare ceiling must return scikit-learn's probabilities.

const TOLERANCE = 1e-5;

function assertClose(what: string, got: ArrayLike<number>, want: number[]): void {
  if (got.length !== want.length || want.some((w, i) => Math.abs(w - got[i]!) > TOLERANCE)) {
    throw new Error(`${what}: got [${Array.from(got).join(', ')}], expected [${want.join(', ')}]`);
  }
}

interface V2Output {
  name: string;
  data?: number[] | number[][];
  parameters?: { binary_data_size?: number };
}

async function post(url: string, body: Buffer, headers: Record<string, string>): Promise<Response> {
  const res = await fetch(url, { method: 'POST', body, headers });
  if (res.status !== 200) throw new Error(`POST ${url}: HTTP ${res.status} ${await res.text()}`);
  return res;
}

/** Sends `rows` samples in the given format and compares the probabilities. */
export async function checkHttp(
  base: string,
  format: HttpFormat | 'bare',
  samples: Samples,
  rows = 4,
): Promise<void> {
  const payload = wrkPayload(format === 'bare' ? 'json' : format, samples);
  for (let i = 0; i < rows; i++) {
    const res = await post(base + payload.path, payload.bodies[i]!, payload.headers);
    if (format === 'bare') {
      await res.arrayBuffer();
      return;
    }
    const want = samples.probabilities[i]!;
    if (format === 'binary') {
      const buf = Buffer.from(await res.arrayBuffer());
      const hl = Number(res.headers.get('inference-header-content-length'));
      const header = JSON.parse(buf.toString('utf8', 0, hl)) as { outputs: V2Output[] };
      let offset = hl;
      for (const o of header.outputs) {
        const size = o.parameters?.binary_data_size;
        if (size === undefined) throw new Error(`binary answer: output ${o.name} has no binary_data_size`);
        if (o.name === 'probabilities') {
          const bytes = buf.subarray(offset, offset + size);
          const probs = Array.from({ length: size / 4 }, (_, k) => bytes.readFloatLE(k * 4));
          assertClose(`${format} row ${i}`, probs, want);
        }
        offset += size;
      }
      continue;
    }
    if (format === 'records' || format === 'records-checked') {
      const body = (await res.json()) as { predictions?: { probabilities: Record<string, number> }[] };
      const p = body.predictions?.[0]?.probabilities;
      if (!p) throw new Error(`${format} row ${i}: no probabilities in ${JSON.stringify(body)}`);
      assertClose(`${format} row ${i}`, [p['0']!, p['1']!], want);
      continue;
    }
    const body = (await res.json()) as { outputs: V2Output[] };
    const name = format === 'mlserver' ? 'predict_proba' : 'probabilities';
    const out = body.outputs.find((o) => o.name === name);
    if (!out?.data) throw new Error(`${format} row ${i}: no output '${name}' in ${JSON.stringify(body)}`);
    assertClose(`${format} row ${i}`, out.data.flat(), want);
  }
}

export async function checkGrpc(
  target: string,
  protoPath: string,
  samples: Samples,
  rows = 4,
): Promise<void> {
  const def = loadSync(protoPath, { keepCase: true, longs: String, enums: String, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as any;
  const client = new pkg.inference.GRPCInferenceService(target, grpc.credentials.createInsecure());
  try {
    for (let i = 0; i < rows; i++) {
      const request = {
        model_name: MODEL,
        inputs: [{ name: 'input', datatype: 'FP32', shape: [1, N_FEATURES] }],
        raw_input_contents: [rawRow(samples.rows[i]!)],
      };
      const res = await new Promise<any>((resolve, reject) =>
        client.ModelInfer(request, (err: Error | null, r: unknown) => (err ? reject(err) : resolve(r))),
      );
      const k = (res.outputs as { name: string }[]).findIndex((o) => o.name === 'probabilities');
      const bytes = res.raw_output_contents[k] as Buffer;
      const probs = Array.from({ length: bytes.length / 4 }, (_, j) => bytes.readFloatLE(j * 4));
      assertClose(`grpc row ${i}`, probs, samples.probabilities[i]!);
    }
  } finally {
    client.close();
  }
}
