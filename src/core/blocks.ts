/**
 * Blocking (R17). One user makes a block; it works both ways. While A blocks B:
 * - neither starts a direct conversation with the other, nor sends, edits or
 *   reacts in the one they have (deleting one's own messages stays possible);
 * - B cannot add A to a group (A may still add B: the choice was A's);
 * - neither sees the other's presence, typing or receipts, in any conversation.
 * Messages in a group both belong to still reach both, as in WhatsApp or
 * Signal, so every member of a group reads the same history; a client may
 * fold them away.
 *
 * Each node caches, per user, who they block and who blocks them, so the checks
 * on hot paths (a direct send, a presence flush, typing) read memory. A change
 * is announced on the bus and every node drops both users' entries.
 */
import type { Block, Id } from '../protocol/model.js';
import type { Store } from './ports/store.js';
import type { Fanout } from './fanout.js';
import type { RateLimits } from './limits.js';
import { badRequest, forbidden, notFound } from './errors.js';
import { LoadingCache } from './loading-cache.js';

/** Whom a user blocks and who blocks them. */
export interface Relations {
  blocks: ReadonlySet<Id>;
  blockedBy: ReadonlySet<Id>;
}

const NONE: Relations = { blocks: new Set(), blockedBy: new Set() };

export interface BlockPage {
  blocks: Block[];
  /** Cursor of the next page; null at the end. */
  next: string | null;
}

function refuse(rel: Relations, otherId: Id): void {
  if (rel === NONE) return;
  if (rel.blocks.has(otherId)) throw forbidden('You block this user; unblock them to message them.');
  if (rel.blockedBy.has(otherId)) throw forbidden('This user does not accept messages from you.');
}

export class BlockService {
  private readonly cache: LoadingCache<Id, Relations>;

  constructor(
    private readonly store: Store,
    private readonly fanout: Fanout,
    private readonly limits: RateLimits,
    /** After a block is made or lifted and announced: what else follows from it (presence shown to each side). */
    private readonly onChanged: (a: Id, b: Id, blocked: boolean) => Promise<void> = async () => undefined,
    maxEntries = 100_000,
  ) {
    this.cache = new LoadingCache((id) => this.load(id), maxEntries);
  }

  /** From memory when cached: the send path awaits nothing it does not have to. */
  relationsOf(userId: Id): Relations | Promise<Relations> {
    return this.cache.get(userId);
  }

  private async load(userId: Id): Promise<Relations> {
    const r = await this.store.blocks.related(userId);
    return r.blocks.length === 0 && r.blockedBy.length === 0 ? NONE : { blocks: new Set(r.blocks), blockedBy: new Set(r.blockedBy) };
  }

  /**
   * Throws forbidden when a block stands between the actor and `otherId`, with
   * a reason that tells the actor only what is theirs to know: that they block
   * the other, or that the other does not accept messages from them.
   */
  requireNone(actorId: Id, otherId: Id): void | Promise<void> {
    const r = this.relationsOf(actorId);
    // Synchronous when cached: a direct send then pays no extra turn of the microtask queue.
    if (r instanceof Promise) return r.then((rel) => refuse(rel, otherId));
    refuse(r, otherId);
  }

  /** Everyone who must not see the user's presence, typing or receipts; undefined when nobody. */
  async hiddenFrom(userId: Id): Promise<Id[] | undefined> {
    const r = this.relationsOf(userId);
    const rel = r instanceof Promise ? await r : r;
    if (rel === NONE) return undefined;
    return [...new Set([...rel.blocks, ...rel.blockedBy])];
  }

  /** The users of `candidates` who block the actor. */
  async blockersAmong(actorId: Id, candidates: readonly Id[]): Promise<Id[]> {
    const r = this.relationsOf(actorId);
    const rel = r instanceof Promise ? await r : r;
    return rel === NONE ? [] : candidates.filter((id) => rel.blockedBy.has(id));
  }

  async block(actorId: Id, targetId: Id): Promise<{ block: Block; created: boolean }> {
    if (targetId === actorId) throw badRequest('You cannot block yourself.');
    // A change is announced to every node: it counts as a write against the user's rate limit.
    await this.limits.write(actorId);
    const user = await this.store.users.byId(targetId);
    if (!user) throw notFound('No user has that id.');
    const { block, created } = await this.store.blocks.add(actorId, targetId, Date.now());
    if (created) await this.changed(actorId, targetId, true);
    return { block: { user, createdAt: block.createdAt }, created };
  }

  async unblock(actorId: Id, targetId: Id): Promise<void> {
    await this.limits.write(actorId);
    if (!(await this.store.blocks.remove(actorId, targetId))) throw notFound('You do not block that user.');
    await this.changed(actorId, targetId, false);
  }

  /** Whom the actor blocks, ascending by user id; the cursor is the last user id of the page. */
  async list(actorId: Id, limit: number, after?: string): Promise<BlockPage> {
    const rows = await this.store.blocks.list(actorId, limit + 1, after);
    const page = rows.slice(0, limit);
    const users = new Map((await this.store.users.byIds(page.map((b) => b.blockedId))).map((u) => [u.id, u]));
    const blocks: Block[] = [];
    for (const b of page) {
      const user = users.get(b.blockedId);
      if (user) blocks.push({ user, createdAt: b.createdAt });
    }
    return { blocks, next: rows.length > limit ? (page[page.length - 1]?.blockedId ?? null) : null };
  }

  /** Drops cached relations of these users (a change here, or one announced by another node). */
  invalidate(userIds: readonly Id[]): void {
    for (const id of userIds) this.cache.invalidate(id);
  }

  private async changed(a: Id, b: Id, blocked: boolean): Promise<void> {
    // Here at once, whatever the bus does; other nodes when the announcement reaches them.
    this.invalidate([a, b]);
    await this.fanout.blocksChanged([a, b]);
    await this.onChanged(a, b, blocked);
  }
}
