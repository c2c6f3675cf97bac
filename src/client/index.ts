/** The Parley client SDK (browser-safe entry; Node adds `ws` and a file store in node.ts). */
export { ParleyClient } from './client.js';
export type { ClientEvents, ClientOptions, ConnectionState, PresenceEntry, TypingEntry } from './client.js';
export { ConversationState } from './cache.js';
export type { IngestResult, MemberReceipts, PersistedConversation } from './cache.js';
export { Emitter } from './emitter.js';
export type { Listener } from './emitter.js';
export { ParleyError } from './errors.js';
export { HttpApi } from './http.js';
export type { AttachmentFetch, AuthResult, FetchLike, MessageSearch, PresenceInfo, UploadBody, UploadOptions } from './http.js';
export { IndexedDbStore } from './idb.js';
export { Outbox, newClientId } from './outbox.js';
export type { OutboxItem, OutboxState } from './outbox.js';
export type { SocketFactory, SocketLike } from './socket.js';
export { MemoryStore, ScopedStore } from './storage.js';
export type { Json, KeyValueStore } from './storage.js';
export type * from '../protocol/model.js';
export type { DeviceKeys, E2eFailure, E2eFileKey, E2eStatus } from '../protocol/e2e.js';
export { E2eFileError } from './e2e/files.js';
export type { FileFailure } from './e2e/files.js';
export type { ClientUploadOptions } from './client.js';
export type { PushKind, PushNotification, PushSubscription, PushSubscriptionInput, PushVapidInfo } from '../protocol/push.js';
/** How search splits and folds words, to mark matches in results as the server found them. */
export { foldSearchText, searchTerms } from '../protocol/search.js';
/** How the server matches a file's type against its list of allowed types (R14). */
export { TypePolicy, mediaTypeOf } from '../protocol/media-types.js';
