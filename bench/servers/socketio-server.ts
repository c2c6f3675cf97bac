/**
 * Baseline 2: a typical Socket.IO 4 server with one room per user, default
 * options (no perMessageDeflate, 25 s pings). Same routing as the ws router:
 *   emit("send", {to, body}, ack)   → room "u:<to>" gets "msg" {from, body}; ack({ok:true})
 *   emit("join", room, ack)         → joins room "r:<room>"
 *   emit("send", {room, body}, ack) → the room, except the sender, gets "msg" {from, room, body}
 * `?u=<userId>` in the handshake query names the user. No auth, no storage.
 * With REDIS_URL set it uses @socket.io/redis-adapter (the cluster variant).
 * Usage: node --import tsx bench/servers/socketio-server.ts <port>; prints "listening <port>" when ready.
 */
import { createServer } from 'node:http';
import { Server, type Socket } from 'socket.io';

interface SendPayload {
  to?: unknown;
  room?: unknown;
  body?: unknown;
}
type Ack = (res: { ok: boolean; error?: string }) => void;

const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
const http = createServer();
const io = new Server(http, { serveClient: false });

if (process.env.REDIS_URL) {
  // Loaded only for the cluster variant, so the single-node baseline needs neither package.
  const { createAdapter } = await import('@socket.io/redis-adapter');
  const { Redis } = await import('ioredis');
  const pub = new Redis(process.env.REDIS_URL);
  const sub = pub.duplicate();
  io.adapter(createAdapter(pub, sub));
}

io.on('connection', (socket: Socket) => {
  const u = String(socket.handshake.query.u ?? '');
  void socket.join(`u:${u}`);
  socket.on('send', (p: SendPayload, ack?: Ack) => {
    if (p && typeof p.body === 'string' && typeof p.to === 'string') {
      io.to(`u:${p.to}`).emit('msg', { from: u, body: p.body });
    } else if (p && typeof p.body === 'string' && typeof p.room === 'string') {
      socket.to(`r:${p.room}`).emit('msg', { from: u, room: p.room, body: p.body });
    } else {
      if (typeof ack === 'function') ack({ ok: false, error: 'bad_request' });
      return;
    }
    if (typeof ack === 'function') ack({ ok: true });
  });
  socket.on('join', (room: unknown, ack?: Ack) => {
    if (typeof room === 'string') void socket.join(`r:${room}`);
    if (typeof ack === 'function') ack({ ok: typeof room === 'string' });
  });
});

http.listen(port, '127.0.0.1', () => {
  const addr = http.address();
  process.stdout.write(`listening ${typeof addr === 'object' && addr ? addr.port : port}\n`);
});

function shutdown(): void {
  void io.close();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
