import type { Id, ParleyClient } from '../../src/client/index.js';
import { Users } from './icons.js';
import { colorFor, initials } from './util.js';

export function Avatar({
  client,
  userId,
  name,
  size = 44,
  group = false,
  showPresence = true,
}: {
  client: ParleyClient;
  userId: Id;
  name: string;
  size?: number;
  group?: boolean;
  showPresence?: boolean;
}) {
  const status = group || !showPresence ? undefined : (client.presenceOf(userId)?.status ?? 'offline');
  return (
    <span class="avatar" style={{ width: `${size}px`, height: `${size}px`, background: colorFor(userId), fontSize: `${Math.round(size * 0.38)}px` }} aria-hidden="true">
      {group ? <Users size={Math.round(size * 0.5)} /> : initials(name)}
      {status && <span class={`dot dot-${status}`} data-presence={status} />}
    </span>
  );
}
