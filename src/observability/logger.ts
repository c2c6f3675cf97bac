/** pino JSON logs. Message bodies and tokens are never logged; redact guards against slips. */
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, nodeId: string): Logger {
  return pino({
    level,
    base: { node: nodeId },
    redact: { paths: ['token', 'accessToken', 'refreshToken', 'password', 'body', '*.token', '*.password', '*.body', 'req.headers.authorization'], censor: '[redacted]' },
  });
}
