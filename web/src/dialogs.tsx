import type { ComponentChildren } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { ConversationState, Id, ParleyClient, User } from '../../src/client/index.js';
import { Avatar } from './avatar.js';
import { Close, Lock, Search } from './icons.js';
import { E2E_EXPLAINED, RETENTION_CHOICES, SERVER_DEFAULT, errorText, retentionLabel } from './util.js';

export function Dialog({ title, onClose, children }: { title: string; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const prev = document.activeElement as HTMLElement | null;
    // In a group of radio buttons, the one that is checked (as Tab would reach it).
    const first = ref.current?.querySelector<HTMLElement>('input:not([type="radio"]), input[type="radio"]:checked, button:not(.dialog-close), textarea, select');
    first?.focus();
    return () => prev?.focus();
  }, []);
  const onKey = (e: KeyboardEvent): void => {
    if (e.key === 'Escape') {
      e.stopPropagation();
      onClose();
    } else if (e.key === 'Tab') {
      // Keep focus inside the dialog while it is open.
      const items = [...(ref.current?.querySelectorAll<HTMLElement>('input, button, textarea, select, [tabindex="0"]') ?? [])].filter((x) => !x.hasAttribute('disabled'));
      const first = items[0];
      const last = items[items.length - 1];
      if (e.shiftKey && document.activeElement === first) {
        last?.focus();
        e.preventDefault();
      } else if (!e.shiftKey && document.activeElement === last) {
        first?.focus();
        e.preventDefault();
      }
    }
  };
  return (
    <div class="overlay" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div class="dialog" role="dialog" aria-modal="true" aria-labelledby="dialog-title" ref={ref} onKeyDown={onKey}>
        <header class="dialog-head">
          <h2 id="dialog-title">{title}</h2>
          <button class="icon-btn dialog-close" aria-label="Close" onClick={onClose}>
            <Close />
          </button>
        </header>
        {children}
      </div>
    </div>
  );
}

/** Searches users by username prefix as one types (GET /v1/users?q=). */
function useUserSearch(client: ParleyClient, q: string): { users: User[]; busy: boolean; error: string } {
  const [users, setUsers] = useState<User[]>([]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState('');
  useEffect(() => {
    const query = q.trim().toLowerCase();
    if (!query) {
      setUsers([]);
      return;
    }
    let live = true;
    setBusy(true);
    const t = setTimeout(() => {
      client
        .searchUsers(query)
        .then((u) => {
          if (!live) return;
          setUsers(u.filter((x) => x.id !== client.user?.id));
          setError('');
        })
        .catch((e) => live && setError(errorText(e, 'Search failed. Please try again.')))
        .finally(() => live && setBusy(false));
    }, 150);
    return () => {
      live = false;
      clearTimeout(t);
    };
  }, [client, q]);
  return { users, busy, error };
}

function UserResults({ client, users, onPick, picked }: { client: ParleyClient; users: User[]; onPick: (u: User) => void; picked?: Set<Id> }) {
  return (
    <ul class="user-results" aria-label="People">
      {users.map((u) => (
        <li key={u.id}>
          <button type="button" class={`user-item ${picked?.has(u.id) ? 'picked' : ''}`} onClick={() => onPick(u)} aria-pressed={picked ? picked.has(u.id) : undefined} data-username={u.username}>
            <Avatar client={client} userId={u.id} name={u.displayName || u.username} size={36} showPresence={false} />
            <span class="user-text">
              <strong>{u.displayName || u.username}</strong>
              <span>@{u.username}</span>
            </span>
          </button>
        </li>
      ))}
    </ul>
  );
}

/**
 * The "End-to-end encrypted" choice of a new chat or group (R18), with what it costs said beside
 * it. Disabled where this browser has no WebCrypto (a page served over plain http from another
 * host), with the reason.
 */
function EncryptedChoice({ client, checked, onChange }: { client: ParleyClient; checked: boolean; onChange: (on: boolean) => void }) {
  const available = client.e2eAvailable;
  return (
    <label class="choice e2e-choice">
      <input type="checkbox" checked={checked && available} disabled={!available} onChange={(e) => onChange(e.currentTarget.checked)} data-testid="e2e-choice" />
      <span>
        <Lock size={14} /> End-to-end encrypted
      </span>
      <em>{available ? E2E_EXPLAINED : 'Not available in this browser: it needs a secure (https) page.'}</em>
    </label>
  );
}

export function NewChatDialog({ client, onClose, onOpen }: { client: ParleyClient; onClose: () => void; onOpen: (id: Id) => void }) {
  const [q, setQ] = useState('');
  const { users, busy, error } = useUserSearch(client, q);
  const [err, setErr] = useState('');
  const [encrypted, setEncrypted] = useState(false);
  const pick = async (u: User): Promise<void> => {
    try {
      const c = await client.startDirect(u.id, { encrypted });
      onClose();
      onOpen(c.id);
    } catch (e) {
      setErr(errorText(e, 'Could not start the chat.'));
    }
  };
  return (
    <Dialog title="New chat" onClose={onClose}>
      <label class="field search-field">
        <Search size={16} />
        <input placeholder="Find people by username" aria-label="Username" value={q} onInput={(e) => setQ(e.currentTarget.value)} autoCapitalize="none" spellcheck={false} />
      </label>
      <EncryptedChoice client={client} checked={encrypted} onChange={setEncrypted} />
      <UserResults client={client} users={users} onPick={(u) => void pick(u)} />
      {q.trim() && !busy && users.length === 0 && !error && <p class="hint">Nobody with a username starting with “{q.trim()}”.</p>}
      {(error || err) && (
        <p class="form-error" role="alert">
          {error || err}
        </p>
      )}
    </Dialog>
  );
}

function MemberPicker({ client, picked, setPicked }: { client: ParleyClient; picked: Map<Id, User>; setPicked: (m: Map<Id, User>) => void }) {
  const [q, setQ] = useState('');
  const { users } = useUserSearch(client, q);
  const toggle = (u: User): void => {
    const next = new Map(picked);
    if (next.has(u.id)) next.delete(u.id);
    else next.set(u.id, u);
    setPicked(next);
  };
  return (
    <>
      {picked.size > 0 && (
        <ul class="chips" aria-label="Selected people">
          {[...picked.values()].map((u) => (
            <li key={u.id} class="chip">
              {u.displayName || u.username}
              <button type="button" aria-label={`Remove ${u.displayName || u.username}`} onClick={() => toggle(u)}>
                <Close size={12} />
              </button>
            </li>
          ))}
        </ul>
      )}
      <label class="field search-field">
        <Search size={16} />
        <input placeholder="Add people by username" aria-label="Add people by username" value={q} onInput={(e) => setQ(e.currentTarget.value)} autoCapitalize="none" spellcheck={false} />
      </label>
      <UserResults client={client} users={users} onPick={toggle} picked={new Set(picked.keys())} />
    </>
  );
}

export function NewGroupDialog({ client, onClose, onOpen }: { client: ParleyClient; onClose: () => void; onOpen: (id: Id) => void }) {
  const [title, setTitle] = useState('');
  const [picked, setPicked] = useState(new Map<Id, User>());
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState(false);
  const [encrypted, setEncrypted] = useState(false);
  const create = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (!title.trim()) return;
    setBusy(true);
    try {
      const c = await client.createGroup(title.trim(), [...picked.keys()], { encrypted });
      onClose();
      onOpen(c.id);
    } catch (e2) {
      setErr(errorText(e2, 'Could not create the group.'));
      setBusy(false);
    }
  };
  return (
    <Dialog title="New group" onClose={onClose}>
      <form onSubmit={create} class="stack">
        <label class="field">
          <span>Group name</span>
          <input required maxLength={100} value={title} onInput={(e) => setTitle(e.currentTarget.value)} />
        </label>
        <MemberPicker client={client} picked={picked} setPicked={setPicked} />
        <EncryptedChoice client={client} checked={encrypted} onChange={setEncrypted} />
        {err && (
          <p class="form-error" role="alert">
            {err}
          </p>
        )}
        <button class="btn primary wide" type="submit" disabled={busy || !title.trim()}>
          Create group{picked.size ? ` with ${picked.size} ${picked.size === 1 ? 'person' : 'people'}` : ''}
        </button>
      </form>
    </Dialog>
  );
}

export function AddMembersDialog({ client, conv, onClose }: { client: ParleyClient; conv: ConversationState; onClose: () => void }) {
  const [picked, setPicked] = useState(new Map<Id, User>());
  const [err, setErr] = useState('');
  const existing = new Set(conv.conversation.members.map((m) => m.userId));
  const add = async (e: Event): Promise<void> => {
    e.preventDefault();
    const ids = [...picked.keys()].filter((id) => !existing.has(id));
    if (!ids.length) return;
    try {
      await client.addMembers(conv.id, ids);
      onClose();
    } catch (e2) {
      setErr(errorText(e2, 'Could not add members.'));
    }
  };
  return (
    <Dialog title="Add members" onClose={onClose}>
      <form onSubmit={add} class="stack">
        <MemberPicker client={client} picked={picked} setPicked={setPicked} />
        {err && (
          <p class="form-error" role="alert">
            {err}
          </p>
        )}
        <button class="btn primary wide" type="submit" disabled={picked.size === 0}>
          Add
        </button>
      </form>
    </Dialog>
  );
}

export function ConfirmDialog({ title, text, confirm, onClose, onConfirm }: { title: string; text: string; confirm: string; onClose: () => void; onConfirm: () => void }) {
  return (
    <Dialog title={title} onClose={onClose}>
      <p class="dialog-text">{text}</p>
      <div class="row end">
        <button class="btn" onClick={onClose}>
          Cancel
        </button>
        <button class="btn danger" onClick={onConfirm}>
          {confirm}
        </button>
      </div>
    </Dialog>
  );
}

/**
 * How long a conversation keeps its messages (R8). `current` is the conversation's own policy in
 * days, undefined when the server's default applies. The server does not tell clients its default
 * (forever unless the operator set PARLEY_RETENTION_DAYS), so that choice is called what it is,
 * "Server default", not "Forever". Saving hands the choice to `onSave`; the dialog stays open,
 * busy, until its owner closes it.
 */
export function RetentionDialog({ current, busy, onClose, onSave }: { current: number | undefined; busy: boolean; onClose: () => void; onSave: (days: number | null) => void }) {
  const now = current ?? null;
  const [pick, setPick] = useState<number | null>(now);
  // A policy set elsewhere (e.g. 90 days through the API) is offered too, so the dialog shows it.
  const choices = now === null || RETENTION_CHOICES.includes(now) ? RETENTION_CHOICES : [...RETENTION_CHOICES, now].sort((a, b) => (a ?? 0) - (b ?? 0));
  return (
    <Dialog title="Keep messages" onClose={onClose}>
      <form
        class="stack"
        onSubmit={(e) => {
          e.preventDefault();
          if (!busy && pick !== now) onSave(pick);
        }}
      >
        <p class="dialog-text" id="retention-help">
          Messages older than this are deleted for everyone in this conversation.
        </p>
        <fieldset class="choices" aria-describedby="retention-help" disabled={busy}>
          <legend>Keep messages for</legend>
          {choices.map((d) => (
            <label class="choice" key={d ?? 'default'}>
              <input type="radio" name="retention" value={d ?? 'default'} checked={pick === d} onChange={() => setPick(d)} />
              <span>{d === null ? SERVER_DEFAULT : retentionLabel(d)}</span>
              {d === null && <em>Kept forever unless the server's operator set a default</em>}
            </label>
          ))}
        </fieldset>
        <div class="row end">
          <button type="button" class="btn" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" class="btn primary" disabled={busy || pick === now}>
            {busy ? 'Saving…' : 'Save'}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

/**
 * The safety number of an end-to-end encrypted direct chat (R18): the same 60 digits on both
 * sides unless someone in between swapped keys. Read from the server's key directory when opened.
 */
export function SafetyNumberDialog({ client, userId, name, onClose }: { client: ParleyClient; userId: Id; name: string; onClose: () => void }) {
  const [number, setNumber] = useState<string | undefined>();
  const [err, setErr] = useState('');
  useEffect(() => {
    let live = true;
    client
      .safetyNumber(userId)
      .then((n) => live && setNumber(n))
      .catch((e) => live && setErr(errorText(e, 'Could not read the keys. Please try again.')));
    return () => {
      live = false;
    };
  }, [client, userId]);
  return (
    <Dialog title="End-to-end encrypted" onClose={onClose}>
      <p class="dialog-text">{E2E_EXPLAINED}</p>
      <p class="dialog-text">To check that nobody in between can read along, compare this number with {name}'s, in person or on a call. It changes when either of you signs in on a new device.</p>
      {number ? (
        <p class="safety-number" data-testid="safety-number" aria-label={`Safety number ${number}`}>
          {number}
        </p>
      ) : err ? (
        <p class="form-error" role="alert">
          {err}
        </p>
      ) : (
        <p class="hint">Reading the keys…</p>
      )}
      <div class="row end">
        <button class="btn" onClick={onClose}>
          Close
        </button>
      </div>
    </Dialog>
  );
}
