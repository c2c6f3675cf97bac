/**
 * How the load generator talks to each system over a raw `ws` socket.
 * Frames are built by string concatenation and received frames are classified
 * by scanning bytes instead of JSON.parse, so the generator spends the same
 * small cost per frame on every system and does not become the bottleneck.
 */
export type System = 'ws' | 'sio' | 'parley';
export const SYSTEMS: readonly System[] = ['ws', 'sio', 'parley'];

export const BODY_BYTES = 64;

/** Monotonic microseconds, comparable between processes on one machine (CLOCK_MONOTONIC). */
export function nowUs(): number {
  const t = process.hrtime();
  return t[0] * 1e6 + Math.floor(t[1] / 1e3);
}

/**
 * A 64-character body that carries its send time, sender and step:
 * "<µs>:<senderIdx>:<step>:xxxx…". JSON-safe, so it needs no escaping.
 */
export function makeBody(us: number, sender: number, step: number): string {
  const head = `${us}:${sender}:${step}:`;
  return head.length >= BODY_BYTES ? head : head + 'x'.repeat(BODY_BYTES - head.length);
}

export interface BodyInfo {
  us: number;
  sender: number;
  step: number;
}

const BODY_KEY = Buffer.from('"body":"');
const TYPE_KEY = Buffer.from('"type":"');

function readInt(buf: Buffer, at: number): [number, number] {
  let v = 0;
  let i = at;
  for (; i < buf.length; i++) {
    const c = buf[i] as number;
    if (c < 48 || c > 57) break;
    v = v * 10 + (c - 48);
  }
  return [v, i];
}

/** Reads the bench body out of any frame carrying `"body":"…"`, or null when there is none. */
export function parseBody(buf: Buffer, out: BodyInfo): boolean {
  const at = buf.indexOf(BODY_KEY);
  if (at < 0) return false;
  let i = at + BODY_KEY.length;
  let r = readInt(buf, i);
  if (r[1] === i || buf[r[1]] !== 58) return false;
  out.us = r[0];
  i = r[1] + 1;
  r = readInt(buf, i);
  if (buf[r[1]] !== 58) return false;
  out.sender = r[0];
  i = r[1] + 1;
  r = readInt(buf, i);
  out.step = r[0];
  return true;
}

/** The value of the first `"type":"…"` in the frame (top-level for every frame these systems send). */
export function frameType(buf: Buffer): string {
  const at = buf.indexOf(TYPE_KEY);
  if (at < 0) return '';
  const start = at + TYPE_KEY.length;
  const end = buf.indexOf(34, start); // closing quote
  return end < 0 ? '' : buf.toString('latin1', start, end);
}

/** JSON string literal for ids that come from the servers (they may in principle need escaping). */
export function q(s: string): string {
  return JSON.stringify(s);
}

/**
 * Client source address: 64 loopback addresses per generation, each good for
 * ~28,000 ephemeral ports, and a fresh block per reconnect wave so ports still
 * in TIME_WAIT from the previous wave never collide.
 */
export function sourceAddress(idx: number, gen: number): string {
  return `127.0.${1 + (gen % 250)}.${2 + (idx % 64)}`;
}
