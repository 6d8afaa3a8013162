/**
 * Triton's response cache: the outputs of a model version for given inputs, kept so an identical
 * request is answered without running the model. Off unless the server is given a size and the
 * model's config.json sets `response_cache.enable`; entries go least recently used first once the
 * outputs held pass the size.
 */
import { createHash } from 'node:crypto';
import type { Tensor } from './types.js';

interface Entry {
  outputs: Tensor[];
  bytes: number;
  /** The load it came from (`ResponseCache.load`), so a load that leaves takes its entries along. */
  load: string;
}

/** Bytes an entry costs beyond its outputs' data: the key, the map slot, the tensor objects. */
const ENTRY_OVERHEAD = 256;

export class ResponseCache {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  hits = 0;
  misses = 0;
  evictions = 0;

  constructor(readonly maxBytes: number) {}

  get size(): number {
    return this.entries.size;
  }

  get usedBytes(): number {
    return this.bytes;
  }

  /** Names one load of a model version: a reload of the same version number is another. */
  static load(model: string, version: string, loadId: number): string {
    return `${model}\0${version}#${loadId}`;
  }

  /**
   * The key of a request: the load serving it (`ResponseCache.load`), the outputs it asks for,
   * and every input's name, datatype, shape and values. Inputs come in the model's order (as
   * validation leaves them).
   */
  static key(load: string, inputs: readonly Tensor[], outputs: readonly string[]): string {
    const h = createHash('sha256');
    h.update(`${load}\0${outputs.join('\0')}\0${inputs.length}\0`);
    for (const t of inputs) {
      h.update(`${t.name}\0${t.datatype}\0${t.shape.join(',')}\0`);
      const d = t.data;
      if (Array.isArray(d)) {
        // Each string with its length, so ["ab", "c"] and ["a", "bc"] differ.
        for (const s of d) h.update(`${Buffer.byteLength(s)}:${s}`);
      } else {
        h.update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
      }
    }
    return h.digest('base64');
  }

  /** The outputs stored for `key`, now the most recently used; undefined on a miss. */
  get(key: string): Tensor[] | undefined {
    const e = this.entries.get(key);
    if (!e) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.entries.delete(key);
    this.entries.set(key, e);
    return e.outputs;
  }

  /**
   * Stores a copy of `outputs` (the answer's own may be changed or handed on) for `load`, which
   * must be the load `key` was made with; evicts to fit.
   */
  set(key: string, outputs: readonly Tensor[], load: string): void {
    let bytes = ENTRY_OVERHEAD + key.length;
    for (const t of outputs) bytes += tensorBytes(t);
    if (bytes > this.maxBytes) return;
    const copies = outputs.map(
      (t) => ({ name: t.name, datatype: t.datatype, shape: [...t.shape], data: t.data.slice() }) as Tensor,
    );
    const old = this.entries.get(key);
    if (old) {
      this.entries.delete(key);
      this.bytes -= old.bytes;
    }
    while (this.bytes + bytes > this.maxBytes) {
      const [oldestKey, oldest] = this.entries.entries().next().value as [string, Entry];
      this.entries.delete(oldestKey);
      this.bytes -= oldest.bytes;
      this.evictions++;
    }
    this.entries.set(key, { outputs: copies, bytes, load });
    this.bytes += bytes;
  }

  /** Drops every entry of a load that no longer serves (its version was unloaded or replaced). */
  dropLoad(load: string): void {
    for (const [key, e] of this.entries) {
      if (e.load !== load) continue;
      this.entries.delete(key);
      this.bytes -= e.bytes;
    }
  }

  clear(): void {
    this.entries.clear();
    this.bytes = 0;
  }
}

function tensorBytes(t: Tensor): number {
  const d = t.data;
  if (!Array.isArray(d)) return d.byteLength;
  let n = 0;
  for (const s of d) n += 16 + s.length * 2;
  return n;
}
