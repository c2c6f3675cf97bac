/**
 * Web Push in the web client (R12), in Debian's Chromium: the service worker
 * is served at /sw.js and controls the app; the Notifications switch asks for
 * permission and, since a headless browser has no push service to subscribe
 * with, says so clearly and stays off; a push delivered to the worker (through
 * the DevTools protocol, as a push service would) shows a notification titled
 * and worded from the server's payload, one per conversation; clicking it
 * opens that conversation in the app.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { PushNotification } from '../../src/protocol/push.js';
import { hasChromium, register, startApp, type App } from './_app.js';

let app: App;

before(async () => {
  if (!hasChromium) return;
  app = await startApp('parley-push-');
});

after(async () => {
  await app?.close();
});

describe('push notifications in the web client', { skip: hasChromium ? false : 'no Chromium' }, () => {
  test('service worker, the Notifications switch, a push shown and its click opening the conversation', async () => {
    const sw = await fetch(`${app.server.url}/sw.js`);
    assert.equal(sw.status, 200);
    assert.match(sw.headers.get('content-type') ?? '', /javascript/);

    const { ctx, page } = await app.newPage({ failFast: true });
    try {
      await register(page, `pat${Date.now() % 100000}`, 'Pat');
      const scope = await page.evaluate(async () => {
        const reg = await navigator.serviceWorker.ready;
        return { scope: reg.scope, script: reg.active?.scriptURL ?? '' };
      });
      assert.equal(scope.scope, `${app.server.url}/`);
      assert.equal(scope.script, `${app.server.url}/sw.js`);

      // The switch: permission granted, but there is no push service here.
      await ctx.grantPermissions(['notifications'], { origin: app.server.url });
      const toggle = page.getByRole('button', { name: 'Notifications' });
      await toggle.waitFor();
      assert.equal(await toggle.getAttribute('aria-pressed'), 'false');
      await toggle.click();
      const alert = page.locator('.app-notice[role="alert"]');
      await alert.waitFor();
      assert.match((await alert.textContent()) ?? '', /could not reach its push service/);
      assert.equal(await toggle.getAttribute('aria-pressed'), 'false', 'still off');
      const subs = await page.evaluate(async () => (await (await navigator.serviceWorker.ready).pushManager.getSubscription()) === null);
      assert.equal(subs, true, 'no browser subscription left behind');

      // A push, as the push service would deliver it to the worker.
      const cdp = await ctx.newCDPSession(page);
      const registrations: { registrationId: string; scopeURL: string }[] = [];
      cdp.on('ServiceWorker.workerRegistrationUpdated', (e: { registrations: { registrationId: string; scopeURL: string }[] }) => registrations.push(...e.registrations));
      await cdp.send('ServiceWorker.enable');
      const deadline = Date.now() + 5000;
      while (!registrations.some((r) => r.scopeURL === `${app.server.url}/`) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      const reg = registrations.find((r) => r.scopeURL === `${app.server.url}/`);
      assert.ok(reg, 'the worker registration is known to DevTools');
      const push = (n: PushNotification) => cdp.send('ServiceWorker.deliverPushMessage', { origin: app.server.url, registrationId: reg.registrationId, data: JSON.stringify(n) });
      const base: PushNotification = { type: 'message', conversationId: 'c0nv1', messageId: 'm1', seq: 4, title: 'Weekend trip', body: 'Ann: train at 8', senderId: 'u1', senderName: 'Ann', count: 1, at: Date.now() };
      await push(base);
      await push({ ...base, messageId: 'm2', seq: 6, body: 'Ann: platform 4', count: 2 });
      await push({ ...base, conversationId: 'c0nv2', title: 'Bo', messageId: 'm3', count: 3, body: undefined as unknown as string });
      const shown = async () =>
        page.evaluate(async () => (await (await navigator.serviceWorker.ready).getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag })));
      let list: { title: string; body: string; tag: string }[] = [];
      for (const end = Date.now() + 5000; list.length < 2 && Date.now() < end; await new Promise((r) => setTimeout(r, 50))) list = await shown();
      assert.deepEqual(
        list.sort((a, b) => a.tag.localeCompare(b.tag)),
        [
          { title: 'Weekend trip', body: 'Ann: platform 4 (+1 more)', tag: 'conv:c0nv1' },
          { title: 'Bo', body: '3 new messages', tag: 'conv:c0nv2' },
        ],
        'one per conversation, the newer replacing the older; a generic line without a preview',
      );

      // A click on the first: the app opens its conversation.
      const worker = ctx.serviceWorkers()[0] ?? (await ctx.waitForEvent('serviceworker'));
      await worker.evaluate(async () => {
        const scope = self as unknown as { registration: ServiceWorkerRegistration; dispatchEvent(e: Event): boolean };
        const [n] = await scope.registration.getNotifications({ tag: 'conv:c0nv1' });
        const Ctor = (globalThis as unknown as { NotificationEvent: new (type: string, init: { notification: Notification }) => Event }).NotificationEvent;
        scope.dispatchEvent(new Ctor('notificationclick', { notification: n! }));
      });
      await page.waitForFunction(() => location.hash === '#/c/c0nv1');
      const left = await shown();
      assert.deepEqual(left.map((n) => n.tag), ['conv:c0nv2'], 'the clicked notification is closed');
    } finally {
      await ctx.close();
    }
  });
});
