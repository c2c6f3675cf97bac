/**
 * Blobs on any S3-compatible store (contract: core/ports/blobs.ts): AWS S3,
 * MinIO, Ceph, R2, Garage… for a cluster, where every node must see every
 * file. Path-style URLs (`<endpoint>/<bucket>/<prefix><key>`), which every
 * such store accepts, signed with SigV4 (aws4fetch's signer).
 *
 * Requests go out through node:http(s) rather than fetch so that a put can
 * stream its body with a Content-Length, which S3 requires of a plain PUT
 * (fetch would send a stream chunked). When the caller knows the bytes'
 * SHA-256 it is signed as the payload hash, so the store refuses a body that
 * changed on the way; otherwise the payload is UNSIGNED-PAYLOAD. A PUT is
 * atomic on S3: an object is there whole or not at all.
 */
import http from 'node:http';
import https from 'node:https';
import { Transform, type Readable } from 'node:stream';
import { AwsV4Signer } from 'aws4fetch';
import { checkBlobKey, type BlobRead, type Blobs, type ByteRange, type PutInfo } from '../../core/ports/blobs.js';

export interface S3BlobsOptions {
  /** e.g. `https://s3.eu-west-1.amazonaws.com` or `http://127.0.0.1:9000`. */
  endpoint: string;
  bucket: string;
  /** @default 'us-east-1' */
  region?: string;
  accessKeyId: string;
  secretAccessKey: string;
  /** Put before every key, so several deployments can share a bucket. @default '' */
  prefix?: string;
  /** Longest wait for a response to start (and between two chunks of it). @default 30000 */
  timeoutMs?: number;
}

/** How much of an error answer is kept for the message. */
const ERROR_BODY_CHARS = 300;

export class S3Blobs implements Blobs {
  readonly kind = 's3';
  private readonly base: URL;
  private readonly agent: http.Agent;
  private readonly request: typeof http.request;
  private readonly timeoutMs: number;

  constructor(private readonly opts: S3BlobsOptions) {
    this.base = new URL(opts.endpoint);
    if (this.base.protocol !== 'http:' && this.base.protocol !== 'https:') throw new Error('PARLEY_S3_ENDPOINT must be an http(s) URL');
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(opts.bucket)) throw new Error('PARLEY_S3_BUCKET must be a valid bucket name');
    if (opts.prefix) checkBlobKey(`${opts.prefix}x`);
    const secure = this.base.protocol === 'https:';
    this.agent = secure ? new https.Agent({ keepAlive: true, maxSockets: 64 }) : new http.Agent({ keepAlive: true, maxSockets: 64 });
    this.request = secure ? https.request : http.request;
    this.timeoutMs = opts.timeoutMs ?? 30_000;
  }

  private url(key: string): string {
    checkBlobKey(key);
    const path = `${this.base.pathname.replace(/\/+$/, '')}/${this.opts.bucket}/${this.opts.prefix ?? ''}${key}`;
    return new URL(path, this.base).toString();
  }

  async put(key: string, body: Readable, info: PutInfo): Promise<void> {
    const headers: Record<string, string> = { 'content-type': info.contentType, 'content-length': String(info.size) };
    if (info.sha256) headers['x-amz-content-sha256'] = info.sha256;
    try {
      const res = await this.send('PUT', key, headers, { body, size: info.size });
      await expectStatus(res, [200], 'PUT', key);
      res.resume();
    } finally {
      // An early answer (a refusal) leaves the rest unread: let go of the source.
      if (!body.readableEnded) body.destroy();
    }
  }

  async get(key: string, range?: ByteRange): Promise<BlobRead | undefined> {
    const headers: Record<string, string> = range ? { range: `bytes=${range.start}-${range.end}` } : {};
    const res = await this.send('GET', key, headers);
    if (res.statusCode === 404) {
      res.resume();
      return undefined;
    }
    await expectStatus(res, range ? [206] : [200], 'GET', key);
    const size = range ? totalFromContentRange(res.headers['content-range']) : Number(res.headers['content-length']);
    if (!Number.isSafeInteger(size)) {
      res.destroy();
      throw new Error(`S3 GET ${key}: the answer does not say the object's size`);
    }
    return { body: res, size };
  }

  async head(key: string): Promise<{ size: number } | undefined> {
    const res = await this.send('HEAD', key, {});
    res.resume();
    if (res.statusCode === 404) return undefined;
    await expectStatus(res, [200], 'HEAD', key);
    return { size: Number(res.headers['content-length']) };
  }

  async delete(key: string): Promise<void> {
    const res = await this.send('DELETE', key, {});
    // S3 answers 204 whether the object existed or not; some compatible stores say 404.
    await expectStatus(res, [200, 204, 404], 'DELETE', key);
    res.resume();
  }

  async close(): Promise<void> {
    this.agent.destroy();
  }

  private async send(
    method: string,
    key: string,
    headers: Record<string, string>,
    upload?: { body: Readable; size: number },
  ): Promise<http.IncomingMessage> {
    const signer = new AwsV4Signer({
      method,
      url: this.url(key),
      headers,
      accessKeyId: this.opts.accessKeyId,
      secretAccessKey: this.opts.secretAccessKey,
      service: 's3',
      region: this.opts.region ?? 'us-east-1',
    });
    const signed = await signer.sign();
    const out: Record<string, string> = {};
    signed.headers.forEach((v, k) => {
      out[k] = v;
    });
    return new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = this.request(signed.url, { method, headers: out, agent: this.agent, timeout: this.timeoutMs }, resolve);
      req.on('timeout', () => req.destroy(new Error(`S3 ${method} ${key}: no answer within ${this.timeoutMs} ms`)));
      req.on('error', reject);
      if (!upload) {
        req.end();
        return;
      }
      // A body shorter or longer than announced aborts the request, so the store keeps nothing.
      const counted = exactly(upload.size);
      upload.body.on('error', (err) => counted.destroy(err));
      counted.on('error', (err) => req.destroy(err));
      upload.body.pipe(counted).pipe(req);
    });
  }
}

/** Passes `size` bytes through, and fails the stream if there are more or fewer. */
function exactly(size: number): Transform {
  let n = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, done) {
      n += chunk.length;
      done(n > size ? new Error(`the blob has more than the ${size} bytes announced`) : null, chunk);
    },
    flush(done) {
      done(n === size ? null : new Error(`the blob has ${n} bytes, not the ${size} announced`));
    },
  });
}

async function expectStatus(res: http.IncomingMessage, ok: number[], method: string, key: string): Promise<void> {
  const status = res.statusCode ?? 0;
  if (ok.includes(status)) return;
  let text = '';
  for await (const chunk of res) {
    if (text.length < ERROR_BODY_CHARS) text += String(chunk);
  }
  const code = /<Code>([^<]*)<\/Code>/.exec(text)?.[1];
  throw new Error(`S3 ${method} ${key} answered ${status}${code ? ` ${code}` : ''}`);
}

/** `bytes 0-9/1234` → 1234. */
function totalFromContentRange(h: string | undefined): number {
  const m = h ? /\/(\d+)\s*$/.exec(h) : null;
  return m ? Number(m[1]) : NaN;
}
