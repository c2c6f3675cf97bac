/**
 * The WebSocket surface the SDK needs: the browser's WebSocket and the `ws`
 * package's both fit it.
 */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason?: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

export type SocketFactory = (url: string) => SocketLike;

export const OPEN = 1;

/** The global WebSocket (browsers, Node >= 22), or undefined. */
export function globalSocketFactory(): SocketFactory | undefined {
  const WS = (globalThis as { WebSocket?: new (url: string) => SocketLike }).WebSocket;
  return WS ? (url) => new WS(url) : undefined;
}

/** Drops a socket at once: `ws` in Node waits up to 30 s for a closing handshake unless terminated. */
export function dropSocket(s: SocketLike, code = 1000): void {
  s.onopen = null;
  s.onmessage = null;
  s.onclose = null;
  // `ws` throws an 'error' event that has no listener (terminating while connecting emits one).
  s.onerror = () => undefined;
  const t = (s as { terminate?: () => void }).terminate;
  try {
    if (typeof t === 'function') t.call(s);
    else s.close(code);
  } catch {
    // Closing a socket that is still connecting throws in some implementations; it is gone either way.
  }
}

export function frameText(data: unknown): string | undefined {
  if (typeof data === 'string') return data;
  // `ws` hands text frames over as a Buffer; so does it for binary ones, which the protocol never uses.
  if (data && typeof (data as { toString?: unknown }).toString === 'function' && !(data instanceof ArrayBuffer)) {
    return String(data);
  }
  return undefined;
}
