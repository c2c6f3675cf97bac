import { useCallback, useEffect, useLayoutEffect, useRef, useState } from 'preact/hooks';
import type { ConversationState, Id, Message, OutboxItem, ParleyClient } from '../../src/client/index.js';
import { Avatar } from './avatar.js';
import type { JumpTarget } from './search.js';
import { AddMembersDialog, ConfirmDialog, RetentionDialog, SafetyNumberDialog } from './dialogs.js';
import { Alert, Back, Ban, Check, Clock, Close, DoubleCheck, Lock, Paperclip, Pencil, Reply, Send, Smile, Trash, UserPlus } from './icons.js';
import { AttachmentList, TrayView, attachmentSummary, useTray, type UploadTray } from './attachments.js';
import {
  E2E_EXPLAINED,
  QUICK_REACTIONS,
  SERVER_DEFAULT,
  colorFor,
  conversationTitle,
  dayLabel,
  displayName,
  errorText,
  messageText,
  peerOf,
  presenceText,
  retentionLabel,
  sameDay,
  timeOf,
  unreadableText,
} from './util.js';

const MAX_BODY = 4000;
/** How far back a search result is looked for: pages of history (of 50) loaded before giving up. */
const MAX_JUMP_PAGES = 40;
/** How long a message brought into view from a search stays highlighted. */
const FLASH_MS = 4000;

/**
 * One conversation. Its notice (a failure of something done here: block, delete, edit, retention)
 * is kept by the chat screen per conversation (`notice`, set with `onNotice(conv.id, text)`), so a
 * failure that lands after one has moved to another conversation is told here, when one comes back,
 * and never in the other one's pane.
 */
export function ConversationPane({
  client,
  conv,
  onBack,
  notice,
  onNotice,
  jump,
  onJumped,
}: {
  client: ParleyClient;
  conv: ConversationState;
  onBack: () => void;
  notice: string;
  onNotice: (conversationId: Id, text: string) => void;
  /** A message to bring into view (a search result), loading older history until it is held. */
  jump?: JumpTarget | undefined;
  onJumped?: () => void;
}) {
  const [replyTo, setReplyTo] = useState<Message | undefined>();
  const [editing, setEditing] = useState<Message | undefined>();
  const [adding, setAdding] = useState(false);
  const [deleting, setDeleting] = useState<Message | undefined>();
  const [confirmBlock, setConfirmBlock] = useState(false);
  const [blockBusy, setBlockBusy] = useState(false);
  const [retentionOpen, setRetentionOpen] = useState(false);
  const [retentionBusy, setRetentionBusy] = useState(false);
  const [safetyOpen, setSafetyOpen] = useState(false);
  // The composer's text lives here, beside `editing`, so that starting an edit sets both in one
  // update: the "Editing message" bar never shows before the old text is in the box, and nothing
  // typed after it shows can be overwritten. A draft per conversation survives switching back and
  // forth; while editing it is kept aside (in `drafts`) and comes back when the edit ends.
  const [text, setText] = useState(() => drafts.get(conv.id) ?? '');
  const composerRef = useRef<HTMLTextAreaElement>(null);
  // Files for the next message (R14): picked, dropped on the pane or pasted; uploaded at once.
  const tray = useTray(client, conv.id);
  const [dropping, setDropping] = useState(false);

  useEffect(() => {
    void client.loadLatest(conv.id);
  }, [client, conv.id]);

  const id = conv.id;
  const setNotice = (text: string): void => onNotice(id, text);

  const title = conversationTitle(client, conv);
  const peer = peerOf(client, conv);
  const me = client.user?.id;
  const typing = client.typingUsers(conv.id);
  const isGroup = conv.conversation.kind === 'group';
  const myRole = conv.conversation.members.find((m) => m.userId === me)?.role;
  // The other member of a direct chat, whom one may block (R17); not in a chat with oneself.
  const other = !isGroup && peer && peer !== me ? peer : undefined;
  const blocked = !!other && client.isBlocked(other);
  // Retention (R8): the conversation's own policy in days; absent, the server's default applies
  // (forever unless the operator set one, which clients are not told: hence "Server default"). Group
  // owners and admins set it, or either member of a direct conversation; everyone sees a policy
  // under the subtitle. A conversation frame updates it live.
  const keepDays = conv.conversation.retentionDays;
  const keepText = keepDays ? retentionLabel(keepDays) : SERVER_DEFAULT;
  const canSetRetention = isGroup ? myRole === 'owner' || myRole === 'admin' : !!myRole;
  let subtitle: string;
  if (typing.length) {
    subtitle = isGroup ? `${typing.map((u) => displayName(client, u)).join(', ')} ${typing.length === 1 ? 'is' : 'are'} typing…` : 'typing…';
  } else if (isGroup) {
    subtitle = conv.conversation.members.map((m) => (m.userId === me ? 'You' : displayName(client, m.userId))).join(', ');
  } else if (blocked) subtitle = 'Blocked';
  else subtitle = peer && peer !== me ? presenceText(client.presenceOf(peer)) : 'Notes to self';

  const setBlocked = async (block: boolean): Promise<void> => {
    if (!other) return;
    setBlockBusy(true);
    try {
      if (block) {
        await client.block(other);
        setReplyTo(undefined);
        if (editing) endEdit();
      } else await client.unblock(other);
    } catch (e) {
      setNotice(errorText(e, block ? 'Could not block this user.' : 'Could not unblock this user.'));
    } finally {
      setBlockBusy(false);
    }
  };

  const saveRetention = async (days: number | null): Promise<void> => {
    setRetentionBusy(true);
    try {
      await client.setRetention(conv.id, days);
    } catch (e) {
      // The server's reason (e.g. a role that may not), or a plain sentence for a transport failure.
      setNotice(errorText(e, 'Could not change how long messages are kept. Please try again.'));
    } finally {
      setRetentionBusy(false);
      setRetentionOpen(false);
    }
  };

  const startEdit = useCallback((m: Message) => {
    setReplyTo(undefined);
    setEditing(m);
    setText(m.body);
    composerRef.current?.focus();
  }, []);
  /** Leaves edit mode; the composer gets back the draft it held before. */
  const endEdit = useCallback(() => {
    setEditing(undefined);
    setText(drafts.get(conv.id) ?? '');
  }, [conv.id]);
  const startReply = useCallback(
    (m: Message) => {
      if (editing) endEdit();
      setReplyTo(m);
      composerRef.current?.focus();
    },
    [editing, endEdit],
  );

  return (
    <section
      class={`conversation ${dropping ? 'dropping' : ''}`}
      aria-label={title}
      onDragOver={(e) => {
        if (blocked || !e.dataTransfer?.types.includes('Files')) return;
        e.preventDefault();
        setDropping(true);
      }}
      onDragLeave={(e) => {
        if (!(e.currentTarget as HTMLElement).contains(e.relatedTarget as Node | null)) setDropping(false);
      }}
      onDrop={(e) => {
        setDropping(false);
        const files = [...(e.dataTransfer?.files ?? [])];
        if (blocked || files.length === 0) return;
        e.preventDefault();
        void tray.add(files);
      }}
    >
      {dropping && (
        <div class="drop-hint" aria-hidden="true">
          Drop files to send them here
        </div>
      )}
      <header class="conv-head">
        <button class="icon-btn back" aria-label="Back to conversations" onClick={onBack}>
          <Back />
        </button>
        {isGroup ? <Avatar client={client} userId={conv.id} name={title} size={40} group /> : <Avatar client={client} userId={peer ?? conv.id} name={title} size={40} showPresence={peer !== me} />}
        <div class="conv-head-text">
          <h2>{title}</h2>
          <p class={typing.length ? 'typing' : ''} aria-live="polite" data-testid="conv-subtitle">
            {subtitle}
          </p>
          {keepDays !== undefined && (
            <p class="conv-retention" data-testid="conv-retention" title={`Messages older than ${keepText} are deleted for everyone`}>
              <Clock size={12} />
              Messages kept {keepText}
            </p>
          )}
          {conv.conversation.encrypted &&
            (other ? (
              <button class="conv-e2e link" data-testid="conv-e2e" title={E2E_EXPLAINED} aria-haspopup="dialog" onClick={() => setSafetyOpen(true)}>
                <Lock size={12} />
                End-to-end encrypted
              </button>
            ) : (
              <p class="conv-e2e" data-testid="conv-e2e" title={E2E_EXPLAINED}>
                <Lock size={12} />
                End-to-end encrypted
              </p>
            ))}
        </div>
        {isGroup && (myRole === 'owner' || myRole === 'admin') && (
          <button class="icon-btn" aria-label="Add members" title="Add members" onClick={() => setAdding(true)}>
            <UserPlus />
          </button>
        )}
        {canSetRetention && (
          <button class="icon-btn" aria-label={`Keep messages: ${keepText}`} title={`Keep messages: ${keepText}`} aria-haspopup="dialog" onClick={() => setRetentionOpen(true)}>
            <Clock />
          </button>
        )}
        {other && (
          <button
            class={`icon-btn ${blocked ? 'on' : ''}`}
            aria-label={blocked ? `Unblock ${title}` : `Block ${title}`}
            title={blocked ? `Unblock ${title}` : `Block ${title}`}
            aria-pressed={blocked}
            disabled={blockBusy}
            onClick={() => (blocked ? void setBlocked(false) : setConfirmBlock(true))}
          >
            <Ban />
          </button>
        )}
      </header>
      <Timeline client={client} conv={conv} onReply={startReply} onEdit={startEdit} onDelete={setDeleting} jump={jump} onJumped={onJumped} onNotice={setNotice} />
      {typing.length > 0 && (
        <div class="typing-row" aria-hidden="true">
          <span class="typing-dots">
            <i />
            <i />
            <i />
          </span>
          {isGroup ? `${displayName(client, typing[0] as Id)} is typing` : `${title} is typing`}
        </div>
      )}
      {notice && (
        <div class="notice" role="alert">
          <span>{notice}</span>
          <button class="icon-btn small" aria-label="Dismiss" onClick={() => setNotice('')}>
            <Close size={16} />
          </button>
        </div>
      )}
      {blocked ? (
        <div class="blocked-bar" role="status" data-testid="blocked-notice">
          <span>You blocked this user. Unblock to send messages.</span>
          <button class="btn" disabled={blockBusy} onClick={() => void setBlocked(false)}>
            Unblock
          </button>
        </div>
      ) : (
        <Composer
          client={client}
          conv={conv}
          inputRef={composerRef}
          tray={tray}
          text={text}
          setText={setText}
          replyTo={replyTo}
          editing={editing}
          onCancel={() => {
            setReplyTo(undefined);
            if (editing) endEdit();
          }}
          onEditLast={() => {
            const mine = [...conv.messages].reverse().find((m) => m.senderId === me && !m.deletedAt && !unreadableText(m));
            if (mine) startEdit(mine);
          }}
          onError={setNotice}
        />
      )}
      {confirmBlock && (
        <ConfirmDialog
          title={`Block ${title}?`}
          text="Neither of you will be able to message the other here, and you will stop seeing each other's online status and typing. They will not be able to add you to groups. You can unblock them at any time."
          confirm="Block"
          onClose={() => setConfirmBlock(false)}
          onConfirm={() => {
            setConfirmBlock(false);
            void setBlocked(true);
          }}
        />
      )}
      {safetyOpen && other && <SafetyNumberDialog client={client} userId={other} name={title} onClose={() => setSafetyOpen(false)} />}
      {retentionOpen && <RetentionDialog current={keepDays} busy={retentionBusy} onClose={() => setRetentionOpen(false)} onSave={(days) => void saveRetention(days)} />}
      {adding && <AddMembersDialog client={client} conv={conv} onClose={() => setAdding(false)} />}
      {deleting && (
        <ConfirmDialog
          title="Delete message?"
          text="It will be removed for everyone in this conversation."
          confirm="Delete"
          onClose={() => setDeleting(undefined)}
          onConfirm={async () => {
            const m = deleting;
            setDeleting(undefined);
            try {
              await client.deleteMessage(m.id);
            } catch (e) {
              setNotice(errorText(e, 'Could not delete the message.'));
            }
          }}
        />
      )}
    </section>
  );
}

type Row =
  | { kind: 'day'; key: string; at: number }
  | { kind: 'msg'; key: string; m: Message; first: boolean }
  | { kind: 'out'; key: string; item: OutboxItem; first: boolean };

function Timeline({
  client,
  conv,
  onReply,
  onEdit,
  onDelete,
  jump,
  onJumped,
  onNotice,
}: {
  client: ParleyClient;
  conv: ConversationState;
  onReply: (m: Message) => void;
  onEdit: (m: Message) => void;
  onDelete: (m: Message) => void;
  jump: JumpTarget | undefined;
  onJumped: (() => void) | undefined;
  onNotice: (text: string) => void;
}) {
  const ref = useRef<HTMLDivElement>(null);
  // The message brought into view from a search: highlighted for a moment, scrolled to once rendered.
  const [flash, setFlash] = useState<Id | undefined>();
  const scrollTo = useRef<Id | undefined>(undefined);
  const stick = useRef(true);
  const restoreFrom = useRef<number | undefined>(undefined);
  const [loadingOlder, setLoadingOlder] = useState(false);
  const me = client.user?.id;
  const outbox = client.outbox(conv.id);
  const messages = conv.messages;

  const rows: Row[] = [];
  let prevAt: number | undefined;
  let prevSender: Id | undefined;
  const push = (at: number, sender: Id | undefined, row: (first: boolean) => Row): void => {
    if (prevAt === undefined || !sameDay(prevAt, at)) {
      rows.push({ kind: 'day', key: `d${at}`, at });
      prevSender = undefined;
    }
    rows.push(row(prevSender !== sender || (prevAt !== undefined && at - prevAt > 5 * 60_000)));
    prevAt = at;
    prevSender = sender;
  };
  // Where unsent messages go. One waiting to go (queued, sending) is at the end: the server appends
  // it after everything held. One the server refused ('failed', kept with Retry and Discard until
  // the user picks) stays where it was written, by its compose time among the messages' times, so
  // what came after it, one's own and others', shows below it, as Slack and WhatsApp do. Retry
  // queues it again, and then it is at the end, where it will land.
  const failed = outbox.filter((i) => i.state === 'failed').sort((a, b) => a.createdAt - b.createdAt);
  const waiting = outbox.filter((i) => i.state !== 'failed');
  const out = (item: OutboxItem): void => push(item.createdAt, me, (first) => ({ kind: 'out', key: `o${item.clientId}`, item, first }));
  let f = 0;
  for (const m of messages) {
    for (; f < failed.length && (failed[f] as OutboxItem).createdAt < m.createdAt; f++) out(failed[f] as OutboxItem);
    push(m.createdAt, m.senderId, (first) => ({ kind: 'msg', key: m.id, m, first }));
  }
  for (; f < failed.length; f++) out(failed[f] as OutboxItem);
  for (const item of waiting) out(item);

  const markReadIfVisible = useCallback(() => {
    const el = ref.current;
    if (!el || document.visibilityState !== 'visible') return;
    if (el.scrollHeight - el.scrollTop - el.clientHeight < 80) client.markRead(conv.id);
  }, [client, conv.id]);

  const loadOlder = useCallback(async () => {
    const el = ref.current;
    if (!el || loadingOlder || !conv.hasMoreBefore || !conv.loaded) return;
    setLoadingOlder(true);
    restoreFrom.current = el.scrollHeight - el.scrollTop;
    try {
      await client.loadOlder(conv.id);
    } catch {
      restoreFrom.current = undefined;
    } finally {
      setLoadingOlder(false);
    }
  }, [client, conv, loadingOlder]);

  const onScroll = (): void => {
    const el = ref.current;
    if (!el) return;
    stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 80;
    if (el.scrollTop < 120) void loadOlder();
    markReadIfVisible();
  };

  // Find a search result: the newest page first, then older pages until the message is held (its
  // seq is known, so the walk stops once history reaches back past it), within MAX_JUMP_PAGES.
  const jumpNonce = jump?.nonce;
  useEffect(() => {
    if (!jump) return undefined;
    let cancelled = false;
    const target = jump;
    void (async () => {
      let failed: unknown;
      try {
        await client.loadLatest(conv.id);
        for (let pages = 0; pages < MAX_JUMP_PAGES && !cancelled && !conv.message(target.messageId) && conv.hasMoreBefore && (conv.oldestSeq() ?? Infinity) > target.seq; pages++) {
          if (!(await client.loadOlder(conv.id))) break;
        }
      } catch (e) {
        failed = e;
      }
      if (cancelled) return;
      onJumped?.();
      const m = conv.message(target.messageId);
      if (m && !m.deletedAt) {
        stick.current = false;
        restoreFrom.current = undefined;
        scrollTo.current = m.id;
        setFlash(m.id);
      } else if (failed !== undefined) onNotice(errorText(failed, 'Could not load older messages to show that message.'));
      else if (!m && conv.hasMoreBefore && (conv.oldestSeq() ?? Infinity) > target.seq) onNotice('That message is too far back to show here.');
      else onNotice('That message could not be found. It may have been deleted.');
    })();
    return () => {
      cancelled = true;
    };
  }, [jumpNonce]);
  useEffect(() => {
    if (!flash) return undefined;
    const t = setTimeout(() => setFlash(undefined), FLASH_MS);
    return () => clearTimeout(t);
  }, [flash]);

  // Keep the view where the reader is: at the bottom for new messages, in place when older ones arrive above.
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    const target = scrollTo.current && el.querySelector<HTMLElement>(`.msg[data-message-id="${CSS.escape(scrollTo.current)}"]`);
    if (target) {
      scrollTo.current = undefined;
      restoreFrom.current = undefined;
      target.scrollIntoView({ block: 'center' });
      target.focus({ preventScroll: true });
    } else if (restoreFrom.current !== undefined) {
      el.scrollTop = el.scrollHeight - restoreFrom.current;
      restoreFrom.current = undefined;
    } else if (stick.current) el.scrollTop = el.scrollHeight;
  });

  useEffect(() => {
    markReadIfVisible();
    // A short timeline may not fill the view; then there is no scroll to trigger older pages.
    const el = ref.current;
    if (el && el.scrollHeight <= el.clientHeight && conv.hasMoreBefore && conv.loaded) void loadOlder();
  });

  useEffect(() => {
    const on = (): void => markReadIfVisible();
    document.addEventListener('visibilitychange', on);
    return () => document.removeEventListener('visibilitychange', on);
  }, [markReadIfVisible]);

  const isGroup = conv.conversation.kind === 'group';
  return (
    <div class="timeline" ref={ref} onScroll={onScroll} role="log" aria-label="Messages" aria-live="polite" tabIndex={0}>
      <div class="timeline-inner">
        {conv.hasMoreBefore && conv.loaded ? (
          <div class="history-note">{loadingOlder ? 'Loading older messages…' : ''}</div>
        ) : conv.loaded || messages.length > 0 ? (
          <div class="history-note start">This is the start of the conversation.</div>
        ) : (
          <div class="history-note">Loading…</div>
        )}
        {rows.map((r) => {
          if (r.kind === 'day')
            return (
              <div class="day-sep" key={r.key} role="separator">
                <span>{dayLabel(r.at)}</span>
              </div>
            );
          if (r.kind === 'msg')
            return (
              <MessageRow
                key={r.key}
                client={client}
                conv={conv}
                m={r.m}
                mine={r.m.senderId === me}
                first={r.first}
                showName={isGroup}
                flash={r.m.id === flash}
                onReply={onReply}
                onEdit={onEdit}
                onDelete={onDelete}
              />
            );
          return <QueuedRow key={r.key} client={client} item={r.item} first={r.first} conv={conv} />;
        })}
      </div>
    </div>
  );
}

function Ticks({ state }: { state: 'queued' | 'sending' | 'failed' | 'sent' | 'delivered' | 'read' }) {
  const label = { queued: 'Queued', sending: 'Sending', failed: 'Not sent', sent: 'Sent', delivered: 'Delivered', read: 'Read' }[state];
  return (
    <span class={`ticks ticks-${state}`} title={label} aria-label={label} role="img" data-tick={state}>
      {state === 'queued' || state === 'sending' ? <Clock size={14} /> : state === 'failed' ? <Alert size={14} /> : state === 'sent' ? <Check size={15} /> : <DoubleCheck size={16} />}
    </span>
  );
}

function ReplyQuote({ client, conv, id }: { client: ParleyClient; conv: ConversationState; id: Id }) {
  const target = conv.message(id);
  return (
    <div class="quote">
      <strong>{target ? displayName(client, target.senderId) : 'Reply'}</strong>
      <span>{target ? (target.deletedAt ? 'Message deleted' : messageText(target) || attachmentSummary(target.attachments)) : 'An earlier message'}</span>
    </div>
  );
}

function MessageRow({
  client,
  conv,
  m,
  mine,
  first,
  showName,
  flash,
  onReply,
  onEdit,
  onDelete,
}: {
  client: ParleyClient;
  conv: ConversationState;
  m: Message;
  mine: boolean;
  first: boolean;
  showName: boolean;
  /** Just brought into view from a search. */
  flash: boolean;
  onReply: (m: Message) => void;
  onEdit: (m: Message) => void;
  onDelete: (m: Message) => void;
}) {
  const [picker, setPicker] = useState(false);
  const me = client.user?.id;
  const deleted = !!m.deletedAt;
  // An end-to-end encrypted message this device cannot read (R18): said so, never an empty bubble; not editable.
  const unreadable = deleted ? undefined : unreadableText(m);
  const name = displayName(client, m.senderId);
  const react = (r: string): void => {
    setPicker(false);
    void client.toggleReaction(m, r).catch(() => undefined);
  };
  const onKey = (e: KeyboardEvent): void => {
    if (e.target !== e.currentTarget) return;
    if (e.key === 'r') onReply(m);
    else if (e.key === 'e' && mine && !deleted && !unreadable) onEdit(m);
    else if (e.key === 'Delete' && mine && !deleted) onDelete(m);
    else if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      const sib = (e.key === 'ArrowDown' ? nextMsg : prevMsg)(e.currentTarget as HTMLElement);
      sib?.focus();
      e.preventDefault();
    } else return;
  };
  return (
    <div
      class={`msg ${mine ? 'mine' : 'theirs'} ${first ? 'first' : ''} ${deleted ? 'deleted' : ''} ${flash ? 'flash' : ''}`}
      data-flash={flash ? 'true' : undefined}
      tabIndex={0}
      data-seq={m.seq}
      data-message-id={m.id}
      aria-label={`${mine ? 'You' : name}, ${timeOf(m.createdAt)}`}
      onKeyDown={onKey}
    >
      {!mine && showName && first && <div class="msg-name" style={{ color: colorFor(m.senderId) }}>{name}</div>}
      <div class="bubble">
        {m.replyTo && !deleted && <ReplyQuote client={client} conv={conv} id={m.replyTo} />}
        {!deleted && m.attachments && m.attachments.length > 0 && <AttachmentList client={client} attachments={m.attachments} />}
        {deleted ? (
          <p class="body muted">This message was deleted</p>
        ) : unreadable ? (
          <p class="body muted unreadable" data-testid="unreadable">
            <Lock size={12} /> {unreadable}
          </p>
        ) : (
          m.body && <p class="body">{m.body}</p>
        )}
        <span class="meta">
          {m.editedAt && !deleted && <span class="edited">edited</span>}
          <time dateTime={new Date(m.createdAt).toISOString()}>{timeOf(m.createdAt)}</time>
          {mine && !deleted && <Ticks state={client.tick(m)} />}
        </span>
      </div>
      {m.reactions && Object.keys(m.reactions).length > 0 && (
        <div class="reactions">
          {Object.entries(m.reactions).map(([r, users]) => (
            <button
              key={r}
              class={`reaction ${me && users.includes(me) ? 'mine' : ''}`}
              aria-pressed={!!me && users.includes(me)}
              aria-label={`${r} ${users.length}: ${users.map((u) => displayName(client, u)).join(', ')}`}
              title={users.map((u) => displayName(client, u)).join(', ')}
              onClick={() => react(r)}
            >
              <span>{r}</span> <span class="count">{users.length}</span>
            </button>
          ))}
        </div>
      )}
      {!deleted && (
        <div class="msg-actions" role="toolbar" aria-label="Message actions">
          <button class="icon-btn small" aria-label="React" aria-expanded={picker} onClick={() => setPicker(!picker)}>
            <Smile size={16} />
          </button>
          <button class="icon-btn small" aria-label="Reply" onClick={() => onReply(m)}>
            <Reply size={16} />
          </button>
          {mine && !unreadable && (
            <button class="icon-btn small" aria-label="Edit" onClick={() => onEdit(m)}>
              <Pencil size={16} />
            </button>
          )}
          {mine && (
            <button class="icon-btn small" aria-label="Delete" onClick={() => onDelete(m)}>
              <Trash size={16} />
            </button>
          )}
          {picker && (
            <div class="picker" role="menu" aria-label="Pick a reaction">
              {QUICK_REACTIONS.map((r) => (
                <button key={r} role="menuitem" class="picker-item" aria-label={`React with ${r}`} onClick={() => react(r)}>
                  {r}
                </button>
              ))}
            </div>
          )}
        </div>
      )}
    </div>
  );
}

function nextMsg(el: HTMLElement): HTMLElement | null {
  let n = el.nextElementSibling;
  while (n && !n.classList.contains('msg')) n = n.nextElementSibling;
  return n as HTMLElement | null;
}
function prevMsg(el: HTMLElement): HTMLElement | null {
  let n = el.previousElementSibling;
  while (n && !n.classList.contains('msg')) n = n.previousElementSibling;
  return n as HTMLElement | null;
}

function QueuedRow({ client, item, first, conv }: { client: ParleyClient; item: OutboxItem; first: boolean; conv: ConversationState }) {
  return (
    <div class={`msg mine queued ${first ? 'first' : ''} ${item.state === 'failed' ? 'failed' : ''}`} data-client-id={item.clientId} data-outbox={item.state}>
      <div class="bubble">
        {item.replyTo && <ReplyQuote client={client} conv={conv} id={item.replyTo} />}
        {item.attachments && item.attachments.length > 0 && <AttachmentList client={client} attachments={item.attachments} />}
        {item.body && <p class="body">{item.body}</p>}
        <span class="meta">
          <span class="queued-label">{item.state === 'failed' ? 'Not sent' : client.state === 'online' ? 'Sending…' : 'Queued'}</span>
          <time dateTime={new Date(item.createdAt).toISOString()}>{timeOf(item.createdAt)}</time>
          <Ticks state={item.state} />
        </span>
      </div>
      {item.state === 'failed' && (
        <div class="failed-row">
          <span>{item.error || 'The server refused this message.'}</span>
          <button class="link" onClick={() => void client.retry(item.clientId)}>
            Retry
          </button>
          <button class="link" onClick={() => void client.discard(item.clientId)}>
            Discard
          </button>
        </div>
      )}
    </div>
  );
}

function Composer({
  client,
  conv,
  inputRef,
  tray,
  text,
  setText,
  replyTo,
  editing,
  onCancel,
  onEditLast,
  onError,
}: {
  client: ParleyClient;
  conv: ConversationState;
  inputRef: { current: HTMLTextAreaElement | null };
  tray: UploadTray;
  text: string;
  setText: (text: string) => void;
  replyTo: Message | undefined;
  editing: Message | undefined;
  onCancel: () => void;
  onEditLast: () => void;
  onError: (text: string) => void;
}) {
  useEffect(() => {
    inputRef.current?.focus();
  }, [conv.id, inputRef]);
  useLayoutEffect(() => {
    const el = inputRef.current;
    if (!el) return;
    el.style.height = 'auto';
    el.style.height = `${Math.min(el.scrollHeight, 160)}px`;
  }, [text, inputRef]);

  const tooLong = text.length > MAX_BODY;
  const fileInput = useRef<HTMLInputElement>(null);
  const files = editing ? [] : tray.ready;
  // A message waits for its uploads; one with files needs no text.
  const canSend = !tooLong && (editing ? !!text.trim() : !tray.uploading && (!!text.trim() || files.length > 0));
  const submit = async (): Promise<void> => {
    const body = text.trim();
    if (!canSend) return;
    if (editing) {
      // Ending the edit puts back the draft that was there before it.
      onCancel();
      if (body === editing.body) return;
      try {
        await client.edit(editing.id, body);
      } catch (e) {
        onError(errorText(e, 'Could not edit the message.'));
      }
      return;
    }
    setText('');
    drafts.delete(conv.id);
    const reply = replyTo?.id;
    onCancel();
    tray.clear();
    await client.send(conv.id, body, { ...(reply ? { replyTo: reply } : {}), ...(files.length ? { attachments: files } : {}) });
  };

  const onKey = (e: KeyboardEvent): void => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      void submit();
    } else if (e.key === 'Escape' && (replyTo || editing)) {
      e.preventDefault();
      onCancel();
    } else if (e.key === 'ArrowUp' && !text) {
      e.preventDefault();
      onEditLast();
    }
  };

  return (
    <form
      class="composer"
      onSubmit={(e) => {
        e.preventDefault();
        void submit();
      }}
    >
      {(replyTo || editing) && (
        <div class="composer-context">
          <div class="quote">
            <strong>{editing ? 'Editing message' : `Replying to ${displayName(client, (replyTo as Message).senderId)}`}</strong>
            <span>{(editing ?? replyTo)?.body}</span>
          </div>
          <button
            type="button"
            class="icon-btn small"
            aria-label={editing ? 'Cancel editing' : 'Cancel reply'}
            onClick={onCancel}
          >
            <Close size={16} />
          </button>
        </div>
      )}
      {!editing && <TrayView tray={tray} />}
      <div class="composer-row">
        <input
          ref={fileInput}
          type="file"
          multiple
          hidden
          data-testid="file-input"
          onChange={(e) => {
            const picked = [...(e.currentTarget.files ?? [])];
            e.currentTarget.value = '';
            if (picked.length) void tray.add(picked);
          }}
        />
        <button type="button" class="icon-btn attach-btn" aria-label="Attach files" title="Attach files" disabled={!!editing} onClick={() => fileInput.current?.click()}>
          <Paperclip />
        </button>
        <textarea
          ref={inputRef}
          rows={1}
          placeholder={`Write ${conv.conversation.encrypted ? 'an encrypted' : 'a'} message${client.state === 'online' ? '' : ' (it will be sent when you are back online)'}`}
          aria-label="Message"
          value={text}
          onInput={(e) => {
            const v = e.currentTarget.value;
            setText(v);
            // The text of an edit is not a draft: the draft waits for the edit to end.
            if (!editing) {
              drafts.set(conv.id, v);
              if (v) client.typing(conv.id);
            }
          }}
          onKeyDown={onKey}
          onPaste={(e) => {
            const pasted = [...(e.clipboardData?.files ?? [])];
            if (pasted.length === 0 || editing) return;
            e.preventDefault();
            void tray.add(pasted);
          }}
          onBlur={() => client.stopTyping(conv.id)}
        />
        <button
          class="send-btn"
          type="submit"
          aria-label={editing ? 'Save edit' : 'Send'}
          title={!editing && tray.uploading ? 'Waiting for the files to upload' : undefined}
          disabled={!canSend}
        >
          {editing ? <Check /> : <Send />}
        </button>
      </div>
      {text.length > MAX_BODY - 500 && (
        <div class={`counter ${tooLong ? 'over' : ''}`} aria-live="polite">
          {text.length} / {MAX_BODY}
        </div>
      )}
    </form>
  );
}

const drafts = new Map<Id, string>();

/** Forgets every conversation's draft (on sign-out). */
export function clearDrafts(): void {
  drafts.clear();
}
