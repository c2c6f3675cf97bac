import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type { ClientEvents, ConnectionState, ConversationState, Id, ParleyClient, PresenceRequest } from '../../src/client/index.js';
import { NewChatDialog, NewGroupDialog } from './dialogs.js';
import { useClientVersion, useHash } from './hooks.js';
import { Close, Lock, LogOut, Plus, Search, Users, Wifi } from './icons.js';
import { ConversationPane } from './conversation.js';
import { attachmentSummary } from './attachments.js';
import { SearchPanel, type JumpTarget } from './search.js';
import { Avatar } from './avatar.js';
import { NotificationsToggle } from './notifications.js';
import { conversationTitle, displayName, errorText, listTime, messageText, peerOf } from './util.js';

export function ChatScreen({ client }: { client: ParleyClient }) {
  useClientVersion(client);
  const hash = useHash();
  const openId = /^#\/c\/(.+)$/.exec(hash)?.[1];
  const [dialog, setDialog] = useState<'chat' | 'group' | undefined>();
  const open = (id: Id | undefined): void => {
    location.hash = id ? `#/c/${id}` : '';
  };
  const current = openId ? client.conversation(decodeURIComponent(openId)) : undefined;
  // Notices are kept per conversation: a failure belongs to the conversation it happened in, shows
  // in that pane (now, or when one opens it again) until dismissed, and never in another one's.
  const [notices, setNotices] = useState<ReadonlyMap<Id, string>>(() => new Map());
  const notify = useCallback((conversationId: Id, text: string): void => {
    setNotices((prev) => {
      if ((prev.get(conversationId) ?? '') === text) return prev;
      const next = new Map(prev);
      if (text) next.set(conversationId, text);
      else next.delete(conversationId);
      return next;
    });
  }, []);
  // A failure of no conversation (e.g. reading the conversation list), shown above the panes.
  const [appNotice, setAppNotice] = useState('');

  // Message search (R15) takes the sidebar's place while open; Ctrl/Cmd+K, or "/" outside a text
  // field, opens it. A result opens its conversation there and brings the message into view.
  const [searching, setSearching] = useState(false);
  const searchInput = useRef<HTMLInputElement>(null);
  const searchButton = useRef<HTMLButtonElement>(null);
  const [jump, setJump] = useState<JumpTarget | undefined>();
  const openSearch = useCallback((): void => {
    setSearching(true);
    // The input exists after the render this causes.
    requestAnimationFrame(() => {
      searchInput.current?.focus();
      searchInput.current?.select();
    });
  }, []);
  const closeSearch = (): void => {
    setSearching(false);
    requestAnimationFrame(() => searchButton.current?.focus());
  };
  useEffect(() => {
    const onKey = (e: KeyboardEvent): void => {
      const t = e.target as HTMLElement | null;
      const typing = !!t && (t.isContentEditable || t.tagName === 'INPUT' || t.tagName === 'TEXTAREA' || t.tagName === 'SELECT');
      if ((e.key === 'k' || e.key === 'K') && (e.ctrlKey || e.metaKey) && !e.altKey && !e.shiftKey) {
        e.preventDefault();
        openSearch();
      } else if (e.key === '/' && !typing && !e.ctrlKey && !e.metaKey && !e.altKey) {
        e.preventDefault();
        openSearch();
      }
    };
    addEventListener('keydown', onKey);
    return () => removeEventListener('keydown', onKey);
  }, [openSearch]);

  // The SDK's error event does not say which conversation a failure is of. A refused send is its
  // conversation's: it is shown once, on its failed row there (with Retry and Discard; the SDK stores
  // the reason on the outbox item before it emits the error), and the list says "Not sent". An error
  // frame without a ref answers a frame the SDK sent on its own (typing, receipts, presence) about
  // a conversation it does not name: it is nobody's to act on, and showing it in whatever pane is
  // open would pin it on that conversation, so it is not shown. Anything else is the app's.
  useEffect(() => {
    let unasked: ClientEvents['frame'] | undefined;
    const offFrame = client.on('frame', (f) => {
      unasked = f.type === 'error' && f.ref === undefined ? f : undefined;
    });
    const offError = client.on('error', (e) => {
      const frame = unasked;
      unasked = undefined;
      if (frame?.type === 'error' && frame.code === e.code && frame.message === e.message) return;
      if (client.outbox().some((i) => i.state === 'failed' && i.error === e.message)) return;
      setAppNotice(errorText(e, 'Something went wrong. Please try again.'));
    });
    return () => {
      offFrame();
      offError();
    };
  }, [client]);

  // Whom we block (R17), for the Block/Unblock action and the notice in direct chats. Loaded once;
  // a failure (e.g. offline) tries again at the next ready. It is decoration: the server enforces.
  useEffect(() => {
    let loaded = false;
    const load = (): void => {
      if (loaded) return;
      loaded = true;
      client.loadBlocks().catch(() => {
        loaded = false;
      });
    };
    const off = client.on('ready', load);
    load();
    return off;
  }, [client]);

  return (
    <div class={`shell ${current ? 'has-open' : ''}`}>
      <Banner client={client} />
      {appNotice && (
        <div class="notice app-notice" role="alert">
          <span>{appNotice}</span>
          <button class="icon-btn small" aria-label="Dismiss" onClick={() => setAppNotice('')}>
            <Close size={16} />
          </button>
        </div>
      )}
      <div class="panes">
        <Sidebar
          client={client}
          onNotice={setAppNotice}
          openId={current?.id}
          onOpen={open}
          onNew={setDialog}
          search={
            searching ? (
              <SearchPanel
                client={client}
                openId={current?.id}
                inputRef={searchInput}
                onClose={closeSearch}
                onPick={(m) => {
                  setJump({ conversationId: m.conversationId, messageId: m.id, seq: m.seq, nonce: Date.now() + Math.random() });
                  open(m.conversationId);
                }}
              />
            ) : undefined
          }
          onSearch={openSearch}
          searchButton={searchButton}
        />
        <main class="main" aria-label="Conversation">
          {current ? (
            <ConversationPane
              key={current.id}
              client={client}
              conv={current}
              onBack={() => open(undefined)}
              notice={notices.get(current.id) ?? ''}
              onNotice={notify}
              jump={jump?.conversationId === current.id ? jump : undefined}
              onJumped={() => setJump(undefined)}
            />
          ) : (
            <div class="empty-main">
              <Users size={48} />
              <h2>Welcome{client.user ? `, ${client.user.displayName || client.user.username}` : ''}</h2>
              <p>Pick a conversation on the left, or start a new one.</p>
              <div class="row">
                <button class="btn primary" onClick={() => setDialog('chat')}>
                  New chat
                </button>
                <button class="btn" onClick={() => setDialog('group')}>
                  New group
                </button>
              </div>
            </div>
          )}
        </main>
      </div>
      {dialog === 'chat' && <NewChatDialog client={client} onClose={() => setDialog(undefined)} onOpen={open} />}
      {dialog === 'group' && <NewGroupDialog client={client} onClose={() => setDialog(undefined)} onOpen={open} />}
    </div>
  );
}

const BANNER: Record<ConnectionState, string> = {
  online: '',
  connecting: 'Connecting…',
  reconnecting: 'Connection lost. Reconnecting…',
  offline: 'You are offline.',
};

function Banner({ client }: { client: ParleyClient }) {
  const state = client.state;
  const queued = client.outbox().filter((i) => i.state !== 'failed').length;
  // "Back online" shows for a moment after a reconnect, then the banner folds away.
  const [flash, setFlash] = useState(false);
  const prev = useRef(state);
  useEffect(() => {
    if (state === 'online' && prev.current !== 'online' && prev.current !== 'connecting') {
      setFlash(true);
      const t = setTimeout(() => setFlash(false), 2000);
      prev.current = state;
      return () => clearTimeout(t);
    }
    prev.current = state;
    return undefined;
  }, [state]);
  const text = state === 'online' ? (flash ? 'Back online' : '') : BANNER[state];
  return (
    <div class={`banner banner-${state} ${text ? 'show' : ''}`} role="status" aria-live="polite" data-state={state}>
      {text && (
        <>
          <Wifi size={16} />
          <span>{text}</span>
          {state !== 'online' && queued > 0 && (
            <span class="banner-queued">
              {queued} message{queued === 1 ? '' : 's'} will be sent when you are back.
            </span>
          )}
          {state === 'reconnecting' && (
            <button class="link banner-retry" onClick={() => client.reconnectNow()}>
              Retry now
            </button>
          )}
        </>
      )}
    </div>
  );
}

function Sidebar({
  client,
  openId,
  onOpen,
  onNew,
  search,
  onSearch,
  searchButton,
  onNotice,
}: {
  client: ParleyClient;
  openId: Id | undefined;
  onOpen: (id: Id) => void;
  onNew: (d: 'chat' | 'group') => void;
  /** The message search panel, shown instead of the conversation list while open. */
  search: ComponentChildren;
  onSearch: () => void;
  searchButton: { current: HTMLButtonElement | null };
  /** A failure of the sidebar's own actions (turning notifications on), told above the panes. */
  onNotice: (text: string) => void;
}) {
  const [filter, setFilter] = useState('');
  const listRef = useRef<HTMLUListElement>(null);
  const all = client.conversations();
  const list = useMemo(() => {
    const f = filter.trim().toLowerCase();
    return f ? all.filter((c) => conversationTitle(client, c).toLowerCase().includes(f)) : all;
  }, [all, filter, client]);
  const me = client.user;

  // Arrow keys move between conversations, like a listbox.
  const onKey = (e: KeyboardEvent): void => {
    if (e.key !== 'ArrowDown' && e.key !== 'ArrowUp' && e.key !== 'Home' && e.key !== 'End') return;
    const items = [...(listRef.current?.querySelectorAll<HTMLElement>('.conv-item') ?? [])];
    const i = items.indexOf(document.activeElement as HTMLElement);
    const next = e.key === 'Home' ? 0 : e.key === 'End' ? items.length - 1 : e.key === 'ArrowDown' ? Math.min(items.length - 1, i + 1) : Math.max(0, i - 1);
    items[next]?.focus();
    e.preventDefault();
  };

  return (
    <aside class="sidebar" aria-label="Conversations">
      <header class="side-head">
        {me && <Avatar client={client} userId={me.id} name={me.displayName || me.username} size={36} showPresence={false} />}
        <div class="me">
          <strong>{me ? me.displayName || me.username : ''}</strong>
          <StatusPicker client={client} />
        </div>
        <button class="icon-btn" ref={searchButton} aria-label="Search messages" title="Search messages (Ctrl+K)" aria-expanded={!!search} onClick={onSearch}>
          <Search />
        </button>
        <button class="icon-btn" aria-label="New chat" title="New chat" onClick={() => onNew('chat')}>
          <Plus />
        </button>
        <button class="icon-btn" aria-label="New group" title="New group" onClick={() => onNew('group')}>
          <Users />
        </button>
        <NotificationsToggle client={client} onError={onNotice} />
        <button class="icon-btn" aria-label="Sign out" title="Sign out" onClick={() => void client.logout()}>
          <LogOut />
        </button>
      </header>
      {search ?? (
        <div class="side-search">
          <Search size={16} />
          <input type="search" placeholder="Search conversations" aria-label="Search conversations" value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
        </div>
      )}
      {search ? null : list.length === 0 ? (
        <p class="side-empty">{filter ? 'No conversation matches.' : 'No conversations yet. Start one with the + button.'}</p>
      ) : (
        <ul class="conv-list" ref={listRef} onKeyDown={onKey} aria-label="Conversation list">
          {list.map((c) => (
            <ConversationItem key={c.id} client={client} conv={c} active={c.id === openId} onOpen={onOpen} />
          ))}
        </ul>
      )}
    </aside>
  );
}

/** What the sidebar says of oneself while not connected; the same words as the banner. */
const NOT_CONNECTED: Record<Exclude<ConnectionState, 'online'>, string> = {
  connecting: 'Connecting…',
  reconnecting: 'Reconnecting…',
  offline: 'Offline',
};

/**
 * One's own status. While connected, a picker of what others see (online, away, busy, invisible).
 * While not, nobody sees any of that, so the sidebar says so instead of "Online", in step with the
 * banner; the choice is kept (the SDK sends it again on reconnecting) and the picker comes back.
 */
function StatusPicker({ client }: { client: ParleyClient }) {
  const [status, setStatus] = useState<PresenceRequest>(client.status);
  const state = client.state;
  if (state !== 'online') {
    return (
      <span class="status-select status-conn" data-state={state} data-testid="my-status" title="Others see your status again once you are connected">
        {NOT_CONNECTED[state]}
      </span>
    );
  }
  return (
    <select
      class={`status-select status-${status}`}
      aria-label="Your status"
      data-testid="my-status"
      value={status}
      onChange={(e) => {
        const s = e.currentTarget.value as PresenceRequest;
        setStatus(s);
        client.setStatus(s);
      }}
    >
      <option value="online">● Online</option>
      <option value="away">● Away</option>
      <option value="busy">● Busy</option>
      <option value="invisible">○ Invisible</option>
    </select>
  );
}

function ConversationItem({ client, conv, active, onOpen }: { client: ParleyClient; conv: ConversationState; active: boolean; onOpen: (id: Id) => void }) {
  const title = conversationTitle(client, conv);
  const peer = peerOf(client, conv);
  const last = conv.lastMessage();
  // The newest unsent message: waiting to go (queued or in flight), or refused by the server ('failed', kept until retried or discarded).
  const pending = client.outbox(conv.id).at(-1);
  const typing = client.typingUsers(conv.id);
  const me = client.user?.id;
  let preview: string;
  if (typing.length) preview = conv.conversation.kind === 'group' ? `${displayName(client, typing[0] as Id)} is typing…` : 'typing…';
  else if (pending) preview = `${pending.state === 'failed' ? 'Not sent' : 'Queued'}: ${pending.body || attachmentSummary(pending.attachments)}`;
  else if (last) {
    const who = last.senderId === me ? 'You: ' : conv.conversation.kind === 'group' ? `${displayName(client, last.senderId)}: ` : '';
    preview = who + (messageText(last) || attachmentSummary(last.attachments));
  } else preview = conv.conversation.kind === 'group' ? `${conv.conversation.members.length} members` : 'No messages yet';
  const when = last?.createdAt ?? conv.conversation.updatedAt;
  const unread = conv.unread;
  return (
    <li>
      <button
        class={`conv-item ${active ? 'active' : ''} ${unread ? 'unread' : ''}`}
        aria-current={active ? 'true' : undefined}
        aria-label={`${title}${conv.conversation.encrypted ? ', end-to-end encrypted' : ''}${unread ? `, ${unread} unread` : ''}`}
        onClick={() => onOpen(conv.id)}
        data-conversation={conv.id}
      >
        {conv.conversation.kind === 'group' ? (
          <Avatar client={client} userId={conv.id} name={title} group />
        ) : (
          <Avatar client={client} userId={peer ?? conv.id} name={title} showPresence={peer !== me} />
        )}
        <span class="conv-text">
          <span class="conv-top">
            <span class="conv-title">
              {conv.conversation.encrypted && (
                <span class="e2e-mark" title="End-to-end encrypted" aria-label="End-to-end encrypted" role="img" data-testid="e2e-mark">
                  <Lock size={12} />
                </span>
              )}
              {title}
            </span>
            <span class="conv-time">{listTime(when)}</span>
          </span>
          <span class="conv-bottom">
            <span class={`conv-preview ${typing.length ? 'typing' : ''}`}>{preview}</span>
            {unread > 0 && (
              <span class="badge" aria-hidden="true">
                {unread > 99 ? '99+' : unread}
              </span>
            )}
          </span>
        </span>
      </button>
    </li>
  );
}
