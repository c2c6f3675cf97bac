/**
 * The runner's handle on a child process of the cluster bench that answers
 * commands over IPC (pinned, registered, stopped by its PID).
 */
import { spawnPinned, stopProc, type Proc } from '../lib/proc.js';
import { ROOT } from '../lib/paths.js';

export type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };

export class IpcChild<Commands extends { cmd: string }, Results extends Record<Commands['cmd'], unknown>> {
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  readonly proc: Proc;

  constructor(name: string, entry: string, core: number | null) {
    this.proc = spawnPinned(name, process.execPath, ['--import', 'tsx', entry], { core, ipc: true, cwd: ROOT });
    this.proc.child.on('message', (raw) => {
      const m = raw as Reply;
      const w = this.waiting.get(m.id);
      if (!w) return;
      this.waiting.delete(m.id);
      clearTimeout(w.timer);
      if (m.ok) w.resolve(m.result);
      else w.reject(new Error(`${name}: ${m.error}`));
    });
    void this.proc.exited.then((code) => {
      for (const w of this.waiting.values()) {
        clearTimeout(w.timer);
        w.reject(new Error(`${name} exited (${code})`));
      }
      this.waiting.clear();
    });
  }

  call<C extends Commands>(c: C, timeoutMs: number): Promise<Results[C['cmd']]> {
    const id = ++this.nextId;
    return new Promise<Results[C['cmd']]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${this.proc.name}: ${c.cmd} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.proc.child.send({ ...c, id });
    });
  }

  stop(): Promise<void> {
    return stopProc(this.proc, 3000);
  }
}

/** The child side: answers each command with its handler's result or error. */
export function serve<Commands extends { cmd: string }>(handle: (c: Commands) => Promise<unknown>): void {
  process.on('message', (raw) => {
    const m = raw as Commands & { id: number };
    handle(m).then(
      (result) => process.send?.({ id: m.id, ok: true, result } satisfies Reply),
      (e: unknown) => process.send?.({ id: m.id, ok: false, error: e instanceof Error ? e.message : String(e) } satisfies Reply),
    );
  });
  // The runner is gone: nobody will stop us, so stop.
  process.on('disconnect', () => process.exit(0));
}
