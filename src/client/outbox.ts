/**
 * Messages composed but not yet acknowledged by the server, in compose order.
 * Every change is written to the store before it is acted on, so a message
 * survives a reload or crash and is resent with the same clientId (the server
 * answers a repeated clientId with the original message, never a second one).
 */
import type { Attachment, Id } from '../protocol/model.js';
import type { Json, KeyValueStore } from './storage.js';

export type OutboxState = 'queued' | 'sending' | 'failed';

export interface OutboxItem {
  clientId: string;
  conversationId: Id;
  body: string;
  replyTo?: Id;
  /** Uploads the message carries (R14), as the server answered them; sent as their ids. */
  attachments?: Attachment[];
  createdAt: number;
  state: OutboxState;
  /** Why a failed item was refused (not retried until the user asks). */
  error?: string;
  attempts: number;
}

const KEY = 'outbox';

export class Outbox {
  private items: OutboxItem[] = [];
  private writes: Promise<void> = Promise.resolve();

  constructor(private readonly store: KeyValueStore) {}

  async load(): Promise<void> {
    const raw = await this.store.get(KEY);
    const list = Array.isArray(raw) ? (raw as unknown as OutboxItem[]) : [];
    // Whatever was in flight when the app stopped is sent again.
    this.items = list.map((i) => (i.state === 'sending' ? { ...i, state: 'queued' } : i));
  }

  all(conversationId?: Id): OutboxItem[] {
    return conversationId ? this.items.filter((i) => i.conversationId === conversationId) : [...this.items];
  }

  get(clientId: string): OutboxItem | undefined {
    return this.items.find((i) => i.clientId === clientId);
  }

  async add(item: OutboxItem): Promise<void> {
    this.items.push(item);
    await this.save();
  }

  async update(clientId: string, patch: Partial<OutboxItem>): Promise<void> {
    const i = this.items.findIndex((x) => x.clientId === clientId);
    if (i < 0) return;
    this.items[i] = { ...(this.items[i] as OutboxItem), ...patch };
    // An in-flight state change alone need not hit the disk: a reload resends anyway.
    if (Object.keys(patch).some((k) => k !== 'state' && k !== 'attempts') || patch.state === 'failed') await this.save();
  }

  async remove(clientId: string): Promise<void> {
    const before = this.items.length;
    this.items = this.items.filter((i) => i.clientId !== clientId);
    if (this.items.length !== before) await this.save();
  }

  /** The next item to send in a conversation: the oldest one not failed; undefined when one is in flight. */
  next(conversationId: Id): OutboxItem | undefined {
    for (const i of this.items) {
      if (i.conversationId !== conversationId) continue;
      if (i.state === 'sending') return undefined;
      if (i.state === 'queued') return i;
    }
    return undefined;
  }

  /** Marks everything in flight as queued again (the socket went away). */
  requeue(): void {
    this.items = this.items.map((i) => (i.state === 'sending' ? { ...i, state: 'queued' } : i));
  }

  private save(): Promise<void> {
    const snapshot = JSON.parse(JSON.stringify(this.items)) as Json;
    // Writes are chained so an older snapshot never lands after a newer one.
    this.writes = this.writes.then(() => this.store.set(KEY, snapshot)).catch(() => undefined);
    return this.writes;
  }
}

/** A random id, unique enough to identify one composed message of one user. */
export function newClientId(): string {
  const c = globalThis.crypto as Crypto | undefined;
  if (c?.randomUUID) return c.randomUUID();
  return `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}${Math.random().toString(36).slice(2)}`;
}
