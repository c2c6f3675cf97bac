/**
 * What the server checks of a body sent to an end-to-end encrypted
 * conversation (R18). It can read nothing of the message, but it refuses what
 * would hurt the members:
 * - a plain-text body (a client that forgot to encrypt would otherwise leak
 *   it to the server, the database and every backup), or anything else that
 *   is not an envelope of the documented shape (protocol/e2e.ts);
 * - an envelope that claims another sending device than the one sending it;
 * - an envelope whose wrapped keys do not name exactly the devices, not
 *   revoked and with published keys, of the members now: a device left out
 *   could not read the message, a device named that is no longer there (a
 *   member who left, a revoked device) should not get its key. The client
 *   fetches the keys again and re-encrypts (`conflict`);
 * - sizes over the limits: the envelope's length, and a ciphertext longer
 *   than the plain-text limit allows once encoded.
 *
 * This runs only for encrypted conversations: a plain message never gets here.
 * It reads the members' device keys once per encrypted write (one indexed
 * query), which a plain message does not pay.
 */
import type { Id } from '../protocol/model.js';
import { ciphertextBytes, looksLikeEnvelope, MAX_FILE_ENTRY_BYTES, parseEnvelope, type Envelope } from '../protocol/e2e.js';
import type { Store } from './ports/store.js';
import { badRequest, conflict, tooLarge } from './errors.js';

export interface EnvelopeLimits {
  /** Plain-text characters of a message (maxBodyChars). */
  maxBodyChars: number;
  /** Characters of an envelope. */
  maxEnvelopeChars: number;
}

/**
 * Ciphertext bytes a plain text of `chars` characters may take: the payload
 * is JSON ({"body":…}), in which a character takes at most 6 bytes (a control
 * character written \u00XX), plus the GCM tag and the JSON around it.
 */
export const maxCiphertextBytes = (chars: number): number => chars * 6 + 64;

export class EnvelopeCheck {
  constructor(
    private readonly store: Store,
    private readonly limits: EnvelopeLimits,
  ) {}

  get maxEnvelopeChars(): number {
    return this.limits.maxEnvelopeChars;
  }

  /**
   * Throws the error the client gets when `body` may not be stored in the
   * encrypted conversation. `files`: attachments of the message, whose
   * entries in the payload may make the ciphertext longer.
   */
  async check(conversationId: Id, actorId: Id, deviceId: Id | undefined, body: string, files = 0): Promise<Envelope> {
    if (!looksLikeEnvelope(body)) {
      throw badRequest('This conversation is end-to-end encrypted: send the message encrypted (an envelope starting {"e2e":1,), never plain text.');
    }
    if (body.length > this.limits.maxEnvelopeChars) {
      throw tooLarge(`The encrypted message is longer than ${this.limits.maxEnvelopeChars} characters.`);
    }
    const parsed = parseEnvelope(body);
    if ('error' in parsed) throw badRequest(`The encrypted message is not a valid envelope: ${parsed.error}.`);
    const env = parsed.envelope;
    if (ciphertextBytes(env) > maxCiphertextBytes(this.limits.maxBodyChars) + files * MAX_FILE_ENTRY_BYTES) {
      throw tooLarge(`The encrypted message is longer than ${this.limits.maxBodyChars} characters allow.`);
    }
    if (deviceId !== undefined && env.sd !== deviceId) throw badRequest('The envelope\'s "sd" must be the id of the device sending it.');
    const devices = await this.store.keys.forConversation(conversationId);
    const own = devices.find((d) => d.deviceId === env.sd);
    if (!own || own.userId !== actorId) {
      throw badRequest('This device has published no keys (PUT /v1/keys); it cannot send encrypted messages.');
    }
    const expected = new Set(devices.map((d) => d.deviceId));
    const named = Object.keys(env.keys);
    const missing = [...expected].filter((d) => !(d in env.keys)).length;
    const extra = named.filter((d) => !expected.has(d)).length;
    if (missing > 0 || extra > 0) {
      const parts = [missing > 0 ? `${missing} device(s) of the members are missing` : '', extra > 0 ? `${extra} device(s) named are not in the conversation` : ''];
      throw conflict(`The message is not encrypted for exactly the conversation's devices (${parts.filter(Boolean).join('; ')}); fetch the members' keys again and re-encrypt.`);
    }
    return env;
  }
}
