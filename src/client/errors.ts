import type { ErrorCode } from '../protocol/errors.js';

/** An error answered by the server (HTTP or WebSocket), or a transport failure (`network`). */
export class ParleyError extends Error {
  constructor(
    readonly code: ErrorCode | 'network' | 'timeout',
    message: string,
    readonly status = 0,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'ParleyError';
  }

  /** Worth retrying the same request later (the outbox keeps such messages). */
  get transient(): boolean {
    return (
      this.code === 'network' ||
      this.code === 'timeout' ||
      this.code === 'unavailable' ||
      this.code === 'internal' ||
      this.code === 'rate_limited'
    );
  }
}
