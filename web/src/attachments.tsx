/**
 * Attachments in the web app (R14): what a message carries (image
 * thumbnails that open the full image, file chips that download), and the
 * composer's tray of files being uploaded. Every file is fetched through the
 * SDK with the access token in a header and shown from an object URL: the
 * token never goes into a URL, where it would end up in logs and history.
 *
 * In an end-to-end encrypted conversation (R18) the SDK encrypts a file
 * before it is uploaded and decrypts it when it is fetched (checking it is the
 * file the message names); the server has no thumbnail, so an image is shown
 * from the whole decrypted file.
 */
import { useEffect, useState } from 'preact/hooks';
import type { Attachment, AttachmentLimits, Id, ParleyClient, UploadedAttachment } from '../../src/client/index.js';
import { ParleyError, TypePolicy } from '../../src/client/index.js';
import { Dialog } from './dialogs.js';
import { Close, Download, FileIcon } from './icons.js';
import { errorText } from './util.js';

/** 1536 → "1.5 KB". */
export function sizeText(n: number): string {
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${+(n / 1024).toFixed(1)} KB`;
  if (n < 1024 * 1024 * 1024) return `${+(n / (1024 * 1024)).toFixed(1)} MB`;
  return `${+(n / (1024 * 1024 * 1024)).toFixed(1)} GB`;
}

/** Image formats a browser shows in an <img> from an encrypted file (no script runs there; SVG is left a download all the same). */
const SHOWN_DECRYPTED = new Set(['image/png', 'image/jpeg', 'image/gif', 'image/webp', 'image/avif']);

/** Images the app shows in place: the server made a thumbnail, or the SDK decrypts one of a format shown as is. */
const isImage = (a: Attachment): boolean => !!a.thumbnail || (!!a.e2e && SHOWN_DECRYPTED.has(a.type));

/** The box an image is shown in before it loads: its thumbnail's, else its own fitted in 320×320. */
function thumbBox(a: Attachment): { width: number; height: number } {
  if (a.thumbnail) return a.thumbnail;
  if (!a.width || !a.height) return { width: 320, height: 240 };
  const scale = Math.min(1, 320 / Math.max(a.width, a.height));
  return { width: Math.max(1, Math.round(a.width * scale)), height: Math.max(1, Math.round(a.height * scale)) };
}

/** What a message with files and no text says in a list or a quote: "Photo", "3 files", "report.pdf". */
export function attachmentSummary(list: Attachment[] | undefined): string {
  if (!list?.length) return '';
  if (list.length === 1) return isImage(list[0] as Attachment) ? 'Photo' : (list[0] as Attachment).name;
  return list.every(isImage) ? `${list.length} photos` : `${list.length} files`;
}

// ---------------------------------------------------------------- object URLs

/** Fetched files by `id` or `id|thumb`, shared by every component that shows them; the oldest go past MAX_URLS. */
const urls = new Map<string, Promise<string>>();
const MAX_URLS = 300;

function blobUrl(client: ParleyClient, a: Attachment, thumbnail: boolean): Promise<string> {
  // An encrypted image has no thumbnail on the server: its one decrypted file serves both.
  const thumb = thumbnail && !a.e2e;
  const key = thumb ? `${a.id}|thumb` : a.id;
  let p = urls.get(key);
  if (!p) {
    p = (thumb ? client.fetchAttachment(a.id, { thumbnail: true }) : client.openAttachment(a)).then((b) => URL.createObjectURL(b));
    // A failure is not kept: the next render asks again (after a reconnect, say).
    p.catch(() => urls.delete(key));
    urls.set(key, p);
    if (urls.size > MAX_URLS) {
      const [oldKey, old] = urls.entries().next().value as [string, Promise<string>];
      urls.delete(oldKey);
      void old.then((u) => URL.revokeObjectURL(u), () => undefined);
    }
  }
  return p;
}

function useBlobUrl(client: ParleyClient, a: Attachment, thumbnail: boolean): { url: string | undefined; error: string } {
  const [state, setState] = useState<{ url: string | undefined; error: string }>({ url: undefined, error: '' });
  useEffect(() => {
    let live = true;
    setState({ url: undefined, error: '' });
    blobUrl(client, a, thumbnail).then(
      (url) => live && setState({ url, error: '' }),
      (e: unknown) => live && setState({ url: undefined, error: errorText(e, 'Could not load this file.') }),
    );
    return () => {
      live = false;
    };
    // Not `a` itself: the object is new with every render of its message, its id and key name the same file.
  }, [client, a.id, a.e2e?.key, thumbnail]);
  return state;
}

async function download(client: ParleyClient, a: Attachment): Promise<void> {
  // Decrypted and checked first when the file is encrypted.
  const url = URL.createObjectURL(await client.openAttachment(a));
  const link = document.createElement('a');
  link.href = url;
  link.download = a.name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}

// ---------------------------------------------------------------- in a message

export function AttachmentList({ client, attachments }: { client: ParleyClient; attachments: Attachment[] }) {
  const [open, setOpen] = useState<Attachment | undefined>();
  const images = attachments.filter(isImage);
  const files = attachments.filter((a) => !isImage(a));
  return (
    <div class="attachments">
      {images.length > 0 && (
        <div class={`att-images n${Math.min(images.length, 3)}`}>
          {images.map((a) => (
            <Thumb key={a.id} client={client} a={a} onOpen={() => setOpen(a)} />
          ))}
        </div>
      )}
      {files.map((a) => (
        <FileChip key={a.id} client={client} a={a} />
      ))}
      {open && <ImageViewer client={client} a={open} onClose={() => setOpen(undefined)} />}
    </div>
  );
}

function Thumb({ client, a, onOpen }: { client: ParleyClient; a: Attachment; onOpen: () => void }) {
  const { url, error } = useBlobUrl(client, a, true);
  const t = thumbBox(a);
  return (
    <button type="button" class="att-thumb" aria-label={`Open image ${a.name}`} title={a.name} onClick={onOpen} style={{ aspectRatio: `${t.width} / ${t.height}` }}>
      {url ? <img src={url} alt={a.name} width={t.width} height={t.height} data-testid="att-thumb" /> : <span class="att-thumb-wait">{error || 'Loading…'}</span>}
    </button>
  );
}

function ImageViewer({ client, a, onClose }: { client: ParleyClient; a: Attachment; onClose: () => void }) {
  const { url, error } = useBlobUrl(client, a, false);
  const [busy, setBusy] = useState(false);
  return (
    <Dialog title={a.name} onClose={onClose}>
      <div class="viewer">
        {url ? <img src={url} alt={a.name} data-testid="att-full" /> : <p class="muted">{error || 'Loading the image…'}</p>}
      </div>
      <div class="dialog-actions">
        <span class="muted">
          {a.width && a.height ? `${a.width} × ${a.height}, ` : ''}
          {sizeText(a.size)}
        </span>
        <button
          class="btn"
          disabled={busy}
          onClick={() => {
            setBusy(true);
            void download(client, a).finally(() => setBusy(false));
          }}
        >
          <Download size={16} /> Download
        </button>
      </div>
    </Dialog>
  );
}

function FileChip({ client, a }: { client: ParleyClient; a: Attachment }) {
  const [state, setState] = useState<'idle' | 'busy' | string>('idle');
  return (
    <div class="att-file" data-testid="att-file">
      <FileIcon size={22} />
      <span class="att-file-text">
        <span class="att-name">{a.name}</span>
        <span class="att-size">{state !== 'idle' && state !== 'busy' ? state : sizeText(a.size)}</span>
      </span>
      <button
        type="button"
        class="icon-btn small"
        aria-label={`Download ${a.name}`}
        title={`Download ${a.name}`}
        disabled={state === 'busy'}
        onClick={() => {
          setState('busy');
          download(client, a).then(
            () => setState('idle'),
            (e: unknown) => setState(errorText(e, 'Could not download the file.')),
          );
        }}
      >
        <Download size={18} />
      </button>
    </div>
  );
}

// ---------------------------------------------------------------- the composer's tray

export interface PendingFile {
  key: string;
  name: string;
  size: number;
  state: 'uploading' | 'done' | 'failed';
  /** 0–1 while uploading. */
  progress: number;
  error?: string;
  attachment?: UploadedAttachment;
}

let keys = 0;

/**
 * The files picked for the next message of one conversation: each is checked
 * against the server's limits, then uploaded at once, so the message can go
 * as soon as the text is written. Kept per conversation across switches.
 */
export class UploadTray {
  files: PendingFile[] = [];
  private listeners = new Set<() => void>();

  constructor(
    private readonly client: ParleyClient,
    /** The SDK encrypts a file for an end-to-end encrypted conversation before it goes. */
    private readonly conversationId: Id,
  ) {}

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  private changed(): void {
    this.files = [...this.files];
    for (const fn of this.listeners) fn();
  }

  private patch(key: string, p: Partial<PendingFile>): void {
    const i = this.files.findIndex((f) => f.key === key);
    if (i < 0) return;
    this.files[i] = { ...(this.files[i] as PendingFile), ...p };
    this.changed();
  }

  get uploading(): boolean {
    return this.files.some((f) => f.state === 'uploading');
  }

  get ready(): UploadedAttachment[] {
    return this.files.flatMap((f) => (f.state === 'done' && f.attachment ? [f.attachment] : []));
  }

  remove(key: string): void {
    this.files = this.files.filter((f) => f.key !== key);
    this.changed();
  }

  clear(): void {
    this.files = [];
    this.changed();
  }

  async add(picked: File[]): Promise<void> {
    let limits: AttachmentLimits | undefined;
    try {
      limits = await this.client.attachmentLimits();
    } catch {
      // Unknown limits: the server still checks, and says why in its answer.
    }
    const policy = limits && new TypePolicy(limits.types.join(','));
    for (const file of picked) {
      const f: PendingFile = { key: `f${++keys}`, name: file.name || 'file', size: file.size, state: 'uploading', progress: 0 };
      const refusal = this.refusal(file, limits, policy);
      if (refusal) {
        this.files.push({ ...f, state: 'failed', error: refusal });
        this.changed();
        continue;
      }
      this.files.push(f);
      this.changed();
      void this.client
        .upload(file, { conversationId: this.conversationId, name: file.name, onProgress: (sent, total) => this.patch(f.key, { progress: total ? sent / total : 0 }) })
        .then(
          (attachment) => this.patch(f.key, { state: 'done', progress: 1, attachment }),
          (e: unknown) => this.patch(f.key, { state: 'failed', error: uploadError(e) }),
        );
    }
  }

  /** Why the server would refuse this file, said before sending it; undefined when it may go. */
  private refusal(file: File, limits: AttachmentLimits | undefined, policy: TypePolicy | undefined): string | undefined {
    if (file.size === 0) return `${file.name} is empty.`;
    if (!limits || !policy) return undefined;
    if (this.files.filter((f) => f.state !== 'failed').length >= limits.maxPerMessage) return `A message can carry at most ${limits.maxPerMessage} files.`;
    if (file.size > limits.maxBytes) return `${file.name} is ${sizeText(file.size)}; files can be at most ${sizeText(limits.maxBytes)}.`;
    const type = file.type || 'application/octet-stream';
    if (!policy.allows(type)) return `${file.name} is a kind of file that cannot be sent here${file.type ? ` (${file.type})` : ''}.`;
    return undefined;
  }
}

function uploadError(e: unknown): string {
  if (e instanceof ParleyError && (e.code === 'network' || e.code === 'timeout')) return 'The upload failed: the server could not be reached. Remove it and try again.';
  return errorText(e, 'The upload failed.');
}

const trays = new Map<Id, UploadTray>();

/** The tray of a conversation, made on first use; re-renders on its changes. */
export function useTray(client: ParleyClient, conversationId: Id): UploadTray {
  let tray = trays.get(conversationId);
  if (!tray) {
    tray = new UploadTray(client, conversationId);
    trays.set(conversationId, tray);
  }
  const [, setTick] = useState(0);
  useEffect(() => tray.subscribe(() => setTick((n) => n + 1)), [tray]);
  return tray;
}

export function TrayView({ tray }: { tray: UploadTray }) {
  if (tray.files.length === 0) return null;
  return (
    <ul class="tray" aria-label="Files to send">
      {tray.files.map((f) => (
        <li key={f.key} class={`tray-item ${f.state}`} data-testid="tray-item" data-state={f.state}>
          <FileIcon size={18} />
          <span class="att-file-text">
            <span class="att-name">{f.name}</span>
            <span class={f.state === 'failed' ? 'tray-error' : 'att-size'} role={f.state === 'failed' ? 'alert' : undefined}>
              {f.state === 'failed' ? f.error : f.state === 'uploading' ? `Uploading… ${Math.round(f.progress * 100)}%` : sizeText(f.size)}
            </span>
          </span>
          {f.state === 'uploading' && <progress max={1} value={f.progress} aria-label={`Uploading ${f.name}`} />}
          <button type="button" class="icon-btn small" aria-label={`Remove ${f.name}`} onClick={() => tray.remove(f.key)}>
            <Close size={14} />
          </button>
        </li>
      ))}
    </ul>
  );
}
