/**
 * This device's own key pairs for end-to-end encryption (R18): made once per
 * device (a sign-in is a new device, with new keys), kept in the SDK's store
 * under the signed-in user, and published to the server's key directory.
 *
 * Where the store keeps values by structured clone (IndexedDB), the private
 * keys are stored as non-extractable CryptoKeys: script on the page can use
 * them but never read them out. Elsewhere (Node's JSON file, memory) they are
 * extractable and kept as JWK, as readable as the file is.
 */
import type { Id } from '../../protocol/model.js';
import type { Json, KeyValueStore } from '../storage.js';
import { exportDeviceKeys, generateDeviceKeys, importDeviceKeys, publicDeviceKeys, type DeviceKeyPairs, type DeviceKeysJwk } from './crypto.js';

const KEY = 'e2e/device';

/** What is stored under KEY. */
interface StoredDevice {
  deviceId: Id;
  /** CryptoKeyPairs (structured clone) or JWK. */
  keys: DeviceKeyPairs | DeviceKeysJwk;
  format: 'cryptokey' | 'jwk';
  /** The server has these keys (PUT /v1/keys answered). */
  published: boolean;
}

export interface DevicePublicKeys {
  identityKey: string;
  agreementKey: string;
  signature: string;
}

export class DeviceKeyring {
  private constructor(
    private readonly store: KeyValueStore,
    readonly userId: Id,
    readonly deviceId: Id,
    readonly keys: DeviceKeyPairs,
    readonly publicKeys: DevicePublicKeys,
    private published: boolean,
  ) {}

  /** This device's keys from the store, or new ones (stored before this resolves). */
  static async open(store: KeyValueStore, userId: Id, deviceId: Id): Promise<DeviceKeyring> {
    const stored = (await store.get(KEY)) as unknown as StoredDevice | undefined;
    if (stored && stored.deviceId === deviceId) {
      try {
        const keys = stored.format === 'jwk' ? await importDeviceKeys(stored.keys as DeviceKeysJwk) : (stored.keys as DeviceKeyPairs);
        return new DeviceKeyring(store, userId, deviceId, keys, await publicDeviceKeys(keys, userId, deviceId), stored.published);
      } catch {
        // Unreadable (a browser that lost the key material): this device gets new keys below; the server
        // refuses them (a device keeps its keys), and the app is told to sign in again.
      }
    }
    const native = store.holdsCryptoKeys === true;
    const keys = await generateDeviceKeys(!native);
    const record: StoredDevice = { deviceId, keys: native ? keys : await exportDeviceKeys(keys), format: native ? 'cryptokey' : 'jwk', published: false };
    await store.set(KEY, record as unknown as Json);
    return new DeviceKeyring(store, userId, deviceId, keys, await publicDeviceKeys(keys, userId, deviceId), false);
  }

  get isPublished(): boolean {
    return this.published;
  }

  /** Remembers that the server holds these keys, so later starts skip the request. */
  async markPublished(): Promise<void> {
    if (this.published) return;
    this.published = true;
    const stored = (await this.store.get(KEY)) as unknown as StoredDevice | undefined;
    if (stored && stored.deviceId === this.deviceId) await this.store.set(KEY, { ...stored, published: true } as unknown as Json);
  }
}
