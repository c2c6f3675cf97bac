/**
 * Globally unique, time-sortable ids made without coordination:
 * 10 chars of milliseconds + 4 chars of node id + 6 chars of a per-process
 * counter, all Crockford base32, so ids sort by creation time as strings.
 */
const ALPHABET = '0123456789abcdefghjkmnpqrstvwxyz';

function encode(n: number, width: number): string {
  let out = '';
  for (let i = 0; i < width; i++) {
    out = ALPHABET[n % 32] + out;
    n = Math.floor(n / 32);
  }
  return out;
}

/** A node id string → 20 bits, stable for the same string. */
export function nodeBits(nodeId: string): number {
  let h = 2166136261;
  for (let i = 0; i < nodeId.length; i++) {
    h ^= nodeId.charCodeAt(i);
    h = Math.imul(h, 16777619);
  }
  return (h >>> 0) & 0xfffff;
}

export class IdGenerator {
  private readonly node: string;
  private lastMs = 0;
  private counter = 0;

  constructor(nodeId: string, private readonly now: () => number = Date.now) {
    this.node = encode(nodeBits(nodeId), 4);
  }

  next(): string {
    // A clock that steps back must not break ordering: hold the last time.
    const ms = Math.max(this.now(), this.lastMs);
    if (ms !== this.lastMs) {
      this.lastMs = ms;
      this.counter = 0;
    } else if (++this.counter >= 0x40000000) {
      this.lastMs = ms + 1;
      this.counter = 0;
    }
    return encode(this.lastMs, 10) + this.node + encode(this.counter, 6);
  }
}

/** Milliseconds encoded in an id made by IdGenerator. */
export function idTime(id: string): number {
  let n = 0;
  for (let i = 0; i < 10; i++) n = n * 32 + ALPHABET.indexOf(id[i] as string);
  return n;
}

/** The smallest id IdGenerator can make at or after `ms`: every such id sorts after it. */
export function idFloor(ms: number): string {
  return encode(Math.max(0, Math.floor(ms)), 10);
}
