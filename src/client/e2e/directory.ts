/**
 * Other devices' public keys (R18), as the server's key directory lists them,
 * checked and remembered here:
 * - every listed device must carry its identity key's signature over its keys
 *   for that user and device, or it is left out;
 * - the first keys seen for a device id are pinned (kept in the store): the
 *   server cannot later swap in other keys for a device this client already
 *   trusts. A device whose keys changed is left out and reported;
 * - the devices of a conversation are cached until a member joins or leaves,
 *   the server refuses an envelope for naming the wrong devices (a device was
 *   added or revoked), or an unknown device sends;
 * - wrapping keys (one per pair of devices) and identity keys are derived and
 *   imported once per device and kept in memory.
 */
import type { DeviceKeys } from '../../protocol/e2e.js';
import type { Id } from '../../protocol/model.js';
import type { HttpApi } from '../http.js';
import type { Json, KeyValueStore } from '../storage.js';
import { importIdentityKey, verifyDeviceKeys, wrappingKey } from './crypto.js';
import type { DeviceKeyring } from './keyring.js';

const PINS = 'e2e/pins';
/** A device the server did not list is not asked about again for this long (a burst of its messages, a forgery). */
const MISSING_RETRY_MS = 10_000;

interface Pin {
  userId: Id;
  identityKey: string;
  agreementKey: string;
}

export type KeyDirectoryApi = Pick<HttpApi, 'userKeys' | 'conversationKeys'>;

export class KeyDirectory {
  private pins = new Map<Id, Pin>();
  private pinsLoaded: Promise<void> | undefined;
  private readonly byConversation = new Map<Id, Promise<DeviceKeys[]>>();
  private readonly keks = new Map<Id, Promise<CryptoKey>>();
  private readonly identities = new Map<Id, Promise<CryptoKey>>();
  /** Fetches of a user's devices in flight, so a burst of messages from a new device costs one request. */
  private readonly userFetches = new Map<Id, Promise<void>>();
  /** Devices the server did not list when last asked, and when: not asked about again for a while. */
  private readonly missing = new Map<Id, number>();

  constructor(
    private readonly api: KeyDirectoryApi,
    private readonly store: KeyValueStore,
    private readonly me: DeviceKeyring,
    /** A device's keys differ from those pinned for it: the server, or someone there, swapped them. */
    private readonly onKeyChange: (deviceId: Id, userId: Id) => void = () => undefined,
  ) {}

  private loadPins(): Promise<void> {
    this.pinsLoaded ??= (async () => {
      const raw = (await this.store.get(PINS)) as unknown as Record<Id, Pin> | undefined;
      this.pins = new Map(Object.entries(raw ?? {}));
      const own = { userId: this.me.userId, identityKey: this.me.publicKeys.identityKey, agreementKey: this.me.publicKeys.agreementKey };
      this.pins.set(this.me.deviceId, own);
    })();
    return this.pinsLoaded;
  }

  /** The listed devices whose signature verifies and whose keys match any pin; new ones get pinned. */
  private async accept(list: readonly DeviceKeys[]): Promise<DeviceKeys[]> {
    await this.loadPins();
    const out: DeviceKeys[] = [];
    let changed = false;
    for (const d of list) {
      const pin = this.pins.get(d.deviceId);
      if (pin) {
        if (pin.userId !== d.userId || pin.identityKey !== d.identityKey || pin.agreementKey !== d.agreementKey) {
          this.onKeyChange(d.deviceId, d.userId);
          continue;
        }
      } else {
        if (!(await verifyDeviceKeys(d))) continue;
        this.pins.set(d.deviceId, { userId: d.userId, identityKey: d.identityKey, agreementKey: d.agreementKey });
        changed = true;
      }
      out.push(d);
    }
    if (changed) await this.store.set(PINS, Object.fromEntries(this.pins) as unknown as Json).catch(() => undefined);
    return out;
  }

  /** Every device to encrypt for in a conversation (this one included); fetched again with `refresh`. */
  conversationDevices(conversationId: Id, refresh = false): Promise<DeviceKeys[]> {
    let p = refresh ? undefined : this.byConversation.get(conversationId);
    if (!p) {
      p = this.api.conversationKeys(conversationId).then(({ devices }) => this.accept(devices));
      this.byConversation.set(conversationId, p);
      // A failure is not cached: the next send asks again.
      p.catch(() => {
        if (this.byConversation.get(conversationId) === p) this.byConversation.delete(conversationId);
      });
    }
    return p;
  }

  /** Forgets a conversation's devices (a member joined or left). */
  forget(conversationId: Id): void {
    this.byConversation.delete(conversationId);
  }

  /**
   * The pinned keys of a device of `userId`, asking the server for that
   * user's devices when it is not known yet (a device that joined after the
   * conversation's devices were read). Undefined when it is not one of theirs.
   */
  async device(userId: Id, deviceId: Id): Promise<Pin | undefined> {
    await this.loadPins();
    let pin = this.pins.get(deviceId);
    if (!pin && Date.now() - (this.missing.get(deviceId) ?? -Infinity) > MISSING_RETRY_MS) {
      let fetching = this.userFetches.get(userId);
      if (!fetching) {
        fetching = this.api.userKeys(userId).then(async ({ devices }) => void (await this.accept(devices)));
        this.userFetches.set(userId, fetching);
        void fetching.catch(() => undefined).then(() => this.userFetches.delete(userId));
      }
      await fetching;
      pin = this.pins.get(deviceId);
      if (!pin) this.missing.set(deviceId, Date.now());
    }
    return pin && pin.userId === userId ? pin : undefined;
  }

  /** The key this device shares with `deviceId` to wrap message keys. */
  wrappingKey(deviceId: Id, agreementKey: string): Promise<CryptoKey> {
    let k = this.keks.get(deviceId);
    if (!k) {
      k = wrappingKey(this.me.keys.agreement.privateKey, this.me.deviceId, agreementKey, deviceId);
      this.keks.set(deviceId, k);
      k.catch(() => this.keks.delete(deviceId));
    }
    return k;
  }

  identityKey(deviceId: Id, identityKey: string): Promise<CryptoKey> {
    let k = this.identities.get(deviceId);
    if (!k) {
      k = importIdentityKey(identityKey);
      this.identities.set(deviceId, k);
      k.catch(() => this.identities.delete(deviceId));
    }
    return k;
  }
}
