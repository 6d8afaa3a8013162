import { createHmac, timingSafeEqual } from 'node:crypto';

export interface Webhook {
  url: string;
  /** Signs each body (HMAC-SHA256); without it the signature header is left out. */
  secret?: string;
}

export interface DeliveryAttempt {
  attempt: number;
  status: number | null;
  ok: boolean;
  error: string | null;
  atMs: number;
  durationMs: number;
}

export interface DeliveryOptions {
  /** Attempts in all, the first included (default 5). */
  maxAttempts?: number;
  /** Wait before the second attempt; doubled for each one after (default 1000 ms). */
  backoffMs?: number;
  /** Most time one attempt may take (default 10 s). */
  timeoutMs?: number;
  /** Stops retrying (the engine is closing). */
  signal?: AbortSignal;
}

export const SIGNATURE_HEADER = 'x-slipway-signature';
export const TIMESTAMP_HEADER = 'x-slipway-timestamp';

/** `sha256=<hex>`: HMAC-SHA256 of the raw body with the webhook's secret. */
export function signBody(secret: string, body: string | Buffer): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/**
 * Checks a received signature header against the raw body, in constant time — what a receiver
 * does (see docs/monitoring.md for the same in Python).
 */
export function verifySignature(secret: string, body: string | Buffer, header: string | undefined): boolean {
  if (!header) return false;
  const want = Buffer.from(signBody(secret, body));
  const got = Buffer.from(header);
  return want.length === got.length && timingSafeEqual(want, got);
}

/**
 * POSTs a JSON body to a webhook until it answers 2xx, at most `maxAttempts` times, waiting
 * `backoffMs`, then twice as long, and so on between attempts. A 4xx other than 408/429 is not
 * retried (the receiver refuses this body); 5xx, 408, 429, timeouts and network errors are.
 * `onAttempt` sees each attempt (the engine records them).
 */
export async function deliver(
  hook: Webhook,
  body: string,
  onAttempt: (a: DeliveryAttempt) => Promise<void> | void,
  options: DeliveryOptions = {},
): Promise<boolean> {
  const maxAttempts = options.maxAttempts ?? 5;
  const backoffMs = options.backoffMs ?? 1000;
  const timeoutMs = options.timeoutMs ?? 10_000;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const atMs = Date.now();
    const started = performance.now();
    let status: number | null = null;
    let error: string | null = null;
    try {
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'user-agent': 'slipway-alerts',
        [TIMESTAMP_HEADER]: String(Math.floor(atMs / 1000)),
      };
      if (hook.secret) headers[SIGNATURE_HEADER] = signBody(hook.secret, body);
      const res = await fetch(hook.url, {
        method: 'POST',
        headers,
        body,
        signal: AbortSignal.timeout(timeoutMs),
        redirect: 'manual',
      });
      status = res.status;
      await res.arrayBuffer().catch(() => undefined);
      if (!res.ok) error = `HTTP ${res.status}`;
    } catch (err) {
      const e = err as Error;
      error = e.name === 'TimeoutError' ? `timed out after ${timeoutMs} ms` : `${e.message}${causeOf(e)}`;
    }
    const ok = error === null;
    await onAttempt({ attempt, status, ok, error, atMs, durationMs: performance.now() - started });
    if (ok) return true;
    const retryable = status === null || status >= 500 || status === 408 || status === 429;
    if (!retryable || attempt === maxAttempts || options.signal?.aborted) return false;
    await sleep(backoffMs * 2 ** (attempt - 1), options.signal);
  }
  return false;
}

function causeOf(e: Error): string {
  const c = (e as { cause?: { code?: string; message?: string } }).cause;
  return c ? `: ${c.code ?? c.message}` : '';
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
