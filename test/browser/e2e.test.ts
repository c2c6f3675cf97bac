/**
 * End-to-end encryption (R18) in the web client, in Debian's Chromium (playwright-core): Kim
 * starts an encrypted chat with Lou from the New chat dialog; both browsers show the lock, read
 * each other's messages and their previews, while the server holds only envelopes; both see the
 * same safety number; the device's private keys in IndexedDB are not extractable, and serve again
 * after a reload; search says it
 * is not available there and finds nothing of it; Lou, signed in on a new browser profile, sees
 * a readable placeholder for what came before and reads what comes after.
 * Saves screenshots to docs/screenshots/ with PARLEY_SCREENSHOTS=1.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { ENVELOPE_PREFIX } from '../../src/protocol/e2e.js';
import { PASSWORD, ROOT, hasChromium, register, startApp, type App } from './_app.js';

let SHOTS = join(ROOT, 'docs/screenshots');
let app: App;

before(async () => {
  if (!hasChromium) return;
  app = await startApp('parley-e2e-browser-');
  if (process.env.PARLEY_SCREENSHOTS !== '1') SHOTS = join(app.tmp, 'screenshots');
  await mkdir(SHOTS, { recursive: true });
});

after(async () => {
  await app?.close();
});

async function send(page: Page, text: string): Promise<void> {
  const composer = page.getByRole('textbox', { name: 'Message' });
  await composer.fill(text);
  await composer.press('Enter');
  await page.locator('.msg.mine[data-message-id] .body', { hasText: text }).waitFor();
}

describe('end-to-end encryption in Chromium', { skip: !hasChromium && 'chromium not installed' }, () => {
  test('an encrypted direct chat: chosen in New chat, locked, read on both sides, a safety number, no search, and a placeholder on a later device', async () => {
    const kim = await app.newPage({ failFast: true });
    const lou = await app.newPage({ failFast: true });
    const K = kim.page;
    const L = lou.page;
    await register(K, 'kim', 'Kim Keeper');
    await register(L, 'lou', 'Lou Listener');

    // Kim picks "End-to-end encrypted", then Lou.
    await K.getByRole('button', { name: 'New chat' }).first().click();
    const dialog = K.getByRole('dialog');
    await dialog.getByText('Only the people in it can read its messages', { exact: false }).waitFor();
    await dialog.getByRole('checkbox', { name: /End-to-end encrypted/ }).check();
    await dialog.getByLabel('Username').fill('lo');
    await K.locator('.user-item[data-username="lou"]').click();
    await K.getByRole('heading', { name: 'Lou Listener' }).waitFor();
    await K.getByTestId('conv-e2e').waitFor();
    assert.equal(await K.getByRole('textbox', { name: 'Message' }).getAttribute('placeholder'), 'Write an encrypted message');
    await send(K, 'Meet at the lighthouse at nine');

    // Lou: the chat is locked in the list, its preview reads, the message reads.
    const item = L.locator('.conv-item', { hasText: 'Kim Keeper' });
    await item.locator('[data-testid="e2e-mark"]').waitFor();
    assert.match((await item.getAttribute('aria-label')) ?? '', /end-to-end encrypted/);
    await item.locator('.conv-preview', { hasText: 'Meet at the lighthouse at nine' }).waitFor();
    await item.click();
    await L.locator('.msg .body', { hasText: 'Meet at the lighthouse at nine' }).waitFor();
    await send(L, 'See you there, bring a torch');
    await K.locator('.msg .body', { hasText: 'See you there, bring a torch' }).waitFor();
    await K.locator('.conv-item', { hasText: 'Lou Listener' }).locator('[data-testid="e2e-mark"]').waitFor();

    // The server holds envelopes only.
    const store = app.server.core.engines.store;
    const kimId = (await store.users.byUsername('kim'))?.id as string;
    const convId = (await store.conversations.idsForUser(kimId))[0] as string;
    const held = await store.events.messages(convId, { limit: 10 });
    assert.equal(held.messages.length, 2);
    for (const m of held.messages) assert.ok(m.body.startsWith(ENVELOPE_PREFIX) && !m.body.includes('lighthouse') && !m.body.includes('torch'), m.body);

    // This browser keeps its private keys as CryptoKeys that cannot be read out.
    const extractable = await K.evaluate(
      () =>
        new Promise<boolean[]>((resolve, reject) => {
          const open = indexedDB.open('parley', 1);
          open.onerror = () => reject(new Error('open failed'));
          open.onsuccess = () => {
            const all = open.result.transaction('kv').objectStore('kv').getAll();
            all.onsuccess = () => {
              const rec = (all.result as { format?: string; keys?: { identity: CryptoKeyPair; agreement: CryptoKeyPair } }[]).find((v) => v?.format === 'cryptokey');
              resolve(rec?.keys ? [rec.keys.identity.privateKey.extractable, rec.keys.agreement.privateKey.extractable] : []);
            };
          };
        }),
    );
    assert.deepEqual(extractable, [false, false], 'both private keys stored, neither extractable');

    // Both see the same safety number.
    const safety = async (page: Page): Promise<string> => {
      await page.getByTestId('conv-e2e').click();
      const n = (await page.getByTestId('safety-number').textContent()) ?? '';
      await page.getByRole('dialog').getByRole('button', { name: 'Close' }).last().click();
      return n;
    };
    const kimNumber = await safety(K);
    assert.match(kimNumber, /^(\d{5} ){11}\d{5}$/);
    assert.equal(await safety(L), kimNumber);

    await K.screenshot({ path: join(SHOTS, 'e2e-chat.png') });

    // A reload: the keys come back from IndexedDB, what was read stays readable, and the next message is encrypted with them.
    await K.reload();
    await K.locator('.conv-item', { hasText: 'Lou Listener' }).click();
    await K.locator('.msg .body', { hasText: 'See you there, bring a torch' }).waitFor();
    await send(K, 'Sent after a reload');
    await L.locator('.msg .body', { hasText: 'Sent after a reload' }).waitFor();

    // Search: not offered for this chat, and nothing of it is found anywhere.
    await K.getByRole('button', { name: 'Search messages' }).click();
    await K.getByTestId('search-e2e').waitFor();
    assert.match((await K.getByTestId('search-e2e').textContent()) ?? '', /not available in Lou Listener/);
    await K.getByRole('searchbox', { name: 'Search messages' }).fill('lighthouse');
    await K.getByTestId('search-status').filter({ hasText: 'No messages match.' }).waitFor();
    assert.equal(await K.locator('.search-result').count(), 0);
    await K.keyboard.press('Escape');

    // Lou on a new browser profile: what came before cannot be read here, and says so; what comes after reads.
    const louLater = await app.newPage({ failFast: true });
    const L2 = louLater.page;
    await L2.getByLabel('Username').fill('lou');
    await L2.getByLabel('Password').fill(PASSWORD);
    await L2.getByRole('button', { name: 'Sign in' }).click();
    await L2.locator('.conv-item', { hasText: 'Kim Keeper' }).click();
    const placeholders = L2.getByTestId('unreadable');
    await placeholders.nth(2).waitFor();
    assert.deepEqual(
      (await placeholders.allTextContents()).map((t) => t.trim()),
      Array.from({ length: 3 }, () => 'Sent before this device was signed in; it cannot be read here.'),
    );
    await send(K, 'Are you on your laptop now?');
    await L2.locator('.msg .body', { hasText: 'Are you on your laptop now?' }).waitFor();
    await L2.screenshot({ path: join(SHOTS, 'e2e-new-device.png') });
    await L.locator('.msg .body', { hasText: 'Are you on your laptop now?' }).waitFor();
    assert.deepEqual(app.dialogs, []);
    await Promise.all([kim.ctx.close(), lou.ctx.close(), louLater.ctx.close()]);
  });
});
