/**
 * Triton's trace extension: a sample of requests (one in `trace_rate`, at most `trace_count`) is
 * traced, each trace being the request's timestamps through the server (`TIMESTAMPS`) and/or its
 * input and output tensors (`TENSORS`), written as Triton's JSON trace file. Settings are global,
 * or per model (a model's unset settings follow the global ones); they are read and changed at run
 * time through `GET`/`POST /v2[/models/{m}]/trace/setting` and gRPC `TraceSetting`. The trace file
 * itself is chosen when the server starts, never through the network.
 */
import { type FileHandle, open, rename, writeFile } from 'node:fs/promises';
import { describeValue, SlipwayError } from '../errors/index.js';
import { halfToFloat } from './classification.js';
import type { Tensor, TransportTimes } from './types.js';

/** The settings as Triton's clients read them (every value a string, the level a list). */
export interface TraceSettingValues {
  trace_level: string[];
  trace_rate: string;
  trace_count: string;
  log_frequency: string;
  trace_file: string;
  trace_mode: string;
}

/** One scope's settings: the global ones are all set; a model's only those it overrides. */
export interface TraceScopeState {
  level?: TraceLevel[];
  rate?: number;
  count?: number;
  logFrequency?: number;
}

export type TraceLevel = 'TIMESTAMPS' | 'TENSORS';

export interface TracerOptions {
  /** The file traces are written to ("" for none: tracing cannot be turned on then). */
  file: string;
  level: TraceLevel[];
  rate: number;
  count: number;
  logFrequency: number;
  /** Where a failed write is reported. */
  onWriteError?: (err: Error, path: string) => void;
}

/** Timestamps a traced request collects on its way, in `performance.now()` milliseconds. */
export interface TraceTimes {
  queueStart?: number;
  computeStart?: number;
  computeInputEnd?: number;
  computeOutputStart?: number;
  computeEnd?: number;
}

/** What a trace records of its request once it is answered or has failed. */
interface FinishedRequest {
  model: string;
  version: string;
  requestId?: string;
  inputs?: readonly Tensor[];
  outputs?: readonly Tensor[];
}

/** One sampled request. */
export interface Trace {
  readonly id: number;
  readonly setting: Setting;
  readonly start: number;
  readonly times: TraceTimes;
  /** Its tensors are traced: the caller keeps the inputs readable after the run. */
  readonly tensors: boolean;
  /** Filled by the transport that carried it; its send times come after `finish` is called. */
  readonly transport?: TransportTimes;
}

/**
 * The settings in force for the server or one model. An update replaces the object, as Triton
 * does, so counting starts afresh and traces already sampled finish under what sampled them.
 */
interface Setting {
  readonly values: Required<TraceScopeState>;
  /** What this scope sets itself (a model's others follow the global setting). */
  readonly specified: TraceScopeState;
  /** Requests seen, for sampling one in `rate`. */
  seen: number;
  /** Traces still to take (-1: no limit). */
  remaining: number;
  /** Sampled and not finished yet. */
  inFlight: number;
  /** Finished traces not written yet, as the entries of the file, and how many traces. */
  entries: object[];
  traces: number;
  retired: boolean;
}

const MAX_U32 = 0xffffffff;
const MAX_I32 = 0x7fffffff;
/** Traces held in memory at most before they are written, whatever `log_frequency` says. */
export const MAX_HELD_TRACES = 10_000;
const NAMES = ['trace_level', 'trace_rate', 'trace_count', 'log_frequency', 'trace_file', 'trace_mode'];

const bad = (message: string) => new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', message);

/**
 * Samples requests and writes their traces. `active` is false while no setting traces anything,
 * which is all a request pays then.
 *
 * @example
 *   const tracer = new Tracer({ file: '/tmp/trace.json', level: ['TIMESTAMPS'], rate: 100, count: -1, logFrequency: 1000 });
 *   const trace = tracer.active ? tracer.sample('adult') : undefined;
 */
export class Tracer {
  active = false;
  /** The settings given at start: what a cleared global setting goes back to. */
  private readonly initial: Required<TraceScopeState>;
  private global: Setting;
  private readonly models = new Map<string, Setting>();
  private nextId = 1;
  private nextFileIndex = 0;
  private writing: Promise<void> = Promise.resolve();
  /** The trace file itself, a JSON array appended to until close (log_frequency 0). */
  private main?: { handle: Promise<FileHandle | undefined>; first: boolean };
  /** Nanoseconds of the monotonic clock at `performance.now()` 0. */
  private readonly originNs: number;
  /** Traces waiting on the tick queue to be recorded, and who waits for them to be. */
  private deferred = 0;
  private settled?: () => void;
  /** Closed: a trace finished later is dropped rather than reopening the file. */
  private closed = false;

  constructor(private readonly options: TracerOptions) {
    this.originNs = Number(process.hrtime.bigint()) - performance.now() * 1e6;
    if (options.level.length > 0 && options.file === '') {
      throw new SlipwayError(
        'SLIPWAY_ERR_CONFIG',
        'traceLevel needs traceFile: the file traces are written to',
      );
    }
    this.initial = {
      level: [...options.level],
      rate: options.rate,
      count: options.count,
      logFrequency: options.logFrequency,
    };
    this.global = newSetting(this.initial, { ...this.initial }, options.count);
    this.refresh();
  }

  /** The settings in effect for a model (its own over the global ones), or the global ones. */
  settings(model?: string): TraceSettingValues {
    const s = (model === undefined ? undefined : this.models.get(model)) ?? this.global;
    return {
      trace_level: s.values.level.length === 0 ? ['OFF'] : [...s.values.level],
      trace_rate: String(s.values.rate),
      trace_count: String(s.remaining),
      log_frequency: String(s.values.logFrequency),
      trace_file: this.options.file,
      trace_mode: 'triton',
    };
  }

  /**
   * Applies a change as Triton's clients send it (`{"trace_rate": "10"}`, `{"trace_level":
   * ["TIMESTAMPS"]}`; null gives a model's setting back to the global one, and a global setting
   * back to its value at start) and returns what the scope now sets itself, which `replace`
   * repeats elsewhere. Throws a 400 naming the setting.
   */
  update(model: string | undefined, patch: unknown): TraceScopeState {
    if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
      throw bad('trace settings must be a JSON object of setting: value');
    }
    const current = model === undefined ? this.global : this.models.get(model);
    const next: TraceScopeState = { ...(current?.specified ?? {}) };
    for (const [name, value] of Object.entries(patch)) {
      if (!NAMES.includes(name))
        throw bad(`unknown trace setting '${name}'; the settings are ${NAMES.join(', ')}`);
      if (name === 'trace_file') {
        throw new SlipwayError(
          'SLIPWAY_ERR_NOT_IMPLEMENTED',
          "'trace_file' cannot be changed through the network: start the server with --trace-file (SLIPWAY_TRACE_FILE)",
        );
      }
      if (name === 'trace_mode') {
        if (value !== 'triton' && value !== null)
          throw bad(`'trace_mode' must be "triton", got ${describeValue(value)}`);
        continue;
      }
      if (value === null) delete next[KEY[name]!];
      else if (name === 'trace_level') next.level = parseLevel(value);
      else if (name === 'trace_rate') next.rate = parseInteger(name, value, 1, MAX_U32);
      else if (name === 'trace_count') next.count = parseInteger(name, value, -1, MAX_I32);
      else next.logFrequency = parseInteger(name, value, 0, MAX_U32);
    }
    if (model === undefined) Object.assign(next, { ...this.initial, ...next });
    const values = { ...(model === undefined ? this.initial : this.global.values), ...next };
    if (values.level.length > 0) {
      if (this.options.file === '')
        throw bad('tracing needs a trace file: start the server with --trace-file (SLIPWAY_TRACE_FILE)');
      if (next.count === 0)
        throw bad("'trace_count' 0 traces nothing: give -1 or more than 0, or trace_level OFF");
    }
    this.replace(model, next);
    return next;
  }

  /** Installs a scope's settings as `update` returned them (on this process, or on another one). */
  replace(model: string | undefined, specified: TraceScopeState): void {
    if (model === undefined) {
      const values = { ...this.initial, ...specified } as Required<TraceScopeState>;
      this.retire(this.global);
      this.global = newSetting(values, values, values.count);
      // Models that follow some global settings are set up again under the new ones.
      for (const [name, s] of this.models) {
        if (!isComplete(s.specified)) this.install(name, s.specified);
      }
    } else {
      this.install(model, specified);
    }
    this.refresh();
  }

  /** Starts a trace for one request of `model`, or returns undefined when it is not sampled. */
  sample(model: string, start = performance.now(), transport?: TransportTimes): Trace | undefined {
    const s = this.models.get(model) ?? this.global;
    if (s.values.level.length === 0 || s.remaining === 0) return undefined;
    s.seen++;
    if (s.seen % s.values.rate !== 0) return undefined;
    if (s.remaining > 0 && --s.remaining === 0) this.refresh();
    s.inFlight++;
    const tensors = s.values.level.includes('TENSORS');
    return { id: this.nextId++, setting: s, start, times: {}, tensors, ...(transport ? { transport } : {}) };
  }

  /**
   * Records a finished (or failed) request's trace, writing a file when one is due. A trace with
   * transport times is recorded from the tick queue, which runs once the promise continuations
   * that hand the answer to the transport are done, so it carries the send times too.
   */
  finish(trace: Trace, request: FinishedRequest): void {
    if (!trace.transport) {
      this.record(trace, request, performance.now());
      return;
    }
    const end = performance.now();
    this.deferred++;
    process.nextTick(() => {
      this.deferred--;
      try {
        this.record(trace, request, end);
      } catch (err) {
        // Outside the request's own try: a trace that cannot be recorded must not stop the server.
        this.failed(err as Error, this.options.file);
      }
      if (this.deferred === 0) this.settled?.();
    });
  }

  private record(trace: Trace, request: FinishedRequest, end: number): void {
    const s = trace.setting;
    s.inFlight--;
    if (this.closed) return;
    const head: Record<string, unknown> = {
      id: trace.id,
      model_name: request.model,
      model_version: Number(request.version),
    };
    if (request.requestId !== undefined) head.request_id = request.requestId;
    s.entries.push(head);
    if (s.values.level.includes('TIMESTAMPS')) {
      const t = trace.times;
      const x = trace.transport;
      const stamps: { name: string; ns: number }[] = [];
      const add = (name: string, at: number | undefined) => {
        if (at !== undefined) stamps.push({ name, ns: this.ns(at) });
      };
      const http = x?.protocol === 'HTTP';
      if (x) {
        add(http ? 'HTTP_RECV_START' : 'GRPC_WAITREAD_START', x.recvStart);
        add(http ? 'HTTP_RECV_END' : 'GRPC_WAITREAD_END', x.recvEnd);
      }
      add('REQUEST_START', trace.start);
      add('QUEUE_START', t.queueStart);
      add('COMPUTE_START', t.computeStart);
      add('COMPUTE_INPUT_END', t.computeInputEnd);
      add('COMPUTE_OUTPUT_START', t.computeOutputStart);
      add('COMPUTE_END', t.computeEnd);
      add('REQUEST_END', end);
      if (x) {
        add('INFER_RESPONSE_COMPLETE', end);
        add(http ? 'HTTP_SEND_START' : 'GRPC_SEND_START', x.sendStart);
        add(http ? 'HTTP_SEND_END' : 'GRPC_SEND_END', x.sendEnd);
      }
      s.entries.push({ id: trace.id, timestamps: stamps });
    }
    if (trace.tensors) {
      for (const x of request.inputs ?? []) s.entries.push(tensorEntry(trace.id, 'TENSOR_QUEUE_INPUT', x));
      for (const x of request.outputs ?? [])
        s.entries.push(tensorEntry(trace.id, 'TENSOR_BACKEND_OUTPUT', x));
    }
    s.traces++;
    const frequency = s.values.logFrequency;
    if (s.retired) this.flush(s);
    else if ((frequency > 0 && s.traces >= frequency) || (s.remaining === 0 && s.inFlight === 0)) {
      // The last trace of a count goes out at once, with the others held, as Triton writes it.
      this.writeIndexed(s);
    } else if (s.traces >= MAX_HELD_TRACES) this.flush(s);
  }

  /** Writes what is still held (traces still being recorded included), and ends the trace file. */
  async close(): Promise<void> {
    if (this.closed) return this.writing;
    if (this.deferred > 0) await new Promise<void>((resolve) => (this.settled = resolve));
    this.settled = undefined;
    this.closed = true;
    for (const s of [this.global, ...this.models.values()]) this.flush(s);
    const main = this.main;
    if (main) {
      this.main = undefined;
      this.writing = this.writing.then(async () => {
        const handle = await main.handle;
        if (!handle) return;
        await handle.write(']').catch((err: Error) => this.options.onWriteError?.(err, this.options.file));
        await handle.close().catch(() => undefined);
      });
    }
    await this.writing;
  }

  private install(model: string, specified: TraceScopeState): void {
    const old = this.models.get(model);
    if (old) this.retire(old);
    if (Object.keys(specified).length === 0) {
      // Nothing of its own: the model follows the global setting, counter and all.
      this.models.delete(model);
      return;
    }
    const values = { ...this.global.values, ...specified };
    this.models.set(model, newSetting(values, { ...specified }, specified.count ?? this.global.remaining));
  }

  /** A replaced setting writes what it holds; traces it sampled still finish under it. */
  private retire(s: Setting): void {
    s.retired = true;
    this.flush(s);
  }

  /** Writes held traces where this setting sends them: the indexed files, or the trace file. */
  private flush(s: Setting): void {
    if (s.entries.length === 0) return;
    if (s.values.logFrequency > 0) this.writeIndexed(s);
    else this.appendMain(s);
  }

  private writeIndexed(s: Setting): void {
    if (s.entries.length === 0) return;
    const entries = s.entries.splice(0);
    s.traces = 0;
    const path = `${this.options.file}.${this.nextFileIndex++}`;
    this.chain(path, async () => {
      // Written aside, then renamed: a file that appears under its name is whole.
      const partial = `${path}.partial`;
      await writeFile(partial, JSON.stringify(entries));
      await rename(partial, path);
    });
  }

  private appendMain(s: Setting): void {
    const entries = s.entries.splice(0);
    s.traces = 0;
    const file = this.options.file;
    this.main ??= { handle: open(file, 'w').catch((err: Error) => this.failed(err, file)), first: true };
    const main = this.main;
    this.chain(file, async () => {
      const handle = await main.handle;
      if (!handle) return;
      const text = JSON.stringify(entries).slice(1, -1);
      await handle.write(`${main.first ? '[' : ','}${text}`);
      main.first = false;
    });
  }

  /** Runs one write after the others; a failed one is reported and the next ones still run. */
  private chain(path: string, write: () => Promise<void>): void {
    this.writing = this.writing.then(() => write().catch((err: Error) => this.failed(err, path)));
  }

  private failed(err: Error, path: string): undefined {
    this.options.onWriteError?.(err, path);
    return undefined;
  }

  private refresh(): void {
    const on = (s: Setting) => s.values.level.length > 0 && s.remaining !== 0;
    this.active = on(this.global) || [...this.models.values()].some(on);
  }

  private ns(at: number): number {
    return Math.round(this.originNs + at * 1e6);
  }
}

function newSetting(
  values: Required<TraceScopeState>,
  specified: TraceScopeState,
  remaining: number,
): Setting {
  return {
    values: { ...values, level: [...values.level] },
    specified,
    seen: 0,
    remaining,
    inFlight: 0,
    entries: [],
    traces: 0,
    retired: false,
  };
}

function isComplete(s: TraceScopeState): boolean {
  return (
    s.level !== undefined && s.rate !== undefined && s.count !== undefined && s.logFrequency !== undefined
  );
}

const KEY: Record<string, keyof TraceScopeState> = {
  trace_level: 'level',
  trace_rate: 'rate',
  trace_count: 'count',
  log_frequency: 'logFrequency',
};

/** `["TIMESTAMPS", "TENSORS"]`, or `["OFF"]` alone. */
export function parseLevel(value: unknown, name = 'trace_level'): TraceLevel[] {
  const list = typeof value === 'string' ? [value] : value;
  if (!Array.isArray(list) || list.length === 0 || list.some((l) => typeof l !== 'string')) {
    throw bad(`'${name}' must be a list of levels: OFF, TIMESTAMPS, TENSORS; got ${describeValue(value)}`);
  }
  if (list.includes('OFF')) {
    if (list.length > 1) throw bad(`'${name}': OFF cannot be given with other levels`);
    return [];
  }
  const levels = new Set<TraceLevel>();
  for (const l of list as string[]) {
    if (l !== 'TIMESTAMPS' && l !== 'TENSORS') {
      throw bad(`'${name}': unknown level ${JSON.stringify(l)}; the levels are OFF, TIMESTAMPS, TENSORS`);
    }
    levels.add(l);
  }
  return [...levels];
}

function parseInteger(name: string, value: unknown, min: number, max: number): number {
  const n = typeof value === 'string' && /^-?[0-9]+$/.test(value.trim()) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw bad(`'${name}' must be an integer from ${min} to ${max}, got ${describeValue(value)}`);
  }
  return n;
}

/** A tensor as Triton's TENSORS traces show it: its values joined by commas (FP16 as numbers). */
function tensorEntry(id: number, activity: string, t: Tensor): object {
  const data = (t.data ?? []) as ArrayLike<unknown>;
  const half = t.datatype === 'FP16';
  const parts: string[] = new Array(data.length);
  for (let i = 0; i < data.length; i++) parts[i] = String(half ? halfToFloat(data[i] as number) : data[i]);
  return {
    id,
    activity,
    tensor: { name: t.name, data: parts.join(','), shape: t.shape.join(','), dtype: t.datatype },
  };
}
