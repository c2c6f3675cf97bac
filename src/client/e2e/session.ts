/**
 * End-to-end encryption for one signed-in device (R18): what the client calls
 * to encrypt a body before it goes and to read what arrives. An app never
 * sees an envelope: a message it gets has its plain text in `body` and
 * `e2e.ok` true, or, when this device cannot read it (it was sent before the
 * device existed, its signature does not verify, it is malformed), an empty
 * body and `e2e.ok` false with the reason. Nothing here throws on a bad
 * message.
 *
 * Attachments (files.ts): a message's files are read from its envelope; the
 * app sees their real name, type and size and the key (`Attachment.e2e`), or,
 * when the message cannot be read, no attachments at all (the server's
 * references say nothing an app could show).
 */
import {
  looksLikeEnvelope,
  parseEnvelope,
  type E2eFailure,
  type E2eStatus,
  type EnvelopeContext,
  type EnvelopeFile,
  type EnvelopeHeader,
  type EnvelopePayload,
} from '../../protocol/e2e.js';
import type { Attachment, Conversation, ConversationEvent, Id, Message } from '../../protocol/model.js';
import type { HttpApi } from '../http.js';
import type { KeyValueStore } from '../storage.js';
import { EnvelopeError, openEnvelope, safetyNumber, sealEnvelope } from './crypto.js';
import { KeyDirectory } from './directory.js';
import { editedAttachments, openedAttachments } from './files.js';
import { DeviceKeyring } from './keyring.js';
import { withTimeout } from '../../shared/timeout.js';

export type E2eApi = Pick<HttpApi, 'putKeys' | 'userKeys' | 'conversationKeys'>;

/** Longest wait for a sender device's keys while reading a message. */
const KEY_LOOKUP_MS = 5000;

export class E2eSession {
  private constructor(
    private readonly api: E2eApi,
    readonly keyring: DeviceKeyring,
    readonly directory: KeyDirectory,
  ) {}

  static async open(api: E2eApi, store: KeyValueStore, userId: Id, deviceId: Id, onKeyChange?: (deviceId: Id, userId: Id) => void): Promise<E2eSession> {
    const keyring = await DeviceKeyring.open(store, userId, deviceId);
    return new E2eSession(api, keyring, new KeyDirectory(api, store, keyring, onKeyChange));
  }

  get deviceId(): Id {
    return this.keyring.deviceId;
  }

  /** Puts this device's public keys in the server's directory, once; true when they are there. */
  async publish(): Promise<boolean> {
    if (this.keyring.isPublished) return true;
    await this.api.putKeys(this.keyring.publicKeys);
    await this.keyring.markPublished();
    return true;
  }

  /**
   * An envelope of `body` for every device of the conversation's members.
   * `refresh` reads the devices from the server again (after the server said
   * the set was not right). `files`: the message's attachments, keys and all.
   */
  async encrypt(conversationId: Id, context: EnvelopeContext, body: string, refresh = false, files: readonly EnvelopeFile[] = []): Promise<string> {
    await this.publish();
    const devices = await this.directory.conversationDevices(conversationId, refresh);
    const recipients = new Map<Id, CryptoKey>();
    await Promise.all(devices.map(async (d) => recipients.set(d.deviceId, await this.directory.wrappingKey(d.deviceId, d.agreementKey))));
    const header: EnvelopeHeader = { conversationId, senderId: this.keyring.userId, senderDevice: this.deviceId, context };
    const payload: EnvelopePayload = files.length > 0 ? { body, files: [...files] } : { body };
    return sealEnvelope(header, payload, recipients, this.keyring.keys.identity.privateKey);
  }

  /** Forgets the devices of a conversation (a member joined or left). */
  membersChanged(conversationId: Id): void {
    this.directory.forget(conversationId);
  }

  /** The plain text of an encrypted body (and its files' entries, unchecked), or why there is none. */
  private async open(conversationId: Id, senderId: Id, context: EnvelopeContext, body: string): Promise<{ body: string; e2e: E2eStatus; files?: unknown }> {
    const fail = (reason: E2eFailure, deviceId?: Id): { body: string; e2e: E2eStatus } => ({ body: '', e2e: { ok: false, reason, ...(deviceId ? { deviceId } : {}) } });
    const parsed = parseEnvelope(body);
    if ('error' in parsed) return fail('malformed');
    const env = parsed.envelope;
    if (!(this.deviceId in env.keys)) return fail('not-for-this-device', env.sd);
    try {
      // Frames wait behind this one (they apply in order): a slow key lookup must not hold them, and the acks
      // among them, past the client's request timeout.
      const sender = await withTimeout(this.directory.device(senderId, env.sd), KEY_LOOKUP_MS);
      if (!sender) return fail('unknown-device', env.sd);
      const header: EnvelopeHeader = { conversationId, senderId, senderDevice: env.sd, context };
      const [identity, kek] = await Promise.all([this.directory.identityKey(env.sd, sender.identityKey), this.directory.wrappingKey(env.sd, sender.agreementKey)]);
      const payload = await openEnvelope(header, env, this.deviceId, identity, kek);
      return { body: payload.body, e2e: { ok: true, deviceId: env.sd }, files: payload.files };
    } catch (err) {
      return fail(err instanceof EnvelopeError ? err.reason : 'failed', env.sd);
    }
  }

  /** A message as the app should see it: decrypted when its body is an envelope, untouched otherwise (deleted: ""). */
  async message(m: Message, encrypted: boolean): Promise<Message> {
    if (!encrypted || m.body === '' || m.e2e) return m;
    // The body a message has now is its latest edit's when it was edited.
    const context: EnvelopeContext = m.editedAt !== undefined ? { kind: 'edit', messageId: m.id } : { kind: 'send', clientId: m.clientId };
    const read = await this.open(m.conversationId, m.senderId, context, m.body);
    const { attachments: refs, ...rest } = m;
    if (!read.e2e.ok) return { ...rest, body: read.body, e2e: read.e2e };
    const files = openedAttachments(read.files, refs);
    if (files === 'mismatch') return { ...rest, body: '', e2e: { ok: false, reason: 'wrong-attachments', ...(read.e2e.deviceId ? { deviceId: read.e2e.deviceId } : {}) } };
    return { ...rest, body: read.body, e2e: read.e2e, ...(files ? { attachments: files satisfies Attachment[] } : {}) };
  }

  async messages(list: readonly Message[], encrypted: boolean): Promise<Message[]> {
    return Promise.all(list.map((m) => this.message(m, encrypted)));
  }

  /** An event as the app should see it: a created or edited message decrypted. */
  async event(e: ConversationEvent, encrypted: boolean): Promise<ConversationEvent> {
    if (!encrypted) return e;
    if (e.kind === 'message.created') return { ...e, message: await this.message(e.message, true) };
    if (e.kind === 'message.edited' && e.body !== '' && !e.e2e) {
      // Files come from the envelope only, never from what the server put on the event.
      const { attachments: _fromServer, ...edit } = e;
      const read = await this.open(e.conversationId, e.actorId, { kind: 'edit', messageId: e.messageId }, e.body);
      if (!read.e2e.ok) return { ...edit, body: read.body, e2e: read.e2e };
      const files = editedAttachments(read.files);
      if (files === 'mismatch') return { ...edit, body: '', e2e: { ok: false, reason: 'wrong-attachments', ...(read.e2e.deviceId ? { deviceId: read.e2e.deviceId } : {}) } };
      return { ...edit, body: read.body, e2e: read.e2e, ...(files ? { attachments: files } : {}) };
    }
    return e;
  }

  /** A conversation object with its preview (lastMessage) decrypted. */
  async conversation(c: Conversation): Promise<Conversation> {
    if (!c.encrypted || !c.lastMessage) return c;
    return { ...c, lastMessage: await this.message(c.lastMessage, true) };
  }

  /**
   * The safety number of this user and `otherUserId` (crypto.ts
   * safetyNumber), over the keys the server lists for both now, checked and
   * pinned like any other: read it aloud, or compare it side by side.
   */
  async safetyNumber(otherUserId: Id): Promise<string> {
    const me = this.keyring.userId;
    const [mine, theirs] = await Promise.all([this.api.userKeys(me), this.api.userKeys(otherUserId)]);
    const own = mine.devices.filter((d) => d.userId === me).map((d) => d.identityKey);
    if (!own.includes(this.keyring.publicKeys.identityKey)) own.push(this.keyring.publicKeys.identityKey);
    const other = theirs.devices.filter((d) => d.userId === otherUserId).map((d) => d.identityKey);
    return safetyNumber({ userId: me, identityKeys: own }, { userId: otherUserId, identityKeys: other });
  }
}

/** Whether a body coming in for `conversation` is to be decrypted: the conversation says so, or, unknown yet, the body looks like it. */
export function isEncryptedBody(conversation: Conversation | undefined, body: string): boolean {
  return conversation ? conversation.encrypted === true : looksLikeEnvelope(body);
}
