import { useEffect, useState } from 'preact/hooks';
import type { ClientEvents, ParleyClient } from '../../src/client/index.js';

const WATCHED: (keyof ClientEvents)[] = ['state', 'conversations', 'timeline', 'typing', 'presence', 'receipt', 'session', 'ready', 'blocks'];

/**
 * Re-renders the caller whenever the client's state changes, at most once per
 * animation frame: a sync of hundreds of events becomes one render.
 */
export function useClientVersion(client: ParleyClient): number {
  const [version, setVersion] = useState(0);
  useEffect(() => {
    let scheduled = 0;
    const bump = (): void => {
      if (scheduled) return;
      scheduled = requestAnimationFrame(() => {
        scheduled = 0;
        setVersion((v) => v + 1);
      });
    };
    const offs = WATCHED.map((name) => client.on(name, bump));
    // Effects run after the first paint: catch up with whatever changed before we listened.
    bump();
    // Relative times ("last seen 3 min ago") move on by themselves.
    const tick = setInterval(bump, 30_000);
    return () => {
      offs.forEach((off) => off());
      clearInterval(tick);
      if (scheduled) cancelAnimationFrame(scheduled);
    };
  }, [client]);
  return version;
}

/** The current location hash, kept in state (`#/c/<id>` opens a conversation). */
export function useHash(): string {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = (): void => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}
