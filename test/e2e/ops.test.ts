import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from '../helpers/server.js';
import { eventually, expectStatus, metricSum, metricValue } from '../helpers/http.js';

describe('operations endpoints', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start();
  });
  after(async () => {
    await h?.close();
  });

  test('/healthz and /readyz answer 200 without auth', async () => {
    expectStatus(await h.api.req('GET', '/healthz'), 200, 'healthz');
    expectStatus(await h.api.req('GET', '/readyz'), 200, 'readyz');
  });

  test('/metrics is Prometheus text with the required series', async () => {
    const res = await h.api.req('GET', '/metrics');
    expectStatus(res, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    for (const name of [
      'parley_connections',
      'parley_frames_in_total',
      'parley_frames_out_total',
      'parley_delivery_latency_seconds',
      'parley_store_append_seconds',
      'process_resident_memory_bytes',
    ]) {
      assert.match(res.text, new RegExp(`^# TYPE ${name} `, 'm'), `${name} declared`);
    }
    assert.match(res.text, /^# TYPE parley_delivery_latency_seconds histogram/m);
    assert.match(res.text, /^# TYPE parley_store_append_seconds (histogram|summary)/m);
    assert.match(res.text, /^nodejs_eventloop_lag\w*\s/m, 'event loop lag');
  });

  test('connections, frames in/out by type, delivery latency and append latency move with traffic', async () => {
    const [a, b] = await h.api.users(2, 'metr');
    assert.ok(a && b);
    const d = await h.api.direct(a, b);
    const m0 = await h.api.metrics();
    const conns0 = metricSum(m0, 'parley_connections');
    const wsA = await h.connect(a);
    const wsB = await h.connect(b);
    const wsB2 = await h.connect(b, 'b2');
    assert.ok(
      await eventually(async () => metricSum(await h.api.metrics(), 'parley_connections') >= conns0 + 3),
      'parley_connections counts open sockets',
    );
    const m1 = await h.api.metrics();
    for (let i = 0; i < 5; i++) await wsA.request({ type: 'ping' });
    for (let i = 0; i < 3; i++) await wsA.ack({ type: 'send', conversationId: d.id, clientId: `metr-${i}`, body: `m${i}` });
    await wsB.collect('event', 3);
    await wsB2.collect('event', 3);
    const m2 = await h.api.metrics();

    const inPing = metricSum(m2, 'parley_frames_in_total', { type: 'ping' }) - metricSum(m1, 'parley_frames_in_total', { type: 'ping' });
    assert.ok(inPing >= 5, `ping frames in by type: +${inPing}`);
    const inSend = metricSum(m2, 'parley_frames_in_total', { type: 'send' }) - metricSum(m1, 'parley_frames_in_total', { type: 'send' });
    assert.ok(inSend >= 3, `send frames in: +${inSend}`);
    const outEvent = metricSum(m2, 'parley_frames_out_total', { type: 'event' }) - metricSum(m1, 'parley_frames_out_total', { type: 'event' });
    assert.ok(outEvent >= 6, `event frames out: +${outEvent}`);
    const outPong = metricSum(m2, 'parley_frames_out_total', { type: 'pong' }) - metricSum(m1, 'parley_frames_out_total', { type: 'pong' });
    assert.ok(outPong >= 5, `pong frames out: +${outPong}`);
    const lat = (metricValue(m2, 'parley_delivery_latency_seconds_count') ?? 0) - (metricValue(m1, 'parley_delivery_latency_seconds_count') ?? 0);
    assert.ok(lat >= 3, `delivery latency observations: +${lat}`);
    const app = (metricValue(m2, 'parley_store_append_seconds_count') ?? 0) - (metricValue(m1, 'parley_store_append_seconds_count') ?? 0);
    assert.ok(app >= 3, `append latency observations: +${app}`);

    await wsA.close();
    await wsB.close();
    await wsB2.close();
    assert.ok(
      await eventually(async () => metricSum(await h.api.metrics(), 'parley_connections') <= conns0),
      'parley_connections goes back down when sockets close',
    );
  });
});
