/**
 * End to end in Debian's Chromium (playwright-core, never a downloaded browser):
 * two people register in two browser contexts, chat, see typing, ticks and
 * presence; one goes offline, composes two messages that show as queued, comes
 * back, and each arrives exactly once, in order. An HTML body shows as text.
 * Saves screenshots of the main screens (to docs/screenshots/ with PARLEY_SCREENSHOTS=1).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page, Route } from 'playwright-core';
import type { ParleyServer } from '../../src/server.js';
import { createNodeClient } from '../../src/client/node.js';
import { PASSWORD, ROOT, XSS, hasChromium, register, startApp, type App } from './_app.js';

// Screenshots refresh docs/screenshots/ only when asked (PARLEY_SCREENSHOTS=1), so a test run leaves the tree clean.
let SHOTS = join(ROOT, 'docs/screenshots');

let app: App;
/** app.server, named for the many uses below. */
let server: ParleyServer;

before(async () => {
  if (!hasChromium) return;
  app = await startApp('parley-browser-');
  server = app.server;
  if (process.env.PARLEY_SCREENSHOTS !== '1') SHOTS = join(app.tmp, 'screenshots');
  await mkdir(SHOTS, { recursive: true });
});

after(async () => {
  await app?.close();
});

const newPage = (opts?: { failFast?: boolean }) => app.newPage(opts);

function timelineBodies(page: Page): Promise<string[]> {
  return page.locator('.timeline .msg .body').allTextContents();
}

describe('web app in Chromium', { skip: !hasChromium && 'chromium not installed' }, () => {
  test('two people chat: typing, ticks, presence, offline queue, safe rendering, phone layout', async () => {
    const alice = await newPage();
    const bob = await newPage();
    const A = alice.page;
    const B = bob.page;

    await A.getByRole('heading', { name: 'Sign in' }).waitFor();
    await A.screenshot({ path: join(SHOTS, 'sign-in.png') });
    await register(A, 'alice', 'Alice Liddell');
    await register(B, 'bob', 'Bob Marley');

    // Alice starts a direct chat with Bob by username.
    await A.getByRole('button', { name: 'New chat' }).first().click();
    await A.getByRole('dialog').getByLabel('Username').fill('bo');
    await A.locator('.user-item[data-username="bob"]').click();
    await A.getByRole('heading', { name: 'Bob Marley' }).waitFor();
    await A.screenshot({ path: join(SHOTS, 'empty-chat.png') });

    // Presence: Bob is online for Alice.
    await A.locator('.conv-head [data-presence="online"]').waitFor();
    await A.getByText('online', { exact: true }).waitFor();

    const composerA = A.getByRole('textbox', { name: 'Message' });
    await composerA.fill('Hi Bob! 👋');
    await composerA.press('Enter');
    await composerA.fill('Are you there?');
    await composerA.press('Enter');

    // Bob sees the conversation with an unread badge and a preview.
    const item = B.locator('.conv-item', { hasText: 'Alice Liddell' });
    await item.locator('.badge', { hasText: '2' }).waitFor();
    await item.locator('.conv-preview', { hasText: 'Are you there?' }).waitFor();
    await B.screenshot({ path: join(SHOTS, 'unread-badge.png') });

    // Alice's messages are delivered (Bob's device has them), not read yet.
    await A.locator('.msg.mine').last().locator('[data-tick="delivered"]').waitFor();

    await item.click();
    await B.getByRole('heading', { name: 'Alice Liddell' }).waitFor();
    assert.deepEqual(await timelineBodies(B), ['Hi Bob! 👋', 'Are you there?']);
    // Opening the chat reads it: Alice's ticks turn to read, Bob's badge goes.
    await A.locator('.msg.mine').last().locator('[data-tick="read"]').waitFor();
    await item.locator('.badge').waitFor({ state: 'detached' });

    // Typing: Bob types, Alice sees it.
    const composerB = B.getByRole('textbox', { name: 'Message' });
    await composerB.pressSequentially('Yes, I am', { delay: 20 });
    await A.locator('[data-testid="conv-subtitle"]', { hasText: 'typing…' }).waitFor();
    await A.locator('.typing-row').waitFor();
    await A.screenshot({ path: join(SHOTS, 'typing.png') });
    await composerB.press('Enter');
    await A.locator('.msg.theirs .body', { hasText: 'Yes, I am' }).waitFor();

    // Reply and react from Alice.
    const bobsMsg = A.locator('.msg.theirs').last();
    await bobsMsg.hover();
    await bobsMsg.getByRole('button', { name: 'React' }).click();
    await bobsMsg.getByRole('menuitem', { name: 'React with ❤️' }).click();
    await B.locator('.msg.mine .reaction', { hasText: '❤️' }).waitFor();
    await bobsMsg.hover();
    await bobsMsg.getByRole('button', { name: 'Reply' }).click();
    await composerA.fill('Great to hear');
    await composerA.press('Enter');
    await B.locator('.msg.theirs .quote', { hasText: 'Yes, I am' }).waitFor();

    // The XSS body is shown as text by both, and nothing runs.
    await composerA.fill(XSS);
    await composerA.press('Enter');
    await B.locator('.msg.theirs .body', { hasText: XSS }).waitFor();
    assert.equal(await B.locator('.timeline img').count(), 0);
    assert.equal(await A.locator('.timeline img').count(), 0);
    assert.equal(await B.locator('.msg.theirs .body').last().textContent(), XSS);
    await B.screenshot({ path: join(SHOTS, 'conversation.png') });

    // Bob's own status in the sidebar is his choice while connected.
    const myStatus = B.getByTestId('my-status');
    assert.equal(await B.getByRole('combobox', { name: 'Your status' }).inputValue(), 'online');
    // Bob goes offline: the banner says so, and Alice sees him go offline.
    await bob.ctx.setOffline(true);
    await B.locator('.banner[data-state="offline"]').waitFor();
    // His sidebar no longer claims he is online: it says what the banner says, with no picker.
    assert.equal(await B.getByRole('combobox', { name: 'Your status' }).count(), 0, 'no "Online" picker while offline');
    assert.equal(await myStatus.textContent(), 'Offline');
    await A.locator('.conv-head [data-presence="offline"]').waitFor({ timeout: 15_000 });

    // Composed offline: visibly queued, in order.
    await composerB.fill('Written offline 1');
    await composerB.press('Enter');
    await composerB.fill('Written offline 2');
    await composerB.press('Enter');
    const queued = B.locator('.msg.queued');
    await queued.nth(1).waitFor();
    assert.deepEqual(await queued.locator('.body').allTextContents(), ['Written offline 1', 'Written offline 2']);
    assert.equal(await queued.first().getAttribute('data-outbox'), 'queued');
    await B.locator('.banner', { hasText: '2 messages will be sent' }).waitFor();
    // The conversation list says the newest one is waiting to go.
    assert.equal(await item.locator('.conv-preview').textContent(), 'Queued: Written offline 2');
    await B.screenshot({ path: join(SHOTS, 'offline-queued.png') });
    // Nothing reached Alice while Bob was offline.
    assert.equal(await A.locator('.msg.theirs .body', { hasText: 'Written offline' }).count(), 0);

    // Back online: sent once each, in order; Bob shows online again.
    await bob.ctx.setOffline(false);
    await B.locator('.msg.queued').first().waitFor({ state: 'detached', timeout: 15_000 });
    assert.equal(await B.getByRole('combobox', { name: 'Your status' }).inputValue(), 'online');
    await A.locator('.msg.theirs .body', { hasText: 'Written offline 2' }).waitFor();
    await A.locator('.conv-head [data-presence="online"]').waitFor({ timeout: 15_000 });
    const aliceSees = await timelineBodies(A);
    assert.deepEqual(
      aliceSees.filter((b) => b.startsWith('Written offline')),
      ['Written offline 1', 'Written offline 2'],
    );
    const bobSees = await timelineBodies(B);
    assert.deepEqual(bobSees, aliceSees, 'both show the same timeline');
    assert.deepEqual(bobSees, ['Hi Bob! 👋', 'Are you there?', 'Yes, I am', 'Great to hear', XSS, 'Written offline 1', 'Written offline 2']);
    await A.screenshot({ path: join(SHOTS, 'chat-desktop.png') });

    // Phone-sized: the list and the conversation are separate screens.
    await B.setViewportSize({ width: 390, height: 780 });
    await B.getByRole('button', { name: 'Back to conversations' }).click();
    await B.locator('.conv-item', { hasText: 'Alice Liddell' }).waitFor();
    await B.screenshot({ path: join(SHOTS, 'phone-list.png') });
    await B.locator('.conv-item', { hasText: 'Alice Liddell' }).click();
    await B.getByRole('textbox', { name: 'Message' }).waitFor();
    await B.screenshot({ path: join(SHOTS, 'phone-chat.png') });

    assert.deepEqual(app.dialogs, [], 'no script ran from a message body');
    await alice.ctx.close();
    await bob.ctx.close();
  });

  test('a queued message survives a page reload (IndexedDB outbox) and is sent once', async () => {
    const dave = createNodeClient({ url: server.url });
    await dave.register('dave', PASSWORD, 'Dave Grohl');
    await dave.login('dave', PASSWORD);
    const carol = await newPage();
    const C = carol.page;
    // The page's WebSocket goes through this route; while `blocked`, it cannot reach the server (HTTP still can).
    // Routing takes effect for documents loaded after it is set, hence the reload.
    let blocked = false;
    await carol.ctx.routeWebSocket(/\/v1\/ws/, (ws) => {
      if (blocked) ws.close();
      else ws.connectToServer();
    });
    await C.reload();
    try {
      await register(C, 'carol', 'Carol King');
      await C.getByRole('button', { name: 'New chat' }).first().click();
      await C.getByRole('dialog').getByLabel('Username').fill('dave');
      await C.locator('.user-item[data-username="dave"]').click();
      await C.getByRole('heading', { name: 'Dave Grohl' }).waitFor();

      blocked = true;
      await carol.ctx.setOffline(true);
      await C.locator('.banner[data-state="offline"]').waitFor();
      const composer = C.getByRole('textbox', { name: 'Message' });
      await composer.fill('kept across a reload');
      await composer.press('Enter');
      await C.locator('.msg.queued .body', { hasText: 'kept across a reload' }).waitFor();
      await carol.ctx.setOffline(false);
      await C.locator('.banner[data-state="reconnecting"]').waitFor();

      await C.reload();
      // Still unable to connect: the conversation and the queued message come from IndexedDB.
      await C.getByRole('heading', { name: 'Dave Grohl' }).waitFor({ timeout: 8000 });
      assert.equal(await C.locator('.banner').getAttribute('data-state'), 'connecting');
      assert.equal(await C.getByRole('combobox', { name: 'Your status' }).count(), 0, 'no "Online" picker while connecting');
      assert.equal(await C.getByTestId('my-status').textContent(), 'Connecting…', 'the sidebar agrees with the banner');
      const queued = C.locator('.msg.queued');
      await queued.first().waitFor();
      assert.deepEqual(await queued.locator('.body').allTextContents(), ['kept across a reload']);

      blocked = false;
      // Going offline and back makes the client reconnect at once instead of after its backoff.
      await carol.ctx.setOffline(true);
      await carol.ctx.setOffline(false);
      await queued.first().waitFor({ state: 'detached', timeout: 15_000 });
      const convId = dave.conversations()[0]?.id;
      assert.ok(convId);
      const end = Date.now() + 5000;
      while (dave.messages(convId).length < 1 && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(
        dave.messages(convId).map((m) => m.body),
        ['kept across a reload'],
      );
      const { messages } = await dave.api.messages(convId);
      assert.equal(messages.length, 1);
    } finally {
      dave.stop();
      await carol.ctx.close();
    }
  });
  test('blocking (R17): block from the header, the notice replaces the composer, a refused send shows why, unblock', async () => {
    // Every wait in this test gives up after 10 s, so a Block button that does nothing fails fast.
    const ivy = await newPage({ failFast: true });
    const jack = await newPage({ failFast: true });
    const A = ivy.page;
    const B = jack.page;
    try {
      await register(A, 'ivy', 'Ivy Block');
      await register(B, 'jack', 'Jack Block');
      await A.getByRole('button', { name: 'New chat' }).first().click();
      await A.getByRole('dialog').getByLabel('Username').fill('jack');
      await A.locator('.user-item[data-username="jack"]').click();
      await A.getByRole('heading', { name: 'Jack Block' }).waitFor();
      const composerA = A.getByRole('textbox', { name: 'Message' });
      await composerA.fill('before the block');
      await composerA.press('Enter');
      await B.locator('.conv-item', { hasText: 'Ivy Block' }).click();
      await B.locator('.msg.theirs .body', { hasText: 'before the block' }).waitFor();

      // Offline, a failure is told in a plain sentence, not the transport's text ("TypeError: Failed to fetch"):
      // in the conversation's notice (blocking) and in a dialog (searching people).
      const blockBtn = A.getByRole('button', { name: 'Block Jack Block', exact: true });
      const confirm = A.getByRole('dialog');
      await ivy.ctx.setOffline(true);
      await A.locator('.banner[data-state="offline"]').waitFor();
      await blockBtn.click();
      await confirm.getByRole('button', { name: 'Block', exact: true }).click();
      const unreachable = 'Could not reach the server. Check your connection and try again.';
      const paneNotice = A.locator('.conversation .notice[role="alert"]');
      await paneNotice.waitFor();
      assert.equal(await paneNotice.textContent(), unreachable);
      await paneNotice.getByRole('button', { name: 'Dismiss' }).click();
      assert.equal(await blockBtn.getAttribute('aria-pressed'), 'false', 'not blocked');
      await A.getByRole('button', { name: 'New chat' }).first().click();
      await confirm.getByLabel('Username').fill('ja');
      const formError = confirm.locator('.form-error[role="alert"]');
      await formError.waitFor();
      assert.equal(await formError.textContent(), unreachable);
      await A.keyboard.press('Escape');
      await confirm.waitFor({ state: 'detached' });
      await ivy.ctx.setOffline(false);
      await A.locator('.banner[data-state="online"]').waitFor();

      // Ivy blocks Jack from the header, after confirming.
      assert.equal(await blockBtn.getAttribute('aria-pressed'), 'false');
      await blockBtn.click();
      await confirm.getByRole('heading', { name: 'Block Jack Block?' }).waitFor();
      await confirm.getByRole('button', { name: 'Block', exact: true }).click();
      await confirm.waitFor({ state: 'detached' });
      const notice = A.getByTestId('blocked-notice');
      await notice.getByText('You blocked this user. Unblock to send messages.').waitFor();
      await A.getByRole('button', { name: 'Unblock Jack Block', exact: true }).waitFor();
      await A.locator('[data-testid="conv-subtitle"]', { hasText: 'Blocked' }).waitFor();
      // Ivy cannot send: the composer is gone while the block holds.
      assert.equal(await composerA.count(), 0, 'no composer while blocked');
      assert.equal(await A.getByRole('button', { name: 'Send' }).count(), 0);
      await A.screenshot({ path: join(SHOTS, 'blocked.png') });

      // Jack's send is refused by the server: it stays as failed, with the reason shown.
      const composerB = B.getByRole('textbox', { name: 'Message' });
      await composerB.fill('while blocked');
      await composerB.press('Enter');
      const failed = B.locator('.msg.queued[data-outbox="failed"]', { hasText: 'while blocked' });
      await failed.waitFor();
      const reason = 'This user does not accept messages from you.';
      await failed.locator('.failed-row', { hasText: reason }).waitFor();
      await failed.getByRole('button', { name: 'Retry' }).waitFor();
      await failed.getByRole('button', { name: 'Discard' }).waitFor();
      // The reason is said once, on the message row: no notice repeats it.
      assert.equal(await B.getByText(reason).count(), 1, 'the reason is shown once');
      assert.equal(await B.locator('.notice').count(), 0, 'no notice for a refused send');
      assert.equal(await A.locator('.msg .body', { hasText: 'while blocked' }).count(), 0, 'the refused message never reached Ivy');
      // The conversation list says it was not sent: it is not waiting to go, like a queued one.
      const jacksItem = B.locator('.conv-item', { hasText: 'Ivy Block' });
      await jacksItem.locator('.conv-preview', { hasText: 'while blocked' }).waitFor();
      assert.equal(await jacksItem.locator('.conv-preview').textContent(), 'Not sent: while blocked');

      // The block is loaded again after a reload (loadBlocks), not just remembered by the page.
      await A.reload();
      await A.getByRole('heading', { name: 'Jack Block' }).waitFor();
      await notice.waitFor();

      // Ivy unblocks from the notice: the composer is back, and Jack's next message arrives.
      await notice.getByRole('button', { name: 'Unblock' }).click();
      await notice.waitFor({ state: 'detached' });
      await composerA.waitFor();
      assert.equal(await A.getByRole('button', { name: 'Block Jack Block', exact: true }).getAttribute('aria-pressed'), 'false');
      await composerB.fill('after the unblock');
      await composerB.press('Enter');
      await A.locator('.msg.theirs .body', { hasText: 'after the unblock' }).waitFor();
      await composerA.fill('welcome back');
      await composerA.press('Enter');
      await B.locator('.msg.theirs .body', { hasText: 'welcome back' }).waitFor();
      assert.deepEqual(await timelineBodies(A), ['before the block', 'after the unblock', 'welcome back']);

      // Jack's refused message stays where he wrote it, still with Retry and Discard; what was sent
      // after it, his and Ivy's, comes below it (as in Slack or WhatsApp), not above.
      await B.locator('.msg.theirs .body', { hasText: 'welcome back' }).waitFor();
      assert.deepEqual(await timelineBodies(B), ['before the block', 'while blocked', 'after the unblock', 'welcome back']);
      assert.equal(await B.locator('.timeline .msg').nth(1).getAttribute('data-outbox'), 'failed');
      // Retry sends it now: it moves to the end, where the server puts it, and reaches Ivy once.
      await failed.getByRole('button', { name: 'Retry' }).click();
      await B.locator('.msg.mine[data-message-id] .body', { hasText: 'while blocked' }).waitFor();
      await A.locator('.msg.theirs .body', { hasText: 'while blocked' }).waitFor();
      assert.deepEqual(await timelineBodies(B), ['before the block', 'after the unblock', 'welcome back', 'while blocked']);
      assert.deepEqual(await timelineBodies(A), ['before the block', 'after the unblock', 'welcome back', 'while blocked']);
    } finally {
      await ivy.ctx.close();
      await jack.ctx.close();
    }
  });
  test('retention (R8): the owner sets how long messages are kept, a member sees it live and after a reload, read-only; back to the server default', async () => {
    const kim = await newPage({ failFast: true });
    const leo = await newPage({ failFast: true });
    const K = kim.page;
    const L = leo.page;
    try {
      await register(K, 'kim', 'Kim Keeper');
      await register(L, 'leo', 'Leo Member');
      await K.getByRole('button', { name: 'New group' }).first().click();
      const create = K.getByRole('dialog');
      await create.getByLabel('Group name').fill('Book club');
      await create.getByLabel('Add people by username').fill('leo');
      await create.locator('.user-item[data-username="leo"]').click();
      await create.getByRole('button', { name: /Create group with 1 person/ }).click();
      await K.getByRole('heading', { name: 'Book club' }).waitFor();
      await L.locator('.conv-item', { hasText: 'Book club' }).click();
      await L.getByRole('heading', { name: 'Book club' }).waitFor();
      const noteK = K.getByTestId('conv-retention');
      const noteL = L.getByTestId('conv-retention');
      // The server's default: nothing to say under the subtitle.
      assert.equal(await noteK.count(), 0);
      assert.equal(await noteL.count(), 0);
      // A plain member sees the setting but gets no control to change it.
      assert.equal(await L.getByRole('button', { name: /^Keep messages/ }).count(), 0, 'no retention control for a plain member');

      // Kim, the owner, keeps messages 7 days. Without a policy of its own the server's default
      // applies, which clients are not told: the choice says so instead of promising "Forever".
      await K.getByRole('button', { name: 'Keep messages: Server default' }).click();
      const dialog = K.getByRole('dialog', { name: 'Keep messages' });
      const serverDefault = dialog.getByRole('radio', { name: /^Server default/ });
      assert.equal(await serverDefault.isChecked(), true);
      await dialog.getByText("Kept forever unless the server's operator set a default").waitFor();
      assert.equal(await dialog.getByText('Forever', { exact: true }).count(), 0, 'no bare "Forever" promised');
      assert.equal(await dialog.getByRole('button', { name: 'Save' }).isDisabled(), true, 'nothing to save yet');
      await dialog.getByRole('radio', { name: '7 days' }).check();
      await dialog.getByRole('button', { name: 'Save' }).click();
      await dialog.waitFor({ state: 'detached' });
      await noteK.getByText('Messages kept 7 days').waitFor();
      await K.getByRole('button', { name: 'Keep messages: 7 days' }).waitFor();
      // Leo's page shows it without a reload (the conversation frame), and still after one.
      await noteL.getByText('Messages kept 7 days').waitFor();
      await K.screenshot({ path: join(SHOTS, 'retention.png') });
      await L.reload();
      await L.getByRole('heading', { name: 'Book club' }).waitFor();
      await noteL.getByText('Messages kept 7 days').waitFor();
      assert.equal(await L.getByRole('button', { name: /^Keep messages/ }).count(), 0);
      await K.reload();
      await K.getByRole('heading', { name: 'Book club' }).waitFor();
      await noteK.getByText('Messages kept 7 days').waitFor();

      // A failure is told in the conversation's notice (offline: a plain sentence), and changes nothing.
      await kim.ctx.setOffline(true);
      await K.getByRole('button', { name: 'Keep messages: 7 days' }).click();
      await dialog.getByRole('radio', { name: '30 days' }).check();
      await dialog.getByRole('button', { name: 'Save' }).click();
      await dialog.waitFor({ state: 'detached' });
      await K.locator('.notice[role="alert"]', { hasText: 'Could not reach the server. Check your connection and try again.' }).waitFor();
      await kim.ctx.setOffline(false);
      await K.getByRole('button', { name: 'Dismiss' }).click();
      assert.equal(await noteK.textContent(), 'Messages kept 7 days');

      // Back to the server's default by keyboard: the dialog opens on the current choice; ↑ moves through the radios.
      await K.getByRole('button', { name: 'Keep messages: 7 days' }).focus();
      await K.keyboard.press('Enter');
      await dialog.waitFor();
      await K.waitForFunction(() => (document.activeElement as HTMLInputElement | null)?.type === 'radio' && (document.activeElement as HTMLInputElement).checked);
      await K.keyboard.press('ArrowUp');
      await K.keyboard.press('ArrowUp');
      assert.equal(await serverDefault.isChecked(), true);
      await K.keyboard.press('Tab');
      await K.keyboard.press('Tab');
      await K.keyboard.press('Enter');
      await dialog.waitFor({ state: 'detached' });
      await K.getByRole('button', { name: 'Keep messages: Server default' }).waitFor();
      await noteK.waitFor({ state: 'detached' });
      await noteL.waitFor({ state: 'detached' });

      // In a direct conversation either member may set it: Leo gets the control there.
      await L.getByRole('button', { name: 'New chat' }).first().click();
      await L.getByRole('dialog').getByLabel('Username').fill('kim');
      await L.locator('.user-item[data-username="kim"]').click();
      await L.getByRole('heading', { name: 'Kim Keeper' }).waitFor();
      await L.getByRole('button', { name: 'Keep messages: Server default' }).waitFor();
    } finally {
      await kim.ctx.close();
      await leo.ctx.close();
    }
  });
  test("errors stay with their conversation: one's failure is told in its own pane, never in another one's", async () => {
    const nora = createNodeClient({ url: server.url });
    const otto = createNodeClient({ url: server.url });
    await nora.register('nora', PASSWORD, 'Nora Owner');
    await nora.login('nora', PASSWORD);
    await otto.register('otto', PASSWORD, 'Otto Other');
    await otto.login('otto', PASSWORD);
    const mia = await newPage({ failFast: true });
    const M = mia.page;
    // Mia's socket goes through this route (set before the reload that loads the app): frames from
    // the server are passed on and the error frames it sends of its own (no ref: the answer to a
    // frame of no request, e.g. typing) are noted; Mia's "stopped typing" in `slowTypingIn` is held
    // back (a slow uplink) until `release()`.
    const backgroundErrors: string[] = [];
    let slowTypingIn = '';
    const slow: (() => void)[] = [];
    const release = (): void => slow.splice(0).forEach((send) => send());
    await mia.ctx.routeWebSocket(/\/v1\/ws/, (ws) => {
      const srv = ws.connectToServer();
      ws.onMessage((msg) => {
        const f = typeof msg === 'string' ? (JSON.parse(msg) as { type?: string; conversationId?: string; active?: boolean }) : undefined;
        if (f?.type === 'typing' && f.active === false && f.conversationId === slowTypingIn) slow.push(() => srv.send(msg));
        else srv.send(msg);
      });
      srv.onMessage((msg) => {
        const f = typeof msg === 'string' ? (JSON.parse(msg) as { type?: string; ref?: string; message?: string }) : undefined;
        if (f?.type === 'error' && f.ref === undefined) backgroundErrors.push(f.message ?? '');
        ws.send(msg);
      });
    });
    await M.reload();
    // Time for what just reached the page to be handled and rendered (renders follow animation frames).
    const afterRender = async (): Promise<void> => {
      await M.waitForTimeout(300);
      await M.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    };
    const startChat = async (username: string, name: string): Promise<void> => {
      await M.getByRole('button', { name: 'New chat' }).first().click();
      await M.getByRole('dialog').getByLabel('Username').fill(username);
      await M.locator(`.user-item[data-username="${username}"]`).click();
      await M.getByRole('heading', { name }).waitFor();
    };
    const openConv = async (name: string): Promise<void> => {
      await M.locator('.conv-item', { hasText: name }).click();
      await M.getByRole('heading', { name }).waitFor();
    };
    const notice = M.locator('.notice[role="alert"]');
    try {
      await register(M, 'mia', 'Mia Pane');
      await startChat('otto', 'Otto Other');
      await startChat('nora', 'Nora Owner');
      const seen = Date.now() + 5000;
      while (!otto.conversations()[0] && Date.now() < seen) await new Promise((r) => setTimeout(r, 20));
      const ottoChat = otto.conversations()[0]?.id;
      assert.ok(ottoChat, 'otto holds the chat with mia');

      // A retention change in the chat with Otto is still in flight (a slow network) when Mia
      // closes the dialog and opens the chat with Nora; then it fails.
      let hold: (route: Route) => void = () => undefined;
      const held = new Promise<Route>((r) => (hold = r));
      await M.route(`**/v1/conversations/${ottoChat}`, (route) => (route.request().method() === 'PATCH' ? hold(route) : route.continue()));
      await openConv('Otto Other');
      await M.getByRole('button', { name: 'Keep messages: Server default' }).click();
      const dialog = M.getByRole('dialog', { name: 'Keep messages' });
      await dialog.getByRole('radio', { name: '7 days' }).check();
      await dialog.getByRole('button', { name: 'Save' }).click();
      await dialog.getByRole('button', { name: 'Saving…' }).waitFor();
      const patch = await held;
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      await openConv('Nora Owner');
      const failedReq = M.waitForEvent('requestfailed');
      await patch.abort('internetdisconnected');
      await failedReq;
      await afterRender();
      assert.equal(await notice.count(), 0, "the Otto chat's failure is not shown in the Nora chat");
      // It is told where it happened, when Mia goes back there, until she dismisses it.
      await openConv('Otto Other');
      await notice.waitFor();
      assert.equal(await notice.locator('span').textContent(), 'Could not reach the server. Check your connection and try again.');
      assert.equal(await M.getByTestId('conv-retention').count(), 0, 'nothing changed');
      await openConv('Nora Owner');
      assert.equal(await notice.count(), 0);
      await openConv('Otto Other');
      await notice.getByRole('button', { name: 'Dismiss' }).click();
      await notice.waitFor({ state: 'detached' });
      await M.unroute(`**/v1/conversations/${ottoChat}`);

      // Mia types in a group, then reads the chat with Otto; her "stopped typing" for the group is
      // slow to leave, and meanwhile Nora removes her from the group. The server refuses it (she is
      // no longer a member) while the Otto chat is open: that error is the group's (its frame names
      // no conversation), not Otto's, and is not shown there.
      const miaId = (await nora.searchUsers('mia'))[0]?.id;
      assert.ok(miaId);
      const group = await nora.createGroup('Side project', [miaId]);
      await openConv('Side project');
      slowTypingIn = group.id;
      await M.getByRole('textbox', { name: 'Message' }).pressSequentially('brb', { delay: 20 });
      const until = Date.now() + 5000;
      while (!nora.typingUsers(group.id).includes(miaId) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      assert.ok(nora.typingUsers(group.id).includes(miaId), 'nora sees mia typing');
      await openConv('Otto Other');
      assert.equal(slow.length, 1, 'the stop is held');
      await nora.api.removeMember(group.id, miaId);
      await M.locator('.conv-item', { hasText: 'Side project' }).waitFor({ state: 'detached' });
      release();
      const end = Date.now() + 10_000;
      while (backgroundErrors.length === 0 && Date.now() < end) await M.waitForTimeout(20);
      assert.deepEqual(backgroundErrors, ['You are not a member of this conversation.']);
      await afterRender();
      assert.equal(await notice.count(), 0, "the group's error is not shown in the Otto chat");
      assert.equal(await M.getByText('You are not a member of this conversation.').count(), 0);
    } finally {
      nora.stop();
      otto.stop();
      await mia.ctx.close();
    }
  });
  test('groups: create, add a member, edit and delete, older history on scroll up, keyboard navigation', async () => {
    const names = ['frank', 'grace', 'heidi'];
    const others = names.slice(1).map(() => createNodeClient({ url: server.url }));
    for (const [i, c] of others.entries()) {
      const n = names[i + 1] as string;
      await c.register(n, PASSWORD, n[0]!.toUpperCase() + n.slice(1) + ' Hopper');
      await c.login(n, PASSWORD);
    }
    const [grace, heidi] = others as [ReturnType<typeof createNodeClient>, ReturnType<typeof createNodeClient>];
    const frank = await newPage();
    const F = frank.page;
    try {
      await register(F, 'frank', 'Frank Ocean');
      // A direct chat first, so the list has two entries to move between.
      await F.getByRole('button', { name: 'New chat' }).first().click();
      await F.getByRole('dialog').getByLabel('Username').fill('heidi');
      await F.locator('.user-item[data-username="heidi"]').click();
      await F.getByRole('heading', { name: 'Heidi Hopper' }).waitFor();

      await F.getByRole('button', { name: 'New group' }).first().click();
      const dialog = F.getByRole('dialog');
      await dialog.getByLabel('Group name').fill('Weekend plans');
      await dialog.getByLabel('Add people by username').fill('gra');
      await dialog.locator('.user-item[data-username="grace"]').click();
      await dialog.getByRole('button', { name: /Create group with 1 person/ }).click();
      await F.getByRole('heading', { name: 'Weekend plans' }).waitFor();
      const composer = F.getByRole('textbox', { name: 'Message' });
      await composer.fill('Hiking on Saturday?');
      await composer.press('Enter');
      const gid = grace.conversations().find((c) => c.conversation.title === 'Weekend plans')?.id;
      const end = Date.now() + 5000;
      while (Date.now() < end && !(gid && grace.messages(gid).length)) await new Promise((r) => setTimeout(r, 20));
      assert.ok(gid, 'grace holds the group');
      assert.deepEqual(
        grace.messages(gid).map((m) => m.body),
        ['Hiking on Saturday?'],
      );
      await grace.send(gid, 'Count me in! 🥾');
      await F.locator('.msg.theirs .msg-name', { hasText: 'Grace Hopper' }).waitFor();

      // Edit: ↑ in the empty composer edits one's last message.
      await composer.fill('Bring snacks');
      await composer.press('Enter');
      // Wait for the confirmed message (it has a server id), not the outbox row (data-outbox) shown
      // while it is sent: ↑ edits one's last confirmed message, which until then is the one before.
      await F.locator('.msg.mine[data-message-id] .body', { hasText: 'Bring snacks' }).waitFor();
      await composer.press('ArrowUp');
      await F.getByText('Editing message').waitFor();
      // The old text is in the composer as soon as the bar shows, so nothing typed from then on is lost.
      assert.equal(await composer.inputValue(), 'Bring snacks');
      await composer.fill('Bring snacks and water');
      await composer.press('Enter');
      await F.locator('.msg.mine .edited').waitFor();
      const wait = async (cond: () => boolean): Promise<void> => {
        const until = Date.now() + 5000;
        while (!cond() && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      };
      await wait(() => grace.messages(gid).some((m) => m.body === 'Bring snacks and water'));
      assert.ok(grace.messages(gid).some((m) => m.body === 'Bring snacks and water' && m.editedAt));
      // Delete, after a confirmation dialog.
      const snack = F.locator('.msg.mine', { hasText: 'Bring snacks and water' });
      await snack.hover();
      await snack.getByRole('button', { name: 'Delete' }).click();
      await F.getByRole('dialog').getByRole('button', { name: 'Delete' }).click();
      await F.locator('.msg.mine.deleted', { hasText: 'This message was deleted' }).waitFor();
      await wait(() => grace.messages(gid).some((m) => !!m.deletedAt));
      assert.ok(grace.messages(gid).some((m) => m.deletedAt && m.body === ''));

      // Text typed in the very first frame of an edit is kept. The render that shows the "Editing
      // message" bar is a microtask after the key; effects run only after the next frame. Typing in
      // between used to be overwritten by the old text, and then the unchanged edit was dropped.
      await composer.fill('Pack a map');
      await composer.press('Enter');
      await F.locator('.msg.mine[data-message-id] .body', { hasText: 'Pack a map' }).waitFor();
      const typed = await F.evaluate(async () => {
        const ta = document.querySelector<HTMLTextAreaElement>('.composer textarea');
        if (!ta) throw new Error('no composer');
        ta.focus();
        ta.dispatchEvent(new KeyboardEvent('keydown', { key: 'ArrowUp', bubbles: true, cancelable: true }));
        for (let i = 0; i < 100 && !document.querySelector('.composer-context'); i++) await Promise.resolve();
        if (!document.querySelector('.composer-context')) throw new Error('editing did not start within the same task');
        const shown = ta.value;
        ta.value = 'Pack a map and a compass';
        ta.dispatchEvent(new Event('input', { bubbles: true }));
        await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 100)));
        return { shown, kept: ta.value };
      });
      assert.deepEqual(typed, { shown: 'Pack a map', kept: 'Pack a map and a compass' });
      await composer.press('Enter');
      await F.locator('.msg.mine', { hasText: 'Pack a map and a compass' }).locator('.edited').waitFor();

      // Add Heidi through the header button.
      await F.getByRole('button', { name: 'Add members' }).click();
      const add = F.getByRole('dialog');
      await add.getByLabel('Add people by username').fill('hei');
      await add.locator('.user-item[data-username="heidi"]').click();
      await add.getByRole('button', { name: 'Add', exact: true }).click();
      await F.locator('[data-testid="conv-subtitle"]', { hasText: 'Heidi Hopper' }).waitFor();
      const hend = Date.now() + 5000;
      while (Date.now() < hend && !heidi.conversation(gid)) await new Promise((r) => setTimeout(r, 20));
      assert.ok(heidi.conversation(gid), 'heidi was told about the group');
      await F.screenshot({ path: join(SHOTS, 'group.png') });

      // Keyboard: from the first conversation, ArrowDown moves to the next; Enter opens it.
      await F.locator('.conv-item').first().focus();
      await F.keyboard.press('ArrowDown');
      await F.keyboard.press('Enter');
      await F.getByRole('heading', { name: 'Heidi Hopper' }).waitFor();
      // Opening a conversation puts focus in its composer; back to the list to move again.
      await F.waitForFunction(() => document.activeElement?.getAttribute('aria-label') === 'Message');
      await F.locator('.conv-item[aria-current="true"]').focus();
      await F.keyboard.press('ArrowUp');
      await F.keyboard.press('Enter');
      await F.getByRole('heading', { name: 'Weekend plans' }).waitFor();

      // A long history: the newest page shows, older pages load as one scrolls up.
      for (let i = 0; i < 80; i++) await grace.api.postMessage(gid, `hist-${i}`, `history ${i}`);
      await F.locator('.msg .body', { hasText: 'history 79' }).waitFor();
      // Frank signs in on a second browser with nothing cached: only the newest page is fetched.
      const second = await newPage();
      const F2 = second.page;
      await F2.getByLabel('Username').fill('frank');
      await F2.getByLabel('Password').fill(PASSWORD);
      await F2.getByRole('button', { name: 'Sign in' }).click();
      await F2.locator('.conv-item', { hasText: 'Weekend plans' }).click();
      await F2.locator('.msg .body', { hasText: 'history 79' }).waitFor();
      assert.equal(await F2.locator('.msg .body', { hasText: 'Hiking on Saturday?' }).count(), 0, 'old messages not loaded yet');
      const timeline = F2.getByRole('log', { name: 'Messages' });
      for (let i = 0; i < 20 && (await F2.locator('.history-note.start').count()) === 0; i++) {
        await timeline.evaluate((el) => el.scrollTo(0, 0));
        await F2.waitForTimeout(150);
      }
      await F2.locator('.history-note.start').waitFor();
      const all = await timelineBodies(F2);
      await second.ctx.close();
      assert.equal(all[0], 'Hiking on Saturday?');
      assert.equal(all.filter((b) => b.startsWith('history ')).length, 80);
      assert.equal(new Set(all).size, all.length, 'no message shown twice');
    } finally {
      for (const c of others) c.stop();
      await frank.ctx.close();
    }
  });
});
