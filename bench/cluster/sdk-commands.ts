/** The IPC contract of bench/cluster/sdk-worker.ts. */
export type SdkCommand =
  | { cmd: 'setup'; url: string; count: number; tag: string; concurrency: number; backoffMinMs: number }
  | { cmd: 'arm' }
  | { cmd: 'sendAll'; tag: string }
  | { cmd: 'wait'; tag: string; timeoutMs: number }
  | { cmd: 'stop' };

export interface WaitResult {
  clients: number;
  /** Clients whose socket was lost after `arm` (the killed node's). */
  dropped: number;
  resynced: number;
  lostUs: number[];
  syncedUs: number[];
  /** Clients not holding both messages of the round when the wait ended. */
  missing: number;
  /** When every client held both messages (0 if never). */
  allMessagesUs: number;
  online: number;
  cpuPct: number;
}

export interface SdkResults {
  setup: { ms: number };
  arm: object;
  sendAll: { queued: number };
  wait: WaitResult;
  stop: object;
}
