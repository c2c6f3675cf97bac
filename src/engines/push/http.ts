/**
 * One HTTP/1.1 request for the push providers and the webhook, with what
 * `fetch` lacks here: a DNS lookup that can refuse private addresses (a Web
 * Push endpoint is a URL a user gave us: checked at registration by name, and
 * here by the address it resolves to, so a name that points at this network
 * later is refused too), a hard timeout over the whole exchange, and a bounded
 * answer.
 */
import http from 'node:http';
import https from 'node:https';
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { isPrivateAddress } from '../../core/push/validate.js';

export interface HttpAnswer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

export interface HttpRequest {
  method: string;
  headers: Record<string, string | number>;
  body?: string | Buffer;
  timeoutMs: number;
  /** Refuse to connect to loopback, private and link-local addresses. */
  publicOnly?: boolean;
}

/** Bytes of an answer kept: providers answer errors in a few hundred. */
const MAX_ANSWER = 64 * 1024;

/**
 * Keep-alive agents: a provider gets many requests in a row. Requests to user-given URLs have agents of their
 * own, so they never reuse a connection the operator's URLs opened (that would skip the address check).
 */
const agents = {
  http: new http.Agent({ keepAlive: true, maxSockets: 64 }),
  https: new https.Agent({ keepAlive: true, maxSockets: 64 }),
  publicHttp: new http.Agent({ keepAlive: true, maxSockets: 64 }),
  publicHttps: new https.Agent({ keepAlive: true, maxSockets: 64 }),
};

const publicLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, '', 0);
    const list = addresses as LookupAddress[];
    const bad = list.find((a) => isPrivateAddress(a.address));
    if (bad || list.length === 0) {
      const e = Object.assign(new Error(`${hostname} resolves to a private address (${bad?.address ?? 'none'}); refused`), { code: 'EPRIVATE' });
      return callback(e, '', 0);
    }
    if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
    callback(null, list[0]!.address, list[0]!.family);
  });
};

export function request(url: string, req: HttpRequest): Promise<HttpAnswer> {
  const u = new URL(url);
  const mod = u.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const r = mod.request(
      u,
      {
        method: req.method,
        headers: req.headers,
        agent: u.protocol === 'https:' ? (req.publicOnly ? agents.publicHttps : agents.https) : req.publicOnly ? agents.publicHttp : agents.http,
        ...(req.publicOnly ? { lookup: publicLookup } : {}),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          if (size < MAX_ANSWER) chunks.push(c);
          size += c.length;
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).subarray(0, MAX_ANSWER).toString('utf8') });
        });
        res.on('error', fail);
      },
    );
    const timer = setTimeout(() => r.destroy(new Error(`no answer within ${req.timeoutMs} ms`)), req.timeoutMs);
    function fail(err: Error): void {
      clearTimeout(timer);
      reject(err);
    }
    r.on('error', fail);
    r.end(req.body);
  });
}

/** The parsed JSON of an answer, or undefined. */
export function jsonOf(body: string): unknown {
  try {
    return JSON.parse(body) as unknown;
  } catch {
    return undefined;
  }
}

export function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
