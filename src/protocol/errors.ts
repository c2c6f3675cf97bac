/** Error codes of protocol v1 and the HTTP status each maps to. */
export const ERROR_STATUS = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  too_large: 413,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export interface ErrorBody {
  error: { code: ErrorCode; message: string; retryAfterMs?: number };
}

/** WebSocket close codes of protocol v1. */
export const CLOSE = {
  unauthorized: 4001,
  policy: 4008,
  tooSlow: 4009,
  draining: 4010,
} as const;
