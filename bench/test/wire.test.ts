import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BODY_BYTES, frameType, makeBody, parseBody, sourceAddress, type BodyInfo } from '../gen/wire.js';
import { Histogram, summarize } from '../lib/histogram.js';
import { moduleOf } from '../lib/cpuprofile.js';

test('a bench body is 64 characters and its send time, sender and step read back out of any frame', () => {
  const body = makeBody(1234567890123, 42, 7);
  assert.equal(body.length, BODY_BYTES);
  const out: BodyInfo = { us: 0, sender: 0, step: 0 };
  const frames = [
    `{"type":"msg","from":"u1","body":"${body}"}`,
    `42["msg",{"from":"u1","body":"${body}"}]`,
    `{"type":"event","event":{"kind":"message.created","message":{"clientId":"x","body":"${body}","seq":3}}}`,
  ];
  for (const f of frames) {
    out.us = out.sender = out.step = -1;
    assert.equal(parseBody(Buffer.from(f), out), true, f);
    assert.deepEqual(out, { us: 1234567890123, sender: 42, step: 7 });
  }
  assert.equal(parseBody(Buffer.from('{"type":"ack","ref":1}'), out), false);
  assert.equal(parseBody(Buffer.from('{"type":"msg","body":"hello"}'), out), false);
});

test('frameType reads the type of a frame whatever the key order', () => {
  assert.equal(frameType(Buffer.from('{"type":"ack","ref":1}')), 'ack');
  assert.equal(frameType(Buffer.from('{"event":{"kind":"member.left"},"type":"event"}')), 'event');
  assert.equal(frameType(Buffer.from('{"ref":1}')), '');
});

test('source addresses stay in 127/8, 64 per wave, and differ between waves', () => {
  const wave0 = new Set(Array.from({ length: 1000 }, (_, i) => sourceAddress(i, 0)));
  const wave1 = new Set(Array.from({ length: 1000 }, (_, i) => sourceAddress(i, 1)));
  assert.equal(wave0.size, 64);
  for (const a of wave0) {
    assert.match(a, /^127\.\d+\.\d+\.\d+$/);
    assert.equal(wave1.has(a), false);
  }
});

test('histogram percentiles are within the bucket width (0.55%) of the exact ones, and merge exactly', () => {
  const a = new Histogram();
  const b = new Histogram();
  const all: number[] = [];
  for (let i = 1; i <= 10_000; i++) {
    const v = i * 7.3; // 7.3 µs .. 73 ms
    (i % 2 ? a : b).record(v);
    all.push(v);
  }
  a.merge(b.toJSON());
  assert.equal(a.count, 10_000);
  for (const q of [0.5, 0.95, 0.99]) {
    const exact = all[Math.ceil(q * all.length) - 1] as number;
    const got = a.percentile(q);
    assert.ok(Math.abs(got - exact) / exact < 0.006, `p${q * 100}: ${got} vs ${exact}`);
  }
  assert.equal(a.max, 73_000);
  const s = summarize(a);
  assert.equal(s.maxMs, 73);
  assert.ok(s.p50Ms > 36 && s.p50Ms < 37);
});

test('profile locations are grouped by package, node internals and repository file', () => {
  assert.equal(moduleOf('file:///work/main/node_modules/ws/lib/sender.js'), 'ws');
  assert.equal(moduleOf('file:///work/main/node_modules/@fastify/static/index.js'), '@fastify/static');
  assert.equal(moduleOf('node:internal/streams/writable'), 'node:internal/streams');
  assert.equal(moduleOf('file:///work/main/src/core/messaging.ts'), 'src/core/messaging.ts');
  assert.equal(moduleOf(''), '(native)');
});
