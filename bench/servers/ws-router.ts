/**
 * Baseline 1: a bare `ws` router, the in-language limit. No auth, no storage,
 * no rules: `?u=<userId>` names the user, frames are routed and acked.
 *   {type:"send", ref, to, body}   → each socket of `to` gets {type:"msg", from, body}; sender gets {type:"ack", ref}
 *   {type:"join", ref, room}       → joins a room; {type:"ack", ref}
 *   {type:"send", ref, room, body} → every other socket in the room gets {type:"msg", from, room, body}
 *   {type:"ping", ref}             → {type:"pong", ref}
 * Usage: node --import tsx bench/servers/ws-router.ts <port>; prints "listening <port>" when ready.
 */
import { WebSocketServer, type WebSocket, type RawData } from 'ws';

interface Conn extends WebSocket {
  userId: string;
}

interface InFrame {
  type?: unknown;
  ref?: unknown;
  to?: unknown;
  room?: unknown;
  body?: unknown;
}

const port = Number(process.argv[2] ?? process.env.PORT ?? 0);
const users = new Map<string, Set<Conn>>();
const rooms = new Map<string, Set<Conn>>();

const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false, maxPayload: 64 * 1024, clientTracking: false });

function ack(ws: Conn, ref: unknown): void {
  ws.send(JSON.stringify({ type: 'ack', ref }));
}

function onMessage(this: WebSocket, data: RawData): void {
  const ws = this as Conn;
  let f: InFrame;
  try {
    f = JSON.parse(data.toString()) as InFrame;
  } catch {
    ws.send('{"type":"error","code":"bad_request"}');
    return;
  }
  if (f.type === 'send' && typeof f.body === 'string') {
    if (typeof f.to === 'string') {
      const out = JSON.stringify({ type: 'msg', from: ws.userId, body: f.body });
      const targets = users.get(f.to);
      if (targets) for (const t of targets) t.send(out);
      ack(ws, f.ref);
      return;
    }
    if (typeof f.room === 'string') {
      const out = JSON.stringify({ type: 'msg', from: ws.userId, room: f.room, body: f.body });
      const members = rooms.get(f.room);
      if (members) for (const t of members) if (t !== ws) t.send(out);
      ack(ws, f.ref);
      return;
    }
  } else if (f.type === 'join' && typeof f.room === 'string') {
    let set = rooms.get(f.room);
    if (!set) rooms.set(f.room, (set = new Set()));
    set.add(ws);
    ack(ws, f.ref);
    return;
  } else if (f.type === 'ping') {
    ws.send(JSON.stringify({ type: 'pong', ref: f.ref }));
    return;
  }
  ws.send(JSON.stringify({ type: 'error', ref: f.ref, code: 'bad_request' }));
}

function onClose(this: WebSocket): void {
  const ws = this as Conn;
  const set = users.get(ws.userId);
  if (set) {
    set.delete(ws);
    if (set.size === 0) users.delete(ws.userId);
  }
  for (const [name, members] of rooms) {
    if (members.delete(ws) && members.size === 0) rooms.delete(name);
  }
}

wss.on('connection', (socket, req) => {
  const ws = socket as Conn;
  const q = req.url?.indexOf('?') ?? -1;
  ws.userId = (q >= 0 ? new URLSearchParams(req.url?.slice(q + 1)).get('u') : null) ?? '';
  let set = users.get(ws.userId);
  if (!set) users.set(ws.userId, (set = new Set()));
  set.add(ws);
  ws.on('message', onMessage);
  ws.on('close', onClose);
  ws.on('error', () => ws.terminate());
});

wss.on('listening', () => {
  const addr = wss.address();
  process.stdout.write(`listening ${typeof addr === 'object' && addr ? addr.port : port}\n`);
});

function shutdown(): void {
  wss.close();
  process.exit(0);
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
