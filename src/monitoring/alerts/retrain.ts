import { spawn } from 'node:child_process';
import { MAX_TIMER_MS } from '../../inference/index.js';

/** A command a firing rule runs (a retraining job, in any language). */
export interface RetrainConfig {
  /** argv: the program and its arguments (no shell). */
  command: string[];
  /** Working directory (default: the server's). */
  cwd?: string;
  /** Killed (SIGTERM, then SIGKILL 5 s later) past this (default 1 h). */
  timeoutMs?: number;
  /** Extra environment variables. */
  env?: Record<string, string>;
}

export interface CommandResult {
  status: 'succeeded' | 'failed' | 'timeout';
  exitCode: number | null;
  /** The last `TAIL_BYTES` of stdout and stderr, interleaved as they came. */
  outputTail: string;
  durationMs: number;
}

export const TAIL_BYTES = 8192;

/** Checks a retrain config from the API or CLI; errors name the field. */
export function checkRetrainConfig(value: unknown, field = 'retrain'): RetrainConfig {
  const bad = (m: string): never => {
    throw new Error(`${field}${m}`);
  };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad(' must be an object');
  const v = value as Record<string, unknown>;
  for (const k of Object.keys(v)) {
    if (!['command', 'cwd', 'timeoutMs', 'env'].includes(k))
      bad(`.${k} is not a setting (command, cwd, timeoutMs, env)`);
  }
  if (
    !Array.isArray(v.command) ||
    v.command.length === 0 ||
    !v.command.every((a) => typeof a === 'string') ||
    v.command[0] === ''
  ) {
    bad('.command must be a non-empty array of strings (the program, then its arguments)');
  }
  if (v.cwd !== undefined && (typeof v.cwd !== 'string' || v.cwd === ''))
    bad('.cwd must be a directory path');
  // A Node timer longer than 2^31-1 ms fires at once: the command would be killed on start.
  if (
    v.timeoutMs !== undefined &&
    (!Number.isSafeInteger(v.timeoutMs) ||
      (v.timeoutMs as number) <= 0 ||
      (v.timeoutMs as number) > MAX_TIMER_MS)
  ) {
    bad(`.timeoutMs must be a positive integer of at most ${MAX_TIMER_MS} (about 24.8 days)`);
  }
  if (v.env !== undefined) {
    if (typeof v.env !== 'object' || v.env === null || Array.isArray(v.env))
      bad('.env must be an object of strings');
    for (const [k, x] of Object.entries(v.env as object)) {
      if (typeof x !== 'string') bad(`.env.${k} must be a string`);
    }
  }
  return {
    command: v.command as string[],
    ...(v.cwd !== undefined ? { cwd: v.cwd as string } : {}),
    ...(v.timeoutMs !== undefined ? { timeoutMs: v.timeoutMs as number } : {}),
    ...(v.env !== undefined ? { env: v.env as Record<string, string> } : {}),
  };
}

/** Runs a command to its end (or its timeout), keeping the tail of its output. */
export function runCommand(
  config: RetrainConfig,
  env: Record<string, string>,
  signal?: AbortSignal,
): Promise<CommandResult> {
  const started = performance.now();
  const timeoutMs = config.timeoutMs ?? 3_600_000;
  return new Promise((resolve) => {
    let tail = Buffer.alloc(0);
    const keep = (chunk: Buffer) => {
      tail = Buffer.concat([tail, chunk]);
      if (tail.length > TAIL_BYTES) tail = tail.subarray(tail.length - TAIL_BYTES);
    };
    let timedOut = false;
    let settled = false;
    const finish = (exitCode: number | null, error?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      clearTimeout(killer);
      signal?.removeEventListener('abort', stop);
      if (error) keep(Buffer.from(`\n${error}\n`));
      resolve({
        status: timedOut ? 'timeout' : exitCode === 0 ? 'succeeded' : 'failed',
        exitCode,
        outputTail: tail.toString('utf8'),
        durationMs: performance.now() - started,
      });
    };
    const child = spawn(config.command[0]!, config.command.slice(1), {
      cwd: config.cwd,
      env: { ...process.env, ...config.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let killer: NodeJS.Timeout | undefined;
    function stop() {
      child.kill('SIGTERM');
      killer = setTimeout(() => child.kill('SIGKILL'), 5000);
      killer.unref();
    }
    const timer = setTimeout(() => {
      timedOut = true;
      stop();
    }, timeoutMs);
    signal?.addEventListener('abort', stop, { once: true });
    child.on('error', (err) => finish(null, `cannot run ${config.command[0]}: ${err.message}`));
    child.on('close', (code, sig) => finish(code, sig ? `killed by ${sig}` : undefined));
  });
}
