/**
 * Signing out and in on one page, in Debian's Chromium: the next account never
 * finds the last one's unsent drafts, and a guessed password ends in a wait the
 * form states in words.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Page } from 'playwright-core';
import { createNodeClient } from '../../src/client/node.js';
import { PASSWORD, hasChromium, register, startApp, type App } from './_app.js';

let app: App;

before(async () => {
  if (!hasChromium) return;
  app = await startApp('parley-browser-session-');
});

after(async () => {
  await app?.close();
});

async function signIn(page: Page, username: string, password: string): Promise<void> {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

describe('sessions in the web app', { skip: !hasChromium && 'chromium not installed' }, () => {
  test("the next account on the page does not see the last one's drafts", async () => {
    const tom = createNodeClient({ url: app.server.url });
    await tom.register('tom', PASSWORD, 'Tom Thumb');
    await tom.login('tom', PASSWORD);
    const { ctx, page } = await app.newPage();
    try {
      await register(page, 'sara', 'Sara Lee');
      const [sara] = await tom.searchUsers('sara');
      assert.ok(sara);
      await tom.createGroup('Shared room', [sara.id]);
      const list = page.getByRole('complementary', { name: 'Conversations' });
      await list.getByText('Shared room').click();
      const composer = page.getByRole('textbox', { name: 'Message' });
      await composer.fill('sara’s unsent secret');
      await page.getByRole('button', { name: 'Sign out' }).click();

      await signIn(page, 'tom', PASSWORD);
      await list.getByText('Shared room').click();
      await page.getByRole('heading', { name: 'Shared room' }).waitFor();
      assert.equal(await composer.inputValue(), '', 'the composer holds no draft of the account before');
    } finally {
      await ctx.close();
      await tom.close();
    }
  });

  test('after ten wrong passwords the form says how long to wait, and the right one waits too', async () => {
    const eve = createNodeClient({ url: app.server.url });
    await eve.register('eve', PASSWORD, 'Eve');
    await eve.close();
    const { ctx, page } = await app.newPage();
    try {
      const alert = page.getByRole('alert');
      for (let i = 0; i < 10; i++) {
        await signIn(page, 'eve', `wrong password ${i}`);
        await alert.filter({ hasText: 'Wrong username or password.' }).waitFor();
        await page.getByRole('button', { name: 'Sign in', exact: true }).waitFor();
      }
      await signIn(page, 'eve', 'wrong password 10');
      // The budget refills one attempt a minute: the wait is stated in seconds, up to a minute.
      await alert.filter({ hasText: /^Too many attempts\. Try again in (\d+ seconds|a minute)\.$/ }).waitFor();
      await signIn(page, 'eve', PASSWORD);
      await page.getByRole('button', { name: 'Sign in', exact: true }).waitFor();
      assert.match((await alert.textContent()) ?? '', /Too many attempts/);
      assert.equal(await page.getByRole('complementary', { name: 'Conversations' }).count(), 0, 'still signed out');
    } finally {
      await ctx.close();
    }
  });
});
