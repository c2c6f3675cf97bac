/**
 * Attachments (R14) in the web client, end to end in Debian's Chromium (playwright-core): Ana and
 * Ben, each in a browser, in a direct chat. Ana picks an image and a PDF with the attach button,
 * sees them upload in the tray, and sends them with a caption; Ben sees the image's thumbnail (an
 * object URL: fetched with the token in a header, never in a URL), opens the full image, and
 * downloads the PDF under its name. A file of a type the server does not take is refused in the
 * tray with a sentence before anything is sent; a file dropped on the conversation is attached.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import sharp from 'sharp';
import { createNodeClient } from '../../src/client/node.js';
import { PASSWORD, ROOT, hasChromium, register, startApp, type App } from './_app.js';

// As in chat.test.ts: docs/screenshots/ only with PARLEY_SCREENSHOTS=1, else a temp folder.
let SHOTS = join(ROOT, 'docs/screenshots');
let app: App;
before(async () => {
  if (!hasChromium) return;
  app = await startApp('parley-attach-');
  if (process.env.PARLEY_SCREENSHOTS !== '1') SHOTS = join(app.tmp, 'screenshots');
  await mkdir(SHOTS, { recursive: true });
});
after(async () => {
  await app?.close();
});

const newPage = (): Promise<{ ctx: BrowserContext; page: Page }> => app.newPage({ failFast: true });

/** Every request the page makes to the attachments API: its URL and whether it carried a bearer token. */
function watchAttachmentRequests(page: Page): { url: string; bearer: boolean }[] {
  const seen: { url: string; bearer: boolean }[] = [];
  page.on('request', (r) => {
    if (r.url().includes('/v1/attachments')) seen.push({ url: r.url(), bearer: /^Bearer \S+/.test(r.headers().authorization ?? '') });
  });
  return seen;
}

describe('attachments in Chromium', { skip: !hasChromium && 'chromium not installed' }, () => {
  test('Ana sends an image and a PDF from the attach button; Ben sees the thumbnail, opens the image, downloads the PDF; a refused type and a dropped file', async () => {
    const a = await newPage();
    const b = await newPage();
    const A = a.page;
    const B = b.page;
    const aRequests = watchAttachmentRequests(A);
    const bRequests = watchAttachmentRequests(B);
    try {
      await register(A, 'ana', 'Ana Artist');
      await register(B, 'ben', 'Ben Browser');
      // Ben's phone starts the chat.
      const phone = createNodeClient({ url: app.server.url });
      await phone.login('ben', PASSWORD);
      const anaId = (await phone.searchUsers('ana')).find((u) => u.username === 'ana')?.id;
      assert.ok(anaId);
      await phone.startDirect(anaId);
      phone.stop();

      const image = await sharp({ create: { width: 800, height: 600, channels: 3, background: '#f08c00' } })
        .composite([{ input: Buffer.from('<svg width="800" height="600"><circle cx="400" cy="300" r="200" fill="#1c7ed6"/></svg>') }])
        .png()
        .toBuffer();
      const pdf = Buffer.concat([Buffer.from('%PDF-1.4\n% a tiny report\n'), Buffer.alloc(3000, 32)]);

      await A.locator('.conv-item', { hasText: 'Ben Browser' }).click();
      await A.locator('[data-testid="file-input"]').setInputFiles([
        { name: 'sunset.png', mimeType: 'image/png', buffer: image },
        { name: 'report.pdf', mimeType: 'application/pdf', buffer: pdf },
      ]);
      await A.locator('[data-testid="tray-item"][data-state="done"]').nth(1).waitFor();
      await A.screenshot({ path: join(SHOTS, 'attach-tray.png') });
      assert.deepEqual(await A.locator('[data-testid="tray-item"] .att-name').allTextContents(), ['sunset.png', 'report.pdf']);

      // A type the server does not take: refused in the tray with a sentence, nothing uploaded.
      const uploadsBefore = aRequests.filter((r) => r.url.endsWith('/v1/attachments') || r.url.includes('/v1/attachments?')).length;
      await A.locator('[data-testid="file-input"]').setInputFiles([{ name: 'setup.exe', mimeType: 'application/x-msdownload', buffer: Buffer.from('MZ') }]);
      const refused = A.locator('[data-testid="tray-item"][data-state="failed"]');
      await refused.waitFor();
      assert.equal(await refused.locator('.tray-error').textContent(), 'setup.exe is a kind of file that cannot be sent here (application/x-msdownload).');
      assert.equal(aRequests.filter((r) => r.url.endsWith('/v1/attachments') || r.url.includes('/v1/attachments?')).length, uploadsBefore, 'the refused file was not sent');
      await A.getByRole('button', { name: 'Remove setup.exe' }).click();

      const composer = A.getByRole('textbox', { name: 'Message' });
      await composer.fill('From the beach');
      await composer.press('Enter');
      await A.locator('.msg.mine[data-message-id]', { hasText: 'From the beach' }).locator('[data-testid="att-thumb"]').waitFor();
      assert.equal(await A.locator('[data-testid="tray-item"]').count(), 0, 'the tray is empty once sent');

      // Ben sees the thumbnail, as an object URL of the 320-pixel WebP.
      await B.locator('.conv-item', { hasText: 'Ana Artist' }).click();
      const msg = B.locator('.msg.theirs', { hasText: 'From the beach' });
      const thumb = msg.locator('[data-testid="att-thumb"]');
      await thumb.waitFor();
      await B.waitForFunction((el) => (el as HTMLImageElement).complete && (el as HTMLImageElement).naturalWidth > 0, await thumb.elementHandle());
      const shown = await thumb.evaluate((el) => ({ src: (el as HTMLImageElement).src, w: (el as HTMLImageElement).naturalWidth, h: (el as HTMLImageElement).naturalHeight, alt: (el as HTMLImageElement).alt }));
      assert.match(shown.src, /^blob:/);
      assert.deepEqual([shown.w, shown.h, shown.alt], [320, 240, 'sunset.png']);
      // The PDF as a chip with its name and size.
      assert.equal(await msg.locator('[data-testid="att-file"] .att-name').textContent(), 'report.pdf');
      assert.equal(await msg.locator('[data-testid="att-file"] .att-size').textContent(), '3 KB');

      await B.screenshot({ path: join(SHOTS, 'attachments.png') });
      // The full image opens in a viewer.
      await msg.getByRole('button', { name: 'Open image sunset.png' }).click();
      const full = B.locator('[data-testid="att-full"]');
      await full.waitFor();
      await B.waitForFunction((el) => (el as HTMLImageElement).naturalWidth > 0, await full.elementHandle());
      assert.equal(await full.evaluate((el) => (el as HTMLImageElement).naturalWidth), 800);
      await B.keyboard.press('Escape');
      await full.waitFor({ state: 'detached' });

      // The PDF downloads under its name, with its exact bytes.
      const [download] = await Promise.all([B.waitForEvent('download'), msg.getByRole('button', { name: 'Download report.pdf' }).click()]);
      assert.equal(download.suggestedFilename(), 'report.pdf');
      const path = await download.path();
      assert.ok(path);
      assert.ok((await readFile(path)).equals(pdf));

      // A file dropped on the conversation goes into the tray and out with the next message.
      await A.locator('section.conversation').evaluate((el) => {
        const dt = new DataTransfer();
        dt.items.add(new File(['dropped text'], 'notes.txt', { type: 'text/plain' }));
        el.dispatchEvent(new DragEvent('dragover', { dataTransfer: dt, bubbles: true, cancelable: true }));
        el.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
      });
      await A.locator('[data-testid="tray-item"][data-state="done"]', { hasText: 'notes.txt' }).waitFor();
      await A.getByRole('button', { name: 'Send' }).click();
      await B.locator('.msg.theirs [data-testid="att-file"]', { hasText: 'notes.txt' }).waitFor();

      // Every request for a file carried the token in its header, and no URL carried a token.
      for (const r of [...aRequests, ...bRequests]) {
        assert.ok(r.bearer, `no bearer header: ${r.url}`);
        assert.doesNotMatch(r.url, /token|eyJ/i, r.url);
      }
      assert.ok(bRequests.some((r) => r.url.endsWith('/thumbnail')), 'Ben fetched the thumbnail');
    } finally {
      await a.ctx.close();
      await b.ctx.close();
    }
  });
});
