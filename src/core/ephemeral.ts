/**
 * Typing indicators and receipts: lightweight, not in the log. Typing lapses
 * on its own: one shared sweep, no timer per typist.
 */
import type { Id, ReceiptKind } from '../protocol/model.js';
import type { Store } from './ports/store.js';
import type { MembershipCache } from './membership.js';
import type { BlockService } from './blocks.js';
import type { Fanout } from './fanout.js';
import type { LastSeqs } from './last-seq.js';

/** Others are told again about a continuing typist at most this often. */
const TYPING_REPEAT_MS = 3000;

export class EphemeralService {
  /** `${conversationId} ${userId}` → when it lapses and when others were last told. */
  private readonly typing = new Map<string, { conversationId: Id; userId: Id; until: number; told: number }>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly store: Store,
    private readonly membership: MembershipCache,
    private readonly blocks: BlockService,
    private readonly fanout: Fanout,
    private readonly lastSeqs: LastSeqs,
    private readonly typingTtlMs: number,
  ) {
    this.sweeper = setInterval(() => this.lapse(Date.now()), Math.min(1000, Math.max(50, typingTtlMs / 4))).unref();
  }

  async typingChanged(userId: Id, conversationId: Id, active: boolean): Promise<void> {
    await this.membership.require(conversationId, userId);
    const key = `${conversationId} ${userId}`;
    const now = Date.now();
    const cur = this.typing.get(key);
    if (active) {
      if (cur) {
        cur.until = now + this.typingTtlMs;
        if (now - cur.told < TYPING_REPEAT_MS) return;
        cur.told = now;
      } else this.typing.set(key, { conversationId, userId, until: now + this.typingTtlMs, told: now });
    } else {
      if (!cur) return;
      this.typing.delete(key);
    }
    await this.tellTyping(conversationId, userId, active);
  }

  /** A user who sends a message has stopped typing in that conversation. */
  stoppedBySending(userId: Id, conversationId: Id): void {
    const key = `${conversationId} ${userId}`;
    if (!this.typing.delete(key)) return;
    void this.tellTyping(conversationId, userId, false).catch(() => undefined);
  }

  /** Others in the conversation hear of it, except those a block separates from the typist. */
  private async tellTyping(conversationId: Id, userId: Id, active: boolean): Promise<void> {
    const hideFrom = await this.blocks.hiddenFrom(userId);
    await this.fanout.ephemeral(conversationId, { type: 'typing', conversationId, userId, active }, { userId, hideFrom });
  }

  private lapse(now: number): void {
    for (const [key, t] of this.typing) {
      if (t.until > now) continue;
      this.typing.delete(key);
      void this.tellTyping(t.conversationId, t.userId, false).catch(() => undefined);
    }
  }

  /**
   * Both kinds are bounded by the conversation's lastSeq: nothing beyond the log
   * can have been delivered or read. Read receipts also move the member's
   * lastReadSeq (forward only); a delivered receipt is forwarded with
   * min(seq, lastSeq), and not at all while the log is empty.
   */
  async receipt(userId: Id, connId: string, conversationId: Id, seq: number, kind: ReceiptKind): Promise<void> {
    await this.membership.require(conversationId, userId);
    if (kind === 'read') {
      const moved = await this.store.conversations.markRead(conversationId, userId, seq);
      if (moved === undefined) return;
      seq = moved;
    } else {
      seq = await this.lastSeqs.bound(conversationId, seq);
      if (seq <= 0) return;
    }
    const hideFrom = await this.blocks.hiddenFrom(userId);
    await this.fanout.ephemeral(conversationId, { type: 'receipt', conversationId, userId, seq, kind }, { connId, hideFrom });
  }

  close(): void {
    clearInterval(this.sweeper);
  }
}
