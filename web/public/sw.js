// Parley's service worker: shows push notifications (R12) and opens their
// conversation when one is clicked. Plain JavaScript, served as is at /sw.js
// (scope /). A notification's data is the server's PushNotification
// (src/protocol/push.ts): {type, conversationId, messageId, seq, title, body?,
// senderId, senderName, count, at}.
/* global self */

self.addEventListener('install', () => {
  self.skipWaiting();
});

self.addEventListener('activate', (event) => {
  event.waitUntil(self.clients.claim());
});

/** The text of a notification: the server's preview, or a generic line when it withheld one. */
function textOf(n) {
  if (typeof n.body === 'string' && n.body) return n.count > 1 ? `${n.body} (+${n.count - 1} more)` : n.body;
  return n.count > 1 ? `${n.count} new messages` : 'New message';
}

self.addEventListener('push', (event) => {
  let n;
  try {
    n = event.data ? event.data.json() : undefined;
  } catch {
    n = undefined;
  }
  // A push must always show something (userVisibleOnly), even one we cannot read.
  const show =
    n && n.type === 'message' && typeof n.conversationId === 'string'
      ? self.registration.showNotification(String(n.title || 'Parley'), {
          body: textOf(n),
          // One notification per conversation: a newer one replaces it, and still alerts.
          tag: `conv:${n.conversationId}`,
          renotify: true,
          icon: '/favicon.svg',
          timestamp: typeof n.at === 'number' ? n.at : Date.now(),
          data: { conversationId: n.conversationId, messageId: n.messageId, seq: n.seq },
        })
      : self.registration.showNotification('Parley', { body: 'New activity', icon: '/favicon.svg' });
  event.waitUntil(show);
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  const id = event.notification.data && event.notification.data.conversationId;
  const path = id ? `/#/c/${encodeURIComponent(id)}` : '/';
  event.waitUntil(
    (async () => {
      const windows = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
      const win = windows.find((w) => new URL(w.url).origin === self.location.origin);
      if (!win) {
        await self.clients.openWindow(path);
        return;
      }
      // The app opens the conversation itself (no reload); then the window comes to the front.
      win.postMessage({ type: 'parley.open', conversationId: id });
      try {
        await win.focus();
      } catch {
        // Focusing needs the click's user activation; without it the window is at least where it should be.
      }
    })(),
  );
});

// A subscription the browser renewed by itself is registered again by the app at its next start
// (web/src/push.ts), which has the access token this worker does not.
