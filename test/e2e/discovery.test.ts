import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Harness } from '../helpers/server.js';
import { expectStatus } from '../helpers/http.js';

interface Discovery {
  nodeId: string;
  url: string;
  wsUrl: string;
  load: { connections: number; eventLoopLagMs: number };
  healthyNodes: number;
}

describe('GET /v1/discovery on a single node', () => {
  let h: Harness;
  before(async () => {
    h = await Harness.start({ nodeId: 'solo-node', registryHeartbeatMs: 100 });
  });
  after(async () => {
    await h?.close();
  });

  test('names this node, without auth, and is never cached', async () => {
    const res = await h.api.req('GET', '/v1/discovery');
    expectStatus(res, 200);
    assert.equal(res.headers.get('cache-control'), 'no-store');
    const body = res.body as Discovery;
    assert.equal(body.nodeId, 'solo-node');
    assert.equal(body.url, h.url);
    assert.equal(body.wsUrl, `${h.url.replace('http', 'ws')}/v1/ws`);
    assert.equal(body.healthyNodes, 1);
    // An idle loop must not read as the histogram's 20 ms resolution.
    assert.ok(body.load.eventLoopLagMs >= 0 && body.load.eventLoopLagMs < 15, `event-loop lag ${body.load.eventLoopLagMs} ms`);
  });

  test('reports the connections this node holds, refreshed by the heartbeat', async () => {
    const ws = await h.connect(await h.api.user('disc'));
    let seen = 0;
    for (let i = 0; i < 50 && seen < 1; i++) {
      await new Promise((r) => setTimeout(r, 50));
      seen = ((await h.api.req('GET', '/v1/discovery')).body as Discovery).load.connections;
    }
    assert.equal(seen, 1);
    await ws.close();
  });

  test('the wsUrl it answers is the socket endpoint of this node', async () => {
    const { wsUrl } = (await h.api.req('GET', '/v1/discovery')).body as Discovery;
    assert.equal(wsUrl, h.srv.wsUrl);
  });
});
