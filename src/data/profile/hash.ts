/**
 * MurmurHash3 (x86, 32-bit) over a string's UTF-16 code units. The distinct-count sketch stores
 * registers indexed by this hash, so it is part of the stored profile format: changing it means
 * a new format version.
 */
export function murmur3(text: string, seed: number): number {
  let h = seed >>> 0;
  const len = text.length;
  // Two UTF-16 code units make one 32-bit block.
  const blocks = len >>> 1;
  for (let i = 0; i < blocks; i++) {
    let k = (text.charCodeAt(2 * i) | (text.charCodeAt(2 * i + 1) << 16)) >>> 0;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (len & 1) {
    let k = text.charCodeAt(len - 1);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= len * 2;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
