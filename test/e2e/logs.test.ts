/**
 * The logs of `parley serve` as an operator sees them: JSON lines on stdout,
 * one per connection open and close, never a message body, token or password.
 * (Draining on SIGTERM itself is covered by cli-shutdown.test.ts.)
 */
import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Api, expectStatus } from '../helpers/http.js';
import { TestWs } from '../helpers/ws-client.js';
import type { Message } from '../../src/protocol/model.js';

describe('parley serve logs', () => {
  let child: ChildProcess | undefined;
  let dataDir = '';
  const sockets: TestWs[] = [];
  after(async () => {
    for (const s of sockets) await s.close();
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  test('JSON logs without secrets, one line per connection open/close; SIGTERM closes sockets 4010 and exits 0 within 10 s', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'parley-cli-'));
    const proc = spawn(
      process.execPath,
      ['--import', 'tsx', 'src/cli.ts', 'serve', '--port', '0', '--argon2-memory-kib', '1024', '--argon2-time-cost', '1'],
      {
        env: { ...process.env, PARLEY_DATA_DIR: dataDir, PARLEY_HOST: '127.0.0.1', PARLEY_LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child = proc;
    let out = '';
    let err = '';
    proc.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    proc.stderr?.on('data', (b: Buffer) => (err += b.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));

    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line in 20 s; stderr: ${err}; stdout: ${out.slice(0, 500)}`)), 20000);
      const look = (): void => {
        // The port is in the stderr banner or in the JSON "listening" log line.
        const m = /(http:\/\/127\.0\.0\.1:\d+)/.exec(err) ?? /"port":(\d+)/.exec(out);
        if (!m?.[1]) return;
        clearTimeout(timer);
        resolve(m[1].startsWith('http') ? m[1] : `http://127.0.0.1:${m[1]}`);
      };
      proc.stderr?.on('data', look);
      proc.stdout?.on('data', look);
      void exited.then(({ code }) => reject(new Error(`parley serve exited with ${code}: ${err}`)));
    });
    const api = new Api(url);
    expectStatus(await api.req('GET', '/healthz'), 200, 'healthz');

    const a = await api.user('cli');
    const b = await api.user('clib');
    const d = await api.direct(a, b);
    const wsUrl = `${url.replace('http', 'ws')}/v1/ws`;
    const ws = await TestWs.open(wsUrl, 'cli-a');
    sockets.push(ws);
    const ready = ws.next('ready');
    ws.send({ type: 'auth', ref: 'a', token: a.token });
    await ready;
    const secret = 'TOP-SECRET-BODY-7f3a9';
    const ack = await ws.ack({ type: 'send', conversationId: d.id, clientId: 'cli-1', body: secret });
    assert.ok('message' in ack);
    const viaHttp = await api.req<{ message: Message }>('POST', `/v1/conversations/${d.id}/messages`, { token: b.token, json: { clientId: 'cli-2', body: `${secret}-http` } });
    expectStatus(viaHttp, 201);

    const t0 = Date.now();
    assert.ok(proc.pid !== undefined);
    process.kill(proc.pid, 'SIGTERM');
    const closeInfo = await ws.closed(10000);
    assert.equal(closeInfo.code, 4010, 'sockets are told the node is draining');
    let timer: NodeJS.Timeout | undefined;
    const exit = await Promise.race([exited, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), 11000)))]);
    clearTimeout(timer);
    assert.ok(exit, 'exited within 10 s of SIGTERM');
    assert.equal(exit.code, 0, `exit code; stderr: ${err}`);
    assert.ok(Date.now() - t0 < 10000);

    const lines = out.split('\n').filter((l) => l.trim().length > 0);
    assert.ok(lines.length > 0, 'logs on stdout');
    const records = lines.map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        throw new Error(`a log line is not JSON: ${l.slice(0, 200)}`);
      }
    });
    const msgs = records.map((r) => String(r.msg ?? ''));
    assert.equal(msgs.filter((m) => /connection open/i.test(m)).length, 1, `one open line for one socket: ${msgs.join(' | ')}`);
    assert.equal(msgs.filter((m) => /connection clos/i.test(m)).length, 1, `one close line for one socket: ${msgs.join(' | ')}`);
    for (const s of [secret, a.token, a.refreshToken, b.token, b.refreshToken, a.password]) {
      assert.ok(!out.includes(s) && !err.includes(s), `the logs contain a secret or a message body (${s.slice(0, 12)}…)`);
    }
  });
});
