/**
 * A test device that does end-to-end encryption with the SDK's own
 * cryptography (src/client/e2e/crypto.ts): real keys, real envelopes, sent
 * through the plain HTTP helpers so the server's checks are what is tested.
 */
import type { DeviceKeys, EnvelopeContext, EnvelopePayload } from '../../src/protocol/e2e.js';
import { generateDeviceKeys, publicDeviceKeys, sealEnvelope, wrappingKey, type DeviceKeyPairs } from '../../src/client/e2e/crypto.js';
import { expectStatus, type Api, type TestUser } from './http.js';

export class E2eDevice {
  private constructor(
    readonly u: TestUser,
    readonly keys: DeviceKeyPairs,
    readonly published: { identityKey: string; agreementKey: string; signature: string },
  ) {}

  static async of(u: TestUser): Promise<E2eDevice> {
    const keys = await generateDeviceKeys(false);
    return new E2eDevice(u, keys, await publicDeviceKeys(keys, u.id, u.deviceId));
  }

  /** Publishes this device's keys; asserts 201. */
  async publish(api: Api): Promise<void> {
    const res = await api.req('PUT', '/v1/keys', { token: this.u.token, json: this.published });
    expectStatus(res, 201, 'publish keys');
  }

  /** The keys the server lists for the conversation's members. */
  static async conversationKeys(api: Api, u: TestUser, conversationId: string): Promise<DeviceKeys[]> {
    const res = await api.req<{ devices: DeviceKeys[] }>('GET', `/v1/conversations/${conversationId}/keys`, { token: u.token });
    expectStatus(res, 200, 'conversation keys');
    return res.body.devices;
  }

  /** An envelope of `text` (or a whole payload, files and all) from this device for exactly `to` (device keys as the server lists them). */
  async seal(conversationId: string, context: EnvelopeContext, text: string | EnvelopePayload, to: readonly DeviceKeys[]): Promise<string> {
    const recipients = new Map<string, CryptoKey>();
    for (const d of to) recipients.set(d.deviceId, await wrappingKey(this.keys.agreement.privateKey, this.u.deviceId, d.agreementKey, d.deviceId));
    return sealEnvelope({ conversationId, senderId: this.u.id, senderDevice: this.u.deviceId, context }, typeof text === 'string' ? { body: text } : text, recipients, this.keys.identity.privateKey);
  }
}
