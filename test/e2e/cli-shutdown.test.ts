/**
 * `parley serve` as a user runs it: a child process, SIGTERM drains it (sockets
 * get 4010, an acknowledged message survives) and it exits 0 within 10 s.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';

function startCli(dataDir: string): Promise<{ child: ReturnType<typeof spawn>; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'serve', '--port', '0', '--data-dir', dataDir, '--log-level', 'warn'], {
    env: { ...process.env, PARLEY_ARGON2_MEMORY_KIB: '1024', PARLEY_ARGON2_TIME_COST: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let err = '';
    const timer = setTimeout(() => reject(new Error(`no listening line: ${err}`)), 20_000);
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(err);
      if (m?.[1]) {
        clearTimeout(timer);
        resolve({ child, url: m[1] });
      }
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${err}`)));
  });
}

const json = async (url: string, body: unknown, token?: string): Promise<Record<string, unknown>> => {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) }, body: JSON.stringify(body) });
  return (await r.json()) as Record<string, unknown>;
};

test('SIGTERM closes sockets with 4010, keeps acknowledged messages, and exits 0 within 10 s', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'parley-cli-'));
  try {
    const { child, url } = await startCli(dir);
    await json(`${url}/v1/auth/register`, { username: 'termuser', password: 'password123' });
    const login = await json(`${url}/v1/auth/login`, { username: 'termuser', password: 'password123' });
    const token = login['accessToken'] as string;
    const conv = (await json(`${url}/v1/conversations`, { kind: 'group', title: 't', members: [] }, token))['conversation'] as { id: string };

    const ws = new WebSocket(url.replace('http', 'ws') + '/v1/ws');
    const frames: Record<string, unknown>[] = [];
    ws.on('message', (d) => frames.push(JSON.parse(d.toString()) as Record<string, unknown>));
    await new Promise((r) => ws.once('open', r));
    ws.send(JSON.stringify({ type: 'auth', ref: 'a', token }));
    ws.send(JSON.stringify({ type: 'send', ref: 's', conversationId: conv.id, clientId: 'before-term', body: 'kept' }));
    const deadline = Date.now() + 5000;
    while (!frames.some((f) => f['type'] === 'ack') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    assert.ok(frames.some((f) => f['type'] === 'ack'), 'the send was acknowledged');

    const closed = new Promise<number>((r) => ws.once('close', (code) => r(code)));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    const t0 = Date.now();
    child.kill('SIGTERM');
    assert.equal(await closed, 4010);
    assert.equal(await exited, 0);
    assert.ok(Date.now() - t0 < 10_000);

    // The acknowledged message is there after a restart on the same data dir.
    const again = await startCli(dir);
    try {
      const r = await fetch(`${again.url}/v1/conversations/${conv.id}/messages`, { headers: { authorization: `Bearer ${token}` } });
      const body = (await r.json()) as { messages: { clientId: string }[] };
      assert.deepEqual(body.messages.map((m) => m.clientId), ['before-term']);
    } finally {
      again.child.kill('SIGTERM');
      await new Promise((r) => again.child.once('exit', r));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
