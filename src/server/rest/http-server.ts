import {
  createServer,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { gunzip, inflate } from 'node:zlib';
import type { Logger } from 'pino';
import type { Scope } from '../../auth/index.js';
import { SlipwayError, toSlipwayError } from '../../errors/index.js';
import {
  Cancellation,
  cudaUnsupported,
  type DataPlane,
  ELEMENT_SIZE,
  fromBytes,
  type InferRequest,
  type ModelConfig,
  noCudaRegion,
  type Parameters,
  recordsLayout,
  type SharedMemoryRegion,
  type TransportTimes,
  writeSharedOutputs,
} from '../../inference/index.js';
import type { ServingMetrics } from '../../metrics/index.js';
import { checkRequestId, decodeInferRequest, encodeError, encodeInferResponse } from './v2-codec.js';

const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);
/** Paths the server keeps split and decoded; past this many, it starts over. */
const RECENT_PATHS = 256;
/** Longer paths are split and decoded on every request, never kept. */
const RECENT_PATH_MAX_LENGTH = 256;

export interface HttpServerOptions {
  host: string;
  port: number;
  maxRequestBytes: number;
  logger: Logger;
  metrics?: ServingMetrics;
  /** Model configuration, for the records API's feature and label names. */
  modelConfig: (model: string) => ModelConfig | undefined;
  /**
   * Answers every request the inference routes do not (registry, MLflow, admin API): the
   * control plane's router. The inference path never goes through it.
   */
  fallback?: (req: IncomingMessage, res: ServerResponse) => void;
  /**
   * Checks the caller may use a scope (`read`, `predict`, `admin`); throws
   * SLIPWAY_ERR_UNAUTHENTICATED / SLIPWAY_ERR_FORBIDDEN. Absent: no auth. Health is always open.
   */
  authorize?: (req: IncomingMessage, scope: Scope) => unknown;
}

export interface RunningHttpServer {
  server: Server;
  port: number;
  url: string;
  /** Stops accepting connections, lets in-flight requests finish, then closes the rest. */
  close(graceMs: number): Promise<void>;
}

/** Header carrying a per-request timeout in milliseconds (the `timeout` parameter is in µs, as in Triton). */
export const TIMEOUT_HEADER = 'slipway-timeout-ms';

/** A response that can carry its request's cancellation, fired if the client goes away. */
class SlipwayResponse<Request extends IncomingMessage = IncomingMessage> extends ServerResponse<Request> {
  cancel?: Cancellation;
}

type Handler = (req: IncomingMessage, res: ServerResponse, segs: readonly string[]) => Promise<void> | void;

/**
 * The REST transport: Open Inference Protocol (JSON and binary), Triton's repository, config and
 * statistics extensions, the records API and /metrics, on plain `node:http`. Measured faster than
 * a framework router on the inference path (see docs/BENCHMARKS.md); every handler converts, calls
 * the data plane, and maps errors.
 */
export async function startHttpServer(
  plane: DataPlane,
  options: HttpServerOptions,
): Promise<RunningHttpServer> {
  const { logger, metrics } = options;
  let inFlight = 0;
  let draining = false;
  let drained: (() => void) | undefined;

  // Headers go in writeHead's object: one set with setHeader first sends every header down
  // Node's slower merging path.
  const send = (
    res: ServerResponse,
    status: number,
    body: string,
    contentType = 'application/json',
    requestId?: string,
  ) => {
    const headers: OutgoingHttpHeaders = {
      'content-type': contentType,
      'content-length': Buffer.byteLength(body),
    };
    if (requestId !== undefined) headers['x-request-id'] = requestId;
    if (draining) headers.connection = 'close';
    res.writeHead(status, headers);
    res.end(body);
  };
  const sendJson = (res: ServerResponse, status: number, value: unknown) =>
    send(res, status, JSON.stringify(value));
  const sendError = (res: ServerResponse, err: unknown) => {
    const e = toSlipwayError(err);
    if (e.code === 'SLIPWAY_ERR_INTERNAL') logger.error({ err }, 'internal error');
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const retry = e.retryAfter;
    if (retry !== undefined) res.setHeader('retry-after', String(retry));
    if (e.code === 'SLIPWAY_ERR_PAYLOAD_TOO_LARGE') res.setHeader('connection', 'close');
    send(res, e.httpStatus, encodeError(e));
  };

  const readBody = (req: IncomingMessage): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > options.maxRequestBytes) {
        reject(tooLarge(options.maxRequestBytes));
        req.resume();
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > options.maxRequestBytes) {
          // Answer 413 now and discard the rest; the connection closes after the answer.
          reject(tooLarge(options.maxRequestBytes));
          req.removeAllListeners('data');
          req.removeAllListeners('end');
          req.resume();
          return;
        }
        chunks.push(c);
      });
      req.on('end', () => {
        const body = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
        const encoding = req.headers['content-encoding'];
        // The limit holds for the decompressed body too: a small gzip body may expand a thousandfold.
        const limit = { maxOutputLength: options.maxRequestBytes };
        const inflated = (e: Error & { code?: string }) =>
          reject(
            e.code === 'ERR_BUFFER_TOO_LARGE'
              ? tooLarge(options.maxRequestBytes, 'once decompressed')
              : badEncoding(e),
          );
        if (!encoding || encoding === 'identity') resolve(body);
        else if (encoding === 'gzip') gunzipAsync(body, limit).then(resolve, inflated);
        else if (encoding === 'deflate') inflateAsync(body, limit).then(resolve, inflated);
        else
          reject(
            new SlipwayError(
              'SLIPWAY_ERR_BAD_REQUEST',
              `Content-Encoding '${encoding}' is not supported (gzip, deflate)`,
            ),
          );
      });
      // The client went away before the body ended: nobody waits for the answer.
      req.on('error', () =>
        reject(
          new SlipwayError('SLIPWAY_ERR_CANCELLED', 'the client closed the connection before the body ended'),
        ),
      );
    });

  const readJsonBody = async (req: IncomingMessage): Promise<Record<string, unknown>> => {
    const body = await readBody(req);
    if (body.length === 0) return {};
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch (err) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        `the request body is not valid JSON: ${(err as Error).message}`,
      );
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', 'the request body must be a JSON object');
    }
    return parsed as Record<string, unknown>;
  };

  const timeoutOf = (req: IncomingMessage, request: InferRequest | undefined): number | undefined => {
    const header = req.headers[TIMEOUT_HEADER];
    if (header !== undefined) {
      const ms = Number(header);
      if (!Number.isFinite(ms) || ms <= 0) {
        throw new SlipwayError(
          'SLIPWAY_ERR_BAD_REQUEST',
          `header ${TIMEOUT_HEADER} must be a positive number of milliseconds`,
        );
      }
      return ms;
    }
    const us = request?.parameters?.timeout;
    if (us === undefined) return undefined;
    if (typeof us !== 'number' || !Number.isFinite(us) || us < 0) {
      throw new SlipwayError(
        'SLIPWAY_ERR_BAD_REQUEST',
        "parameter 'timeout' must be microseconds (a number >= 0; 0 means none)",
      );
    }
    // 0 means no timeout, as in Triton and over gRPC.
    return us > 0 ? us / 1000 : undefined;
  };

  /** Fires when the client goes away before its answer is written, so it leaves the queue. */
  const cancelOnClose = (res: ServerResponse): Cancellation => {
    const cancel = new Cancellation();
    (res as SlipwayResponse).cancel = cancel;
    return cancel;
  };

  // One 'close' listener per response does both jobs: in-flight accounting and cancellation.
  function onResponseClose(this: SlipwayResponse): void {
    inFlight--;
    if (this.cancel && !this.writableFinished) this.cancel.fire();
    if (draining && inFlight === 0) drained?.();
  }

  const infer: Handler = async (req, res, segs) => {
    // segs: v2 models {m} [versions {v}] infer
    const model = segs[2]!;
    const version = segs[3] === 'versions' ? segs[4] : undefined;
    const start = performance.now();
    let answered = false;
    const transport: TransportTimes | undefined = plane.tracing
      ? { protocol: 'HTTP', recvStart: start, recvEnd: start }
      : undefined;
    try {
      const body = await readBody(req);
      if (transport) transport.recvEnd = performance.now();
      const headerLength = req.headers['inference-header-content-length'];
      // The regions as decoding sees them; outputs asked there are written there (or fail 400).
      const regions = plane.sharedMemory.size > 0 ? plane.sharedMemory : undefined;
      let request: InferRequest;
      if (headerLength === '0') request = rawBodyRequest(plane, model, version, body);
      else {
        let hl: number | undefined;
        if (headerLength !== undefined) {
          hl = Number(headerLength);
          if (!Number.isInteger(hl) || hl < 0) {
            throw new SlipwayError(
              'SLIPWAY_ERR_BINARY_DATA',
              'Inference-Header-Content-Length must be a non-negative integer',
            );
          }
        }
        request = decodeInferRequest(body, hl, regions);
      }
      const response = await plane.infer(model, version, request, {
        protocol: 'rest',
        timeoutMs: timeoutOf(req, request),
        cancel: cancelOnClose(res),
        headers: req.headers,
        transport,
      });
      // Counted as answered from here: a failure to encode (an FP16 output asked for as JSON)
      // is the client's 400 without a second count.
      answered = true;
      if (regions) writeSharedOutputs(regions, request, response);
      const { json, binary } = encodeInferResponse(request, response);
      if (transport) transport.sendStart = performance.now();
      if (binary.length === 0) {
        send(res, 200, json, 'application/json', response.id);
        if (transport) transport.sendEnd = performance.now();
        return;
      }
      const header = Buffer.from(json, 'utf8');
      let total = header.length;
      for (const b of binary) total += b.byteLength;
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'inference-header-content-length': header.length,
        'content-length': total,
        ...(response.id !== undefined ? { 'x-request-id': response.id } : {}),
        ...(draining ? { connection: 'close' } : {}),
      });
      res.write(header);
      for (const b of binary) res.write(b);
      res.end();
      if (transport) transport.sendEnd = performance.now();
    } catch (err) {
      if (!answered) plane.failed(model, 'rest', err, (performance.now() - start) / 1000);
      throw err;
    }
  };

  const predict: Handler = async (req, res, segs) => {
    // segs: v1 models {m}:predict  or  v1 models {m} versions {v}:predict
    const last = segs[segs.length - 1]!;
    const model = segs.length === 3 ? last.slice(0, -':predict'.length) : segs[2]!;
    const version = segs.length === 5 ? last.slice(0, -':predict'.length) : undefined;
    const start = performance.now();
    try {
      const body = await readJsonBody(req);
      const response = await plane.predictRecords(
        model,
        version,
        body.instances,
        body.id === undefined ? undefined : checkRequestId(body.id),
        {
          protocol: 'records',
          timeoutMs: timeoutOf(req, undefined),
          cancel: cancelOnClose(res),
          headers: req.headers,
        },
      );
      const answer = JSON.stringify({
        model_name: response.modelName,
        model_version: response.modelVersion,
        ...(response.id !== undefined ? { id: response.id } : {}),
        predictions: response.predictions,
        ...(response.quarantined ? { quarantined: response.quarantined } : {}),
      });
      send(res, 200, answer, 'application/json', response.id);
    } catch (err) {
      plane.failed(model, 'records', err, (performance.now() - start) / 1000);
      throw err;
    }
  };

  const recordsMetadata: Handler = (_req, res, segs) => {
    const model = segs[2]!;
    const version = segs[4];
    const meta = plane.modelMetadata(model, version);
    const config = options.modelConfig(model)!;
    let layout: ReturnType<typeof recordsLayout> | undefined;
    let reason: string | undefined;
    try {
      layout = recordsLayout(meta.inputs, config);
    } catch (err) {
      reason = (err as Error).message;
    }
    sendJson(res, 200, {
      name: meta.name,
      versions: meta.versions,
      features: layout?.features ?? [],
      ...(reason ? { records_api: reason } : {}),
      labels: config.labelNames ?? null,
      outputs: meta.outputs,
    });
  };

  /** Triton's trace extension: read the settings, or change some and read them all. */
  const traceSetting = async (
    req: IncomingMessage,
    res: ServerResponse,
    model: string | undefined,
    method: string,
  ) => {
    if (method === 'GET') return sendJson(res, 200, plane.traceSettings(model));
    return sendJson(res, 200, await plane.updateTraceSettings(model, await readJsonBody(req)));
  };

  /**
   * Triton's shared memory extensions: `/v2/systemsharedmemory[/region/{name}]/status`,
   * `.../region/{name}/register` and `[.../region/{name}]/unregister`, and the same under
   * `cudasharedmemory`, which this CPU server answers with no regions and refuses to register.
   */
  const sharedMemory = async (
    req: IncomingMessage,
    res: ServerResponse,
    segs: readonly string[],
    method: string,
  ) => {
    const cuda = segs[1] === 'cudasharedmemory';
    const n = segs.length;
    const region = n === 5 && segs[2] === 'region' ? segs[3] : undefined;
    const action = n === 3 ? segs[2] : region !== undefined ? segs[4] : undefined;
    if (action === 'status' && method === 'GET') {
      if (cuda) {
        if (region !== undefined) throw noCudaRegion(region);
        return sendJson(res, 200, []);
      }
      return sendJson(res, 200, plane.sharedMemory.status(region).map(regionJson));
    }
    if (action === 'register' && method === 'POST' && region !== undefined) {
      const body = await readJsonBody(req);
      if (cuda) throw cudaUnsupported();
      await plane.registerSharedMemory({
        name: region,
        key: body.key as string,
        offset: (body.offset ?? 0) as number,
        byteSize: body.byte_size as number,
      });
      return sendJson(res, 200, {});
    }
    if (action === 'unregister' && method === 'POST') {
      if (!cuda) await plane.unregisterSharedMemory(region);
      return sendJson(res, 200, {});
    }
    throw new SlipwayError('SLIPWAY_ERR_ROUTE_NOT_FOUND', `no endpoint ${method} /${segs.join('/')}`);
  };

  // Paths routed lately, split and decoded (read only): clients call a few paths over and over,
  // and splitting one cost ~0.7 µs a request.
  const recentPaths = new Map<string, readonly string[]>();
  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    let segs = recentPaths.get(path);
    if (segs === undefined) {
      const raw = path.split('/').filter((s) => s !== '');
      // Paths outside the inference routes go to the control plane as they came, so that it, not
      // this server, answers what it cannot decode (in its own API's error shape).
      if (options.fallback && raw[0] !== 'v2' && raw[0] !== 'v1' && raw[0] !== 'metrics')
        return options.fallback(req, res);
      segs = raw.map(decodeSegment);
      if (path.length <= RECENT_PATH_MAX_LENGTH) {
        if (recentPaths.size >= RECENT_PATHS) recentPaths.clear();
        recentPaths.set(path, segs);
      }
    }
    // HEAD is answered as GET; Node leaves the body out.
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
    const n = segs.length;
    if (options.authorize) {
      const scope = scopeFor(segs, method);
      if (scope) {
        const checked = options.authorize(req, scope);
        if (checked instanceof Promise) await checked;
      }
    }
    if (segs[0] === 'v2') {
      if (n === 1 && method === 'GET') return sendJson(res, 200, plane.serverMetadata());
      if (segs[1] === 'health' && n === 3 && method === 'GET') {
        if (segs[2] === 'live') return sendJson(res, plane.live() ? 200 : 503, { live: plane.live() });
        if (segs[2] === 'ready') return sendJson(res, plane.ready() ? 200 : 503, { ready: plane.ready() });
      }
      if (segs[1] === 'models') {
        if (n === 3 && segs[2] === 'stats' && method === 'GET')
          return sendJson(res, 200, { model_stats: await plane.statistics() });
        if (
          n === 5 &&
          segs[3] === 'trace' &&
          segs[4] === 'setting' &&
          (method === 'GET' || method === 'POST')
        )
          return traceSetting(req, res, segs[2]!, method);
        if (n >= 3) {
          const model = segs[2]!;
          const hasVersion = segs[3] === 'versions' && n >= 5;
          const version = hasVersion ? segs[4] : undefined;
          const action = hasVersion ? segs[5] : segs[3];
          const expected = hasVersion ? 6 : 4;
          if (action === undefined && n === expected - 1 && method === 'GET') {
            return sendJson(res, 200, plane.modelMetadata(model, version));
          }
          if (n === expected) {
            if (action === 'infer' && method === 'POST') return infer(req, res, segs);
            if (action === 'ready' && method === 'GET') {
              const ready = plane.modelReady(model, version);
              return sendJson(res, ready ? 200 : 503, {
                name: model,
                ...(version ? { version } : {}),
                ready,
              });
            }
            if (action === 'config' && method === 'GET')
              return sendJson(res, 200, plane.modelConfig(model, version));
            if (action === 'stats' && method === 'GET') {
              return sendJson(res, 200, { model_stats: await plane.statistics(model, version) });
            }
          }
        }
      }
      if (
        segs[1] === 'trace' &&
        segs[2] === 'setting' &&
        n === 3 &&
        (method === 'GET' || method === 'POST')
      ) {
        return traceSetting(req, res, undefined, method);
      }
      if (segs[1] === 'logging' && n === 2) {
        // Triton's logging extension: read, or change some settings and read them all.
        if (method === 'GET') return sendJson(res, 200, plane.logSettings());
        if (method === 'POST')
          return sendJson(res, 200, await plane.updateLogSettings(await readJsonBody(req)));
      }
      if (segs[1] === 'systemsharedmemory' || segs[1] === 'cudasharedmemory') {
        return sharedMemory(req, res, segs, method);
      }
      if (segs[1] === 'repository' && method === 'POST') {
        if (n === 3 && segs[2] === 'index') {
          const body = await readJsonBody(req);
          if (body.ready !== undefined && typeof body.ready !== 'boolean') {
            throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', "'ready' must be a boolean");
          }
          return sendJson(res, 200, await plane.repositoryIndex(body.ready === true));
        }
        if (n === 5 && segs[2] === 'models' && (segs[4] === 'load' || segs[4] === 'unload')) {
          const body = await readJsonBody(req);
          let params: Parameters | undefined;
          if (body.parameters !== undefined) {
            if (
              typeof body.parameters !== 'object' ||
              body.parameters === null ||
              Array.isArray(body.parameters)
            ) {
              throw new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', "'parameters' must be an object");
            }
            params = body.parameters as Parameters;
          }
          if (segs[4] === 'load') await plane.loadModel(segs[3]!, params);
          else await plane.unloadModel(segs[3]!);
          return sendJson(res, 200, {});
        }
      }
    } else if (segs[0] === 'v1' && segs[1] === 'models' && n >= 3) {
      const last = segs[n - 1]!;
      if (
        method === 'POST' &&
        last.endsWith(':predict') &&
        last !== ':predict' && // no model or version before the verb: no such endpoint
        (n === 3 || (n === 5 && segs[3] === 'versions'))
      ) {
        return predict(req, res, segs);
      }
      if (method === 'GET' && last !== '' && (n === 3 || (n === 5 && segs[3] === 'versions')))
        return recordsMetadata(req, res, segs);
    } else if (n === 1 && segs[0] === 'metrics' && method === 'GET' && metrics) {
      return send(res, 200, await metrics.render(), metrics.contentType);
    }
    if (options.fallback && segs[0] !== 'v2') return options.fallback(req, res);
    throw new SlipwayError('SLIPWAY_ERR_ROUTE_NOT_FOUND', `no endpoint ${method} ${path}`);
  };

  const server = createServer({ keepAliveTimeout: 65_000, ServerResponse: SlipwayResponse }, (req, res) => {
    inFlight++;
    res.on('close', onResponseClose);
    route(req, res).catch((err) => sendError(res, err));
  });
  // Requests Node's parser refuses before any handler runs still get a JSON error body.
  server.on('clientError', (err: Error & { code?: string }, socket) => {
    if (!socket.writable) return;
    const tooLong = err.code === 'HPE_HEADER_OVERFLOW';
    const body = JSON.stringify({
      error: tooLong
        ? 'the request line and headers exceed the 16 KiB the server reads'
        : `the request is not valid HTTP/1.1 (${err.code ?? err.message})`,
      code: 'SLIPWAY_ERR_BAD_REQUEST',
    });
    socket.end(
      `HTTP/1.1 ${tooLong ? '431 Request Header Fields Too Large' : '400 Bad Request'}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const hostForUrl = options.host.includes(':') ? `[${options.host}]` : options.host;
  return {
    server,
    port,
    url: `http://${hostForUrl}:${port}`,
    async close(graceMs: number) {
      draining = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      if (inFlight > 0) {
        await Promise.race([
          new Promise<void>((resolve) => {
            drained = resolve;
          }),
          new Promise((resolve) => setTimeout(resolve, graceMs).unref()),
        ]);
      }
      server.closeAllConnections();
      await closed;
    },
  };
}

/** The scope an inference-side route needs: none for health and for paths the control plane routes. */
function scopeFor(segs: readonly string[], method: string): Scope | null {
  if (segs[0] === 'v2') {
    if (segs[1] === 'health') return null;
    const last = segs[segs.length - 1];
    if (last === 'infer' && method === 'POST') return 'predict';
    if (segs[1] === 'repository' && (last === 'load' || last === 'unload')) return 'admin';
    if (segs[1]?.endsWith('sharedmemory') && (last === 'register' || last === 'unregister')) return 'predict';
    if (segs[1] === 'logging' && segs.length === 2 && method === 'POST') return 'admin';
    if (last === 'setting' && segs[segs.length - 2] === 'trace' && method === 'POST') return 'admin';
    return 'read';
  }
  if (segs[0] === 'v1' && segs[1] === 'models') {
    return segs[segs.length - 1]!.endsWith(':predict') ? 'predict' : 'read';
  }
  if (segs[0] === 'metrics' && segs.length === 1) return 'read';
  return null;
}

/** A registered region as Triton's status answer spells it. */
function regionJson(r: SharedMemoryRegion) {
  return { name: r.name, key: r.key, offset: r.offset, byte_size: r.byteSize };
}

function decodeSegment(s: string): string {
  if (!s.includes('%')) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    throw new SlipwayError(
      'SLIPWAY_ERR_BAD_REQUEST',
      `the path segment '${s}' is not valid percent-encoding`,
    );
  }
}

function tooLarge(limit: number, when = ''): SlipwayError {
  return new SlipwayError(
    'SLIPWAY_ERR_PAYLOAD_TOO_LARGE',
    `the request body${when ? ` ${when}` : ''} exceeds the limit of ${limit} bytes`,
  );
}

function badEncoding(e: Error): SlipwayError {
  return new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', `the request body cannot be decompressed: ${e.message}`);
}

/**
 * `Inference-Header-Content-Length: 0`: the whole body is the raw bytes of the model's single
 * input, batch 1, and every output comes back binary.
 */
function rawBodyRequest(
  plane: DataPlane,
  model: string,
  version: string | undefined,
  body: Buffer,
): InferRequest {
  const meta = plane.modelMetadata(model, version);
  if (meta.inputs.length !== 1) {
    throw new SlipwayError(
      'SLIPWAY_ERR_BINARY_DATA',
      `a raw binary body (Inference-Header-Content-Length: 0) needs a model with one input; '${model}' has ${meta.inputs.length}`,
    );
  }
  const input = meta.inputs[0]!;
  const data = fromBytes(input.datatype, body, input.name);
  const shape = input.shape.map((d, i) => (d === -1 && i === 0 ? 1 : d));
  const unknown = shape.filter((d) => d === -1).length;
  if (unknown > 1) {
    throw new SlipwayError(
      'SLIPWAY_ERR_BINARY_DATA',
      `input '${input.name}' has more than one dynamic dimension; send a JSON header`,
    );
  }
  if (unknown === 1) {
    const known = shape.reduce((a, d) => (d === -1 ? a : a * d), 1);
    const count = input.datatype === 'BYTES' ? data.length : body.length / ELEMENT_SIZE[input.datatype];
    shape[shape.indexOf(-1)] = count / known;
  }
  return {
    inputs: [{ name: input.name, datatype: input.datatype, shape, data }],
    parameters: { binary_data_output: true },
  };
}
