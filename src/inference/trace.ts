/**
 * Triton's trace extension: a sample of requests (one in `trace_rate`, at most `trace_count`) is
 * traced, each trace being the request's timestamps through the server (`TIMESTAMPS`) and/or its
 * input and output tensors (`TENSORS`), written as Triton's JSON trace file. Settings are global,
 * or per model (a model's unset settings follow the global ones); they are read and changed at run
 * time through `GET`/`POST /v2[/models/{m}]/trace/setting` and gRPC `TraceSetting`. The trace file
 * itself is chosen when the server starts, never through the network.
 */
import { writeFile } from 'node:fs/promises';
import { describeValue, SlipwayError } from '../errors/index.js';
import { halfToFloat } from './classification.js';
import type { Tensor } from './types.js';

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

/** One sampled request. */
export interface Trace {
  readonly id: number;
  readonly scope: Scope;
  readonly start: number;
  readonly times: TraceTimes;
}

interface Scope {
  state: TraceScopeState;
  /** Requests seen since the rate was last set, for sampling one in `rate`. */
  seen: number;
  /** Traces still to take (-1: no limit). */
  remaining: number;
  /** Finished traces not written yet, as the entries of the file. */
  entries: object[];
  traces: number;
}

const MAX_U32 = 0xffffffff;
const MAX_I32 = 0x7fffffff;
const NAMES = ['trace_level', 'trace_rate', 'trace_count', 'log_frequency', 'trace_file', 'trace_mode'];

const bad = (message: string) => new SlipwayError('SLIPWAY_ERR_BAD_REQUEST', message);

/**
 * Samples requests and writes their traces. `active` is false while no scope traces anything,
 * which is all a request pays then.
 *
 * @example
 *   const tracer = new Tracer({ file: '/tmp/trace.json', level: ['TIMESTAMPS'], rate: 100, count: -1, logFrequency: 1000 });
 *   const trace = tracer.active ? tracer.sample('adult') : undefined;
 */
export class Tracer {
  active = false;
  private readonly global: Scope;
  private readonly models = new Map<string, Scope>();
  private nextId = 1;
  private nextFileIndex = 0;
  private writing: Promise<void> = Promise.resolve();
  /** Nanoseconds of the monotonic clock at `performance.now()` 0. */
  private readonly originNs: number;

  constructor(private readonly options: TracerOptions) {
    this.originNs = Number(process.hrtime.bigint()) - performance.now() * 1e6;
    const level = options.level;
    if (level.length > 0 && options.file === '') {
      throw new SlipwayError(
        'SLIPWAY_ERR_CONFIG',
        'traceLevel needs traceFile: the file traces are written to',
      );
    }
    this.global = newScope({
      level,
      rate: options.rate,
      count: options.count,
      logFrequency: options.logFrequency,
    });
    this.refresh();
  }

  /** The settings in effect for a model (its own over the global ones), or the global ones. */
  settings(model?: string): TraceSettingValues {
    const s = this.effective(model === undefined ? undefined : this.models.get(model));
    const scope = model === undefined ? this.global : (this.models.get(model) ?? this.global);
    return {
      trace_level: s.level.length === 0 ? ['OFF'] : [...s.level],
      trace_rate: String(s.rate),
      trace_count: String(scope.remaining),
      log_frequency: String(s.logFrequency),
      trace_file: this.options.file,
      trace_mode: 'triton',
    };
  }

  /**
   * Applies a change as Triton's clients send it (`{"trace_rate": "10"}`, `{"trace_level":
   * ["TIMESTAMPS"]}`; null clears a model's own setting) and returns the scope's resulting state,
   * which `replace` repeats elsewhere. Throws a 400 naming the setting.
   */
  update(model: string | undefined, patch: unknown): TraceScopeState {
    if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
      throw bad('trace settings must be a JSON object of setting: value');
    }
    const current = model === undefined ? this.global.state : (this.models.get(model)?.state ?? {});
    const next: TraceScopeState = { ...current };
    for (const [name, value] of Object.entries(patch)) {
      if (!NAMES.includes(name))
        throw bad(`unknown trace setting '${name}'; the settings are ${NAMES.join(', ')}`);
      if (name === 'trace_file') {
        throw bad(
          "'trace_file' cannot be changed through the network: start the server with --trace-file (SLIPWAY_TRACE_FILE)",
        );
      }
      if (name === 'trace_mode') {
        if (value !== 'triton' && value !== null)
          throw bad(`'trace_mode' must be "triton", got ${describeValue(value)}`);
        continue;
      }
      if (value === null) {
        if (model === undefined) throw bad(`'${name}' cannot be cleared globally; give a value`);
        delete next[KEY[name]!];
        continue;
      }
      if (name === 'trace_level') next.level = parseLevel(value);
      else if (name === 'trace_rate') next.rate = parseInteger(name, value, 1, MAX_U32);
      else if (name === 'trace_count') next.count = parseInteger(name, value, -1, MAX_I32);
      else next.logFrequency = parseInteger(name, value, 0, MAX_U32);
    }
    const level = next.level ?? this.global.state.level!;
    if (level.length > 0 && this.options.file === '') {
      throw bad('tracing needs a trace file: start the server with --trace-file (SLIPWAY_TRACE_FILE)');
    }
    this.replace(model, next);
    return next;
  }

  /** Sets a scope's state as `update` returned it (on this process, or on another one). */
  replace(model: string | undefined, state: TraceScopeState): void {
    if (model === undefined) {
      const countChanged = state.count !== this.global.state.count;
      this.global.state = { ...this.global.state, ...state };
      if (countChanged) this.global.remaining = this.global.state.count!;
      this.global.seen = 0;
      for (const scope of this.models.values())
        if (scope.state.count === undefined && countChanged) scope.remaining = this.global.state.count!;
    } else {
      let scope = this.models.get(model);
      if (!scope) {
        scope = newScope(state);
        this.models.set(model, scope);
      } else {
        scope.state = { ...state };
        scope.seen = 0;
      }
      scope.remaining = state.count ?? this.global.state.count!;
    }
    this.refresh();
  }

  /** Starts a trace for one request of `model`, or returns undefined when it is not sampled. */
  sample(model: string, start = performance.now()): Trace | undefined {
    const own = this.models.get(model);
    const scope = own ?? this.global;
    const s = this.effective(own);
    if (s.level.length === 0 || scope.remaining === 0) return undefined;
    scope.seen++;
    if (scope.seen % s.rate !== 0) return undefined;
    if (scope.remaining > 0) {
      scope.remaining--;
      if (scope.remaining === 0) this.refresh();
    }
    return { id: this.nextId++, scope, start, times: {} };
  }

  /** Records a finished (or failed) request's trace, writing a file when one is due. */
  finish(
    trace: Trace,
    request: {
      model: string;
      version: string;
      requestId?: string;
      inputs?: readonly Tensor[];
      outputs?: readonly Tensor[];
    },
  ): void {
    const scope = trace.scope;
    const s = this.effective(scope === this.global ? undefined : scope);
    const head: Record<string, unknown> = {
      id: trace.id,
      model_name: request.model,
      model_version: Number(request.version),
    };
    if (request.requestId !== undefined) head.request_id = request.requestId;
    scope.entries.push(head);
    if (s.level.includes('TIMESTAMPS')) {
      const t = trace.times;
      const stamps: { name: string; ns: number }[] = [{ name: 'REQUEST_START', ns: this.ns(trace.start) }];
      const add = (name: string, at: number | undefined) => {
        if (at !== undefined) stamps.push({ name, ns: this.ns(at) });
      };
      add('QUEUE_START', t.queueStart);
      add('COMPUTE_START', t.computeStart);
      add('COMPUTE_INPUT_END', t.computeInputEnd);
      add('COMPUTE_OUTPUT_START', t.computeOutputStart);
      add('COMPUTE_END', t.computeEnd);
      add('REQUEST_END', performance.now());
      scope.entries.push({ id: trace.id, timestamps: stamps });
    }
    if (s.level.includes('TENSORS')) {
      for (const x of request.inputs ?? [])
        scope.entries.push(tensorEntry(trace.id, 'TENSOR_QUEUE_INPUT', x));
      for (const x of request.outputs ?? [])
        scope.entries.push(tensorEntry(trace.id, 'TENSOR_BACKEND_OUTPUT', x));
    }
    scope.traces++;
    if ((s.logFrequency > 0 && scope.traces >= s.logFrequency) || scope.remaining === 0) {
      this.writeIndexed(scope);
    }
  }

  /** Writes what is still held: to the trace file itself where traces go out at shutdown. */
  async close(): Promise<void> {
    const pending: object[] = [];
    for (const scope of [this.global, ...this.models.values()]) {
      if (scope.entries.length === 0) continue;
      const s = this.effective(scope === this.global ? undefined : scope);
      if (s.logFrequency > 0) this.writeIndexed(scope);
      else pending.push(...scope.entries.splice(0));
      scope.traces = 0;
    }
    if (pending.length > 0) this.write(this.options.file, pending);
    await this.writing;
  }

  private writeIndexed(scope: Scope): void {
    if (scope.entries.length === 0) return;
    const entries = scope.entries.splice(0);
    scope.traces = 0;
    this.write(`${this.options.file}.${this.nextFileIndex++}`, entries);
  }

  private write(path: string, entries: object[]): void {
    this.writing = this.writing.then(() =>
      writeFile(path, JSON.stringify(entries)).catch((err: Error) => this.options.onWriteError?.(err, path)),
    );
  }

  private effective(scope: Scope | undefined): Required<TraceScopeState> {
    const g = this.global.state as Required<TraceScopeState>;
    if (scope === undefined || scope === this.global) return g;
    const o = scope.state;
    return {
      level: o.level ?? g.level,
      rate: o.rate ?? g.rate,
      count: o.count ?? g.count,
      logFrequency: o.logFrequency ?? g.logFrequency,
    };
  }

  private refresh(): void {
    const on = (scope: Scope) =>
      this.effective(scope === this.global ? undefined : scope).level.length > 0 && scope.remaining !== 0;
    this.active = on(this.global) || [...this.models.values()].some(on);
  }

  private ns(at: number): number {
    return Math.round(this.originNs + at * 1e6);
  }
}

const KEY: Record<string, keyof TraceScopeState> = {
  trace_level: 'level',
  trace_rate: 'rate',
  trace_count: 'count',
  log_frequency: 'logFrequency',
};

function newScope(state: TraceScopeState): Scope {
  return { state: { ...state }, seen: 0, remaining: state.count ?? -1, entries: [], traces: 0 };
}

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
