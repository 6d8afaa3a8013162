/** Shared fixtures for the Node suites: a real server on port 0 over the fixture repository. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { type Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { pino } from 'pino';
import { type App, startApp } from '../src/app.js';
import { loadSettings, type Settings } from '../src/config/index.js';
import { grpcProtoPath, LOADER_OPTIONS } from '../src/server/grpc/index.js';

export const FIXTURES = fileURLToPath(new URL('../../test/fixtures/models', import.meta.url));
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** The CLI as `npx slipway` runs it. */
export const CLI = join(REPO_ROOT, 'bin', 'slipway.js');

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  at: number;
}

/** Starts the real CLI (`node [nodeArgs] bin/slipway.js args`) in `cwd`, collecting its output. */
export function spawnCli(args: string[], env: Record<string, string>, cwd: string, nodeArgs: string[] = []) {
  const child = spawn(process.execPath, [...nodeArgs, CLI, ...args], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => {
    stdout += d;
  });
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  const exited = new Promise<Exit>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, at: performance.now() })),
  );
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}

/**
 * Starts the whole server (REST; gRPC when asked) on free ports over `models`, with its database
 * and artifacts in a fresh temporary data dir (removed when the app closes) unless one is given.
 */
export async function startTestApp(overrides: Partial<Settings> = {}): Promise<App> {
  const ownDataDir =
    overrides.dataDir === undefined ? await mkdtemp(join(tmpdir(), 'slipway-data-')) : undefined;
  const settings = loadSettings({
    flags: {
      models: FIXTURES,
      dataDir: ownDataDir,
      host: '127.0.0.1',
      port: 0,
      grpcPort: null,
      logLevel: 'silent',
      shutdownGraceMs: 5000,
      ...overrides,
    },
  });
  const app = await startApp(settings, { logger: pino({ level: 'silent' }), processMetrics: false });
  if (ownDataDir) {
    const close = app.close.bind(app);
    let closing: Promise<void> | undefined;
    app.close = () => {
      closing ??= close().finally(() => rm(ownDataDir, { recursive: true, force: true }));
      return closing;
    };
  }
  return app;
}

/** Copies fixture models (all, or the named ones) into a fresh temp repository. */
export async function tempRepository(
  models?: string[],
): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'slipway-repo-'));
  if (models) for (const m of models) await cp(join(FIXTURES, m), join(dir, m), { recursive: true });
  else await cp(FIXTURES, dir, { recursive: true });
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}

export interface JsonResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

/** An answer with its text, and its body parsed when it is JSON (else undefined). */
export interface Reply {
  status: number;
  body: any;
  type: string | null;
  text: string;
}

/**
 * One request with fetch: bytes or a string go as sent (`application/octet-stream` unless a
 * content type is given), anything else as JSON.
 */
export async function fetchReply(
  url: string,
  method: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const h: Record<string, string> = { ...headers };
  let payload: string | Uint8Array | undefined;
  if (body instanceof Uint8Array || typeof body === 'string') {
    payload = body as string | Uint8Array;
    h['content-type'] ??= 'application/octet-stream';
  } else if (body !== undefined) {
    payload = JSON.stringify(body);
    h['content-type'] = 'application/json';
  }
  const res = await fetch(url, { method, headers: h, body: payload });
  const text = await res.text();
  let parsed: any;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, type: res.headers.get('content-type'), text };
}

export async function getJson<T = any>(url: string): Promise<JsonResponse<T>> {
  const res = await fetch(url);
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
}

export async function postJson<T = any>(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<JsonResponse<T>> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: any;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

const SLOW_ROW = Array.from({ length: 256 }, (_, i) => Math.cos(i) / 3);

/** A request for the `slow` fixture: `rows` rows of 256 FP32 (each row costs ~15–60 ms, by machine). */
export function slowRequest(rows: number) {
  return {
    inputs: [
      {
        name: 'INPUT0',
        datatype: 'FP32',
        shape: [rows, 256],
        data: Array.from({ length: rows }, () => SLOW_ROW).flat(),
      },
    ],
  };
}

/** add_sub request with `rows` rows of 4 values: INPUT0 = offset + 0.5·k (k = 0, 1, …), INPUT1 = 2. */
export function addSubRequest(rows: number, offset = 0) {
  const a = Array.from({ length: rows * 4 }, (_, k) => offset + k * 0.5);
  const b = Array.from({ length: rows * 4 }, () => 2);
  return {
    inputs: [
      { name: 'INPUT0', datatype: 'FP32', shape: [rows, 4], data: a },
      { name: 'INPUT1', datatype: 'FP32', shape: [rows, 4], data: b },
    ],
  };
}

/** Sends `count` add_sub infer requests of 4 rows to `base`, one after another; each must answer 200. */
export async function inferAddSubInTurn(base: string, count: number): Promise<void> {
  const body = JSON.stringify(addSubRequest(4));
  for (let i = 0; i < count; i++) {
    const res = await fetch(`${base}/v2/models/add_sub/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    assert.equal(res.status, 200);
    await res.arrayBuffer();
  }
}

/** Builds a binary-extension body: JSON header, then the raw tensors. */
export function binaryBody(header: unknown, tensors: Uint8Array[]): { body: Buffer; headerLength: number } {
  const json = Buffer.from(JSON.stringify(header));
  return {
    body: Buffer.concat([json, ...tensors.map((t) => Buffer.from(t.buffer, t.byteOffset, t.byteLength))]),
    headerLength: json.length,
  };
}

/** POSTs a binary-extension request (JSON header, then raw tensors) and returns the response. */
export function postBinary(url: string, header: unknown, tensors: Uint8Array[]): Promise<Response> {
  const { body, headerLength } = binaryBody(header, tensors);
  return fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(headerLength),
    },
    body,
  });
}

/** Splits a binary-extension response into its JSON header and raw output bytes by name. */
export async function readBinaryResponse(res: Response): Promise<{ header: any; raw: Map<string, Buffer> }> {
  const buf = Buffer.from(await res.arrayBuffer());
  const hl = Number(res.headers.get('inference-header-content-length'));
  const header = JSON.parse(buf.subarray(0, hl).toString('utf8'));
  const raw = new Map<string, Buffer>();
  let offset = hl;
  for (const o of header.outputs) {
    const size = o.parameters?.binary_data_size;
    if (size === undefined) continue;
    raw.set(o.name, buf.subarray(offset, offset + size));
    offset += size;
  }
  return { header, raw };
}

export interface HttpReply {
  status: number;
  text: string;
  body: any;
  /** The request went over a connection an earlier request had used. */
  reused: boolean;
}

/**
 * One request with node:http, on a fresh connection unless `agent` is given (what a new client
 * sees). Rejects with the socket error (ECONNREFUSED, ECONNRESET).
 */
export function httpCall(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  agent: Agent | false = false,
): Promise<HttpReply> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const req = request(
      `${base}${path}`,
      {
        method,
        agent,
        headers: payload ? { 'content-type': 'application/json', 'content-length': payload.length } : {},
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          const json = /json/.test(res.headers['content-type'] ?? '') && text !== '';
          resolve({
            status: res.statusCode!,
            text,
            body: json ? JSON.parse(text) : undefined,
            reused: req.reusedSocket,
          });
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** A grpc-js client of `inference.GRPCInferenceService` on 127.0.0.1 (methods called by name). */
export function grpcClient(port: number): grpc.Client {
  const definition = loadSync(grpcProtoPath(), LOADER_OPTIONS);
  const Service = (grpc.loadPackageDefinition(definition).inference as grpc.GrpcObject)
    .GRPCInferenceService as grpc.ServiceClientConstructor;
  return new Service(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
}
