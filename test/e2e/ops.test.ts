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
  test('frames out also count error frames and what a sync sends (event, conversation, synced)', async () => {
    const [a, b, x] = await h.api.users(3, 'metrsync');
    assert.ok(a && b && x);
    const d = await h.api.direct(a, b);
    const foreign = await h.api.direct(b, x);
    for (let i = 0; i < 3; i++) await h.api.send(b, d.id, `s${i}`);
    const g = await h.api.group(b, [a], 'unnamed in the sync');
    const wsA = await h.connect(a, 'metrsync-a');
    const out = (m: string, type: string): number => metricSum(m, 'parley_frames_out_total', { type });
    const m1 = await h.api.metrics();

    // A frame the handler refuses: an error frame.
    await wsA.error({ type: 'send', conversationId: foreign.id, clientId: 'not-mine', body: 'x' }, 'forbidden');
    // A sync: 3 events of d, a conversation frame for the group it did not name, an error for the foreign one, synced.
    const ref = 'metr-sync';
    wsA.send({ type: 'sync', ref, positions: { [d.id]: 0, [foreign.id]: 0 } });
    await wsA.next('synced', (f) => f.ref === ref);
    assert.equal(wsA.all('conversation', (f) => f.conversation.id === g.id).length, 1);
    const m2 = await h.api.metrics();

    assert.ok(out(m2, 'error') - out(m1, 'error') >= 2, `error frames out: +${out(m2, 'error') - out(m1, 'error')}`);
    assert.ok(out(m2, 'event') - out(m1, 'event') >= 3, `event frames out: +${out(m2, 'event') - out(m1, 'event')}`);
    assert.ok(out(m2, 'conversation') - out(m1, 'conversation') >= 1, `conversation frames out: +${out(m2, 'conversation') - out(m1, 'conversation')}`);
    assert.ok(out(m2, 'synced') - out(m1, 'synced') >= 1, `synced frames out: +${out(m2, 'synced') - out(m1, 'synced')}`);
  });

  test('frames out also count ready, read-loop errors, and the conversation and presence frames the hub pushes', async () => {
    const [a, b] = await h.api.users(2, 'metrhub');
    assert.ok(a && b);
    const out = (m: string, type: string): number => metricSum(m, 'parley_frames_out_total', { type });
    const m1 = await h.api.metrics();
    const wsA = await h.connect(a, 'metrhub-a');
    // A frame that is not JSON is refused by the read loop, before the frame handler.
    wsA.sendRaw('not json');
    await wsA.next('error');
    // Being added to a conversation pushes a conversation frame; b coming online pushes presence to a.
    await h.api.direct(b, a);
    await wsA.next('conversation');
    const wsB = await h.connect(b, 'metrhub-b');
    await wsA.next('presence', (f) => f.userId === b.user.id);
    const m2 = await h.api.metrics();
    for (const type of ['ready', 'error', 'conversation', 'presence']) {
      assert.ok(out(m2, type) - out(m1, type) >= 1, `${type} frames out: +${out(m2, type) - out(m1, type)}`);
    }
    assert.ok(out(m2, 'ready') - out(m1, 'ready') >= 2, 'one ready per authenticated socket');
    await wsA.close();
    await wsB.close();
  });
});
