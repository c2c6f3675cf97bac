import type { ConversationState, Id, Message, ParleyClient, PresenceEntry } from '../../src/client/index.js';
import { ParleyError } from '../../src/client/index.js';

/** What every notice and form error says when the server could not be reached (no answer at all). */
export const UNREACHABLE = 'Could not reach the server. Check your connection and try again.';

/**
 * An error as a sentence for a notice. The server's reasons are sentences already and are kept;
 * a transport failure (the SDK's `network` or `timeout`, whose text is e.g. "network error: TypeError:
 * Failed to fetch" or "not connected") becomes UNREACHABLE; an answer without a reason ("HTTP 502"
 * from a proxy) or anything else that is not a ParleyError becomes `fallback`.
 */
export function errorText(e: unknown, fallback: string): string {
  if (!(e instanceof ParleyError)) return fallback;
  if (e.code === 'network' || e.code === 'timeout') return UNREACHABLE;
  if (!e.message || /^HTTP \d+$/.test(e.message)) return fallback;
  return e.message;
}

export function displayName(client: ParleyClient, userId: Id): string {
  if (userId === client.user?.id) return client.user.displayName || client.user.username;
  const u = client.userById(userId);
  return u ? u.displayName || u.username : 'Someone';
}

/** The other member of a direct chat (ourselves for a chat with oneself). */
export function peerOf(client: ParleyClient, c: ConversationState): Id | undefined {
  if (c.conversation.kind !== 'direct') return undefined;
  const me = client.user?.id;
  return c.conversation.members.find((m) => m.userId !== me)?.userId ?? me;
}

export function conversationTitle(client: ParleyClient, c: ConversationState): string {
  if (c.conversation.kind === 'group') return c.conversation.title || 'Untitled group';
  const peer = peerOf(client, c);
  return peer ? displayName(client, peer) : 'Direct chat';
}

const PALETTE = ['#4f6bed', '#d1456c', '#1f9d8b', '#c7772b', '#7b52c9', '#2f8fd8', '#3c9a47', '#b8509e'];

export function colorFor(seed: string): string {
  let h = 0;
  for (let i = 0; i < seed.length; i++) h = (h * 31 + seed.charCodeAt(i)) >>> 0;
  return PALETTE[h % PALETTE.length] as string;
}

export function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  const s = parts.length > 1 ? (parts[0]?.[0] ?? '') + (parts[1]?.[0] ?? '') : name.slice(0, 2);
  return s.toUpperCase() || '?';
}

export function timeOf(ms: number): string {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}

function startOfDay(ms: number): number {
  const d = new Date(ms);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

export function sameDay(a: number, b: number): boolean {
  return startOfDay(a) === startOfDay(b);
}

export function dayLabel(ms: number, now = Date.now()): string {
  const days = Math.round((startOfDay(now) - startOfDay(ms)) / 86_400_000);
  if (days === 0) return 'Today';
  if (days === 1) return 'Yesterday';
  const d = new Date(ms);
  if (days < 7) return d.toLocaleDateString([], { weekday: 'long' });
  return d.toLocaleDateString([], { day: 'numeric', month: 'long', year: d.getFullYear() === new Date(now).getFullYear() ? undefined : 'numeric' });
}

/** A short time for the conversation list: the time today, the weekday this week, else the date. */
export function listTime(ms: number, now = Date.now()): string {
  if (sameDay(ms, now)) return timeOf(ms);
  const days = Math.round((startOfDay(now) - startOfDay(ms)) / 86_400_000);
  if (days === 1) return 'Yesterday';
  if (days < 7) return new Date(ms).toLocaleDateString([], { weekday: 'short' });
  return new Date(ms).toLocaleDateString([], { day: 'numeric', month: 'short' });
}

export function presenceText(p: PresenceEntry | undefined, now = Date.now()): string {
  if (!p) return '';
  if (p.status === 'online') return 'online';
  if (p.status === 'away') return 'away';
  if (p.status === 'busy') return 'busy — do not disturb';
  if (!p.lastActiveAt) return 'offline';
  const mins = Math.round((now - p.lastActiveAt) / 60_000);
  if (mins < 1) return 'last seen just now';
  if (mins < 60) return `last seen ${mins} min ago`;
  if (sameDay(p.lastActiveAt, now)) return `last seen today at ${timeOf(p.lastActiveAt)}`;
  return `last seen ${dayLabel(p.lastActiveAt, now).toLowerCase()} at ${timeOf(p.lastActiveAt)}`;
}

/** How long a conversation keeps its messages, for people: "1 day", "30 days", "1 year". */
export function retentionLabel(days: number): string {
  if (days % 365 === 0) return days === 365 ? '1 year' : `${days / 365} years`;
  return days === 1 ? '1 day' : `${days} days`;
}

/**
 * The name of "no policy of its own" (R8): the server's default applies, which is forever unless the
 * operator set one; the server does not tell clients which, so the web client does not claim "Forever".
 */
export const SERVER_DEFAULT = 'Server default';

/** What the web client offers (R8); null drops the conversation's own policy, so the server's default applies. */
export const RETENTION_CHOICES: (number | null)[] = [null, 1, 7, 30, 365];

export const QUICK_REACTIONS = ['👍', '❤️', '😂', '😮', '😢', '🎉'];

/**
 * What to show for a message of an end-to-end encrypted conversation that this device cannot read
 * (the SDK gives it an empty body and says why), instead of an empty bubble. Undefined when it reads.
 */
export function unreadableText(m: Message): string | undefined {
  if (m.e2e?.ok !== false) return undefined;
  switch (m.e2e.reason) {
    case 'not-for-this-device':
      return 'Sent before this device was signed in; it cannot be read here.';
    case 'bad-signature':
    case 'wrong-attachments':
      return 'This message failed its security check and is hidden.';
    default:
      return 'This message could not be decrypted on this device.';
  }
}

/** A message's text for previews and quotes: its body, or why it cannot be read. */
export function messageText(m: Message): string {
  return unreadableText(m) ?? m.body;
}

/** Said wherever one picks end-to-end encryption, so the trade-off is known before it is made. */
export const E2E_EXPLAINED =
  'Only the people in it can read its messages: the server stores them encrypted. Message search does not cover it, and a device signed in later cannot read what was sent before.';
