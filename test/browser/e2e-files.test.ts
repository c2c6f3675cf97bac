/**
 * Files in an end-to-end encrypted chat (R14 × R18) in the web client, in Debian's Chromium
 * (playwright-core): Kim attaches an image and a text file in an encrypted chat with Lou; the
 * browser encrypts them before they go (the server's references and bytes say nothing of them);
 * Lou sees the image in place, decrypted from the whole file, at its own size, and the text file
 * as a chip with its real name that downloads the exact bytes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import sharp from 'sharp';
import { hasChromium, register, startApp, type App } from './_app.js';

let app: App;

before(async () => {
  if (!hasChromium) return;
  app = await startApp('parley-e2e-files-browser-');
});

after(async () => {
  await app?.close();
});

describe('files in an encrypted chat in Chromium', { skip: !hasChromium && 'chromium not installed' }, () => {
  test('an image and a file sent in an encrypted chat show for the other user, decrypted in the browser', async () => {
    const kim = await app.newPage({ failFast: true });
    const lou = await app.newPage({ failFast: true });
    const K = kim.page;
    const L = lou.page;
    await register(K, 'kimf', 'Kim Files');
    await register(L, 'louf', 'Lou Files');

    await K.getByRole('button', { name: 'New chat' }).first().click();
    const dialog = K.getByRole('dialog');
    await dialog.getByRole('checkbox', { name: /End-to-end encrypted/ }).check();
    await dialog.getByLabel('Username').fill('louf');
    await K.locator('.user-item[data-username="louf"]').click();
    await K.getByTestId('conv-e2e').waitFor();

    const image = await sharp({ create: { width: 200, height: 150, channels: 3, background: '#1c7ed6' } }).png().toBuffer();
    const notes = Buffer.from(`the combination is ${Math.random().toString(36).slice(2)}\n`);
    await K.locator('[data-testid="file-input"]').setInputFiles([
      { name: 'harbour.png', mimeType: 'image/png', buffer: image },
      { name: 'notes.txt', mimeType: 'text/plain', buffer: notes },
    ]);
    await K.locator('[data-testid="tray-item"][data-state="done"]').nth(1).waitFor();
    const composer = K.getByRole('textbox', { name: 'Message' });
    await composer.fill('From the boat');
    await composer.press('Enter');
    await K.locator('.msg.mine[data-message-id]', { hasText: 'From the boat' }).locator('[data-testid="att-thumb"]').waitFor();

    // The server: opaque references, and the file's bytes nowhere in the clear.
    const store = app.server.core.engines.store;
    const kimId = (await store.users.byUsername('kimf'))?.id as string;
    const convId = (await store.conversations.idsForUser(kimId))[0] as string;
    const [held] = (await store.events.messages(convId, { limit: 1 })).messages;
    assert.deepEqual(held?.attachments?.map((a) => [a.type, a.name, a.encrypted]), [
      ['application/octet-stream', 'file', true],
      ['application/octet-stream', 'file', true],
    ]);
    assert.ok(held && !held.body.includes('harbour') && !held.body.includes('notes.txt'));
    const rec = await store.attachments.readable(held.attachments?.[1]?.id as string, kimId);
    assert.ok(rec?.encrypted);

    // Lou: the image in place, decrypted, at its own size; the file as a chip with its real name.
    await L.locator('.conv-item', { hasText: 'Kim Files' }).click();
    const msg = L.locator('.msg[data-message-id]', { hasText: 'From the boat' });
    const thumb = msg.locator('[data-testid="att-thumb"]');
    await thumb.waitFor();
    await L.waitForFunction((el) => (el as HTMLImageElement).complete && (el as HTMLImageElement).naturalWidth > 0, await thumb.elementHandle());
    const shown = await thumb.evaluate((el) => ({ src: (el as HTMLImageElement).src, w: (el as HTMLImageElement).naturalWidth, h: (el as HTMLImageElement).naturalHeight, alt: (el as HTMLImageElement).alt }));
    assert.deepEqual([shown.w, shown.h, shown.alt], [200, 150, 'harbour.png']);
    assert.match(shown.src, /^blob:/, 'from an object URL');
    await msg.locator('[data-testid="att-file"] .att-name', { hasText: 'notes.txt' }).waitFor();

    const [download] = await Promise.all([L.waitForEvent('download'), msg.getByRole('button', { name: 'Download notes.txt' }).click()]);
    assert.equal(download.suggestedFilename(), 'notes.txt');
    const path = await download.path();
    assert.deepEqual(await readFile(path), notes, 'the exact bytes');
    assert.deepEqual(app.dialogs, []);
    await Promise.all([kim.ctx.close(), lou.ctx.close()]);
  });
});
