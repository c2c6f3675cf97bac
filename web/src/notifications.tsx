import { useEffect, useState } from 'preact/hooks';
import type { ParleyClient } from '../../src/client/index.js';
import { Bell } from './icons.js';
import { disablePush, enablePush, pushState, serviceWorker, type PushState } from './push.js';
import { errorText } from './util.js';

const TITLES: Record<PushState, string> = {
  unsupported: 'This browser cannot show notifications',
  denied: 'Notifications are blocked for this site in the browser’s settings',
  off: 'Turn on notifications for when this device is not connected',
  on: 'Notifications are on for this device; click to turn them off',
};

/**
 * The "Notifications" switch of the sidebar (R12): push notifications for this
 * device while it has no connection. A failure is told through `onError`.
 */
export function NotificationsToggle({ client, onError }: { client: ParleyClient; onError: (text: string) => void }) {
  const [state, setState] = useState<PushState | undefined>();
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    let live = true;
    void serviceWorker()?.catch(() => undefined);
    const check = (): void => {
      pushState(client).then(
        (s) => live && setState(s),
        () => live && setState((prev) => prev ?? 'off'),
      );
    };
    check();
    // Read again once connected: the first look may have been made offline.
    const off = client.on('ready', check);
    return () => {
      live = false;
      off();
    };
  }, [client]);

  const toggle = async (): Promise<void> => {
    if (busy || !state || state === 'unsupported') return;
    setBusy(true);
    try {
      if (state === 'on') await disablePush(client);
      else await enablePush(client);
      setState(await pushState(client));
    } catch (err) {
      onError(err instanceof Error && !('code' in err) ? err.message : errorText(err, 'Notifications could not be changed. Please try again.'));
      setState(await pushState(client).catch(() => state));
    } finally {
      setBusy(false);
    }
  };

  const s = state ?? 'off';
  return (
    <button
      class={`icon-btn ${s === 'on' ? 'active' : ''}`}
      aria-label="Notifications"
      aria-pressed={s === 'on'}
      aria-busy={busy}
      data-state={s}
      title={TITLES[s]}
      disabled={s === 'unsupported' || state === undefined}
      onClick={() => void toggle()}
    >
      <Bell />
    </button>
  );
}
