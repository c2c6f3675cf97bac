/**
 * Message search (R15) in the web client, end to end in Debian's Chromium (playwright-core):
 * Sam (in the browser) and Tom (an SDK client) talk in a direct chat and a group; Ulla and Vic,
 * strangers, in their own. Sam searches: matches of both his conversations newest first, the words
 * highlighted (case and accents aside), a body with HTML shown as text, nothing of the strangers';
 * "Only in <conversation>" narrows; Load more goes on past an empty page with a next; a result older
 * than the loaded history opens its conversation with the message in view and highlighted; a deleted
 * one says so; a transport failure and being offline are told.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { BrowserContext, Page } from 'playwright-core';
import type { ParleyServer } from '../../src/server.js';
import { createNodeClient, type ParleyClient } from '../../src/client/node.js';
import { PASSWORD, XSS, hasChromium, register, startApp, type App } from './_app.js';

/** The web client's history page (ParleyClient.loadLatest / loadOlder ask for 50). */
const HISTORY_PAGE = 50;

let app: App;
let server: ParleyServer;

before(async () => {
  if (!hasChromium) return;
  app = await startApp('parley-search-');
  server = app.server;
});

after(async () => {
  await app?.close();
});

const newPage = (): Promise<{ ctx: BrowserContext; page: Page }> => app.newPage({ failFast: true });

async function sdkUser(username: string, displayName: string): Promise<ParleyClient> {
  const c = createNodeClient({ url: server.url });
  await c.register(username, PASSWORD, displayName);
  await c.login(username, PASSWORD);
  return c;
}

async function until(what: string, cond: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Every search result shown, as the user reads it. */
function shownResults(page: Page): Promise<{ conv: string; sender: string; body: string; marks: string[]; time: string; imgs: number }[]> {
  return page.locator('.search-result').evaluateAll((els) =>
    els.map((e) => ({
      conv: e.querySelector('.search-conv')?.textContent ?? '',
      sender: e.querySelector('.search-sender')?.textContent ?? '',
      body: e.querySelector('.search-body')?.textContent ?? '',
      marks: [...e.querySelectorAll('.search-body mark')].map((m) => m.textContent ?? ''),
      time: e.querySelector('time')?.textContent ?? '',
      imgs: e.querySelectorAll('img').length,
    })),
  );
}

describe('message search in Chromium', { skip: !hasChromium && 'chromium not installed' }, () => {
  test('search: both conversations newest first and highlighted, not a stranger\'s, this conversation only, load more, jump to an old message, HTML as text, errors and offline', async () => {
    const tom = await sdkUser('tom', 'Tom Talker');
    const ulla = await sdkUser('ulla', 'Ulla Unknown');
    const vic = await sdkUser('vic', 'Vic Unknown');
    const first = await newPage();
    let sam = first;
    let S = sam.page;
    try {
      // Strangers talk about a zebrafish: Sam must never find it.
      const vicId = (await ulla.searchUsers('vic')).find((u) => u.username === 'vic')?.id;
      assert.ok(vicId);
      const theirs = await ulla.startDirect(vicId);
      await ulla.send(theirs.id, 'A zebrafish in the pond');

      await register(S, 'sam', 'Sam Seeker');
      const samId = (await tom.searchUsers('sam')).find((u) => u.username === 'sam')?.id;
      assert.ok(samId);

      // The direct chat: an old message, then more than a history page after it, so that opening
      // the chat does not load it.
      const direct = await tom.startDirect(samId);
      await tom.send(direct.id, 'Ancient walrus memo');
      for (let i = 0; i < HISTORY_PAGE + 10; i++) await tom.send(direct.id, `filler note ${i}`);
      await tom.send(direct.id, 'Lunch at the café at one?');
      const group = await tom.createGroup('Picnic crew', [samId]);
      await until('the direct chat sent', () => tom.outbox().length === 0);
      await tom.send(group.id, 'lunch plans anyone');

      // Sam answers in the group from the browser.
      await S.locator('.conv-item', { hasText: 'Picnic crew' }).click();
      await S.locator('.msg .body', { hasText: 'lunch plans anyone' }).waitFor();
      const composer = S.getByRole('textbox', { name: 'Message' });
      await composer.fill('Lunch sounds great');
      await composer.press('Enter');
      await S.locator('.msg.mine[data-message-id] .body', { hasText: 'Lunch sounds great' }).waitFor();
      await tom.send(direct.id, `${XSS} lunchbox`);
      await tom.send(direct.id, 'Doomed kiwi note');
      await until('tom sent all', () => tom.outbox().length === 0);
      // The index may lag a moment behind a send: wait until the server finds everything.
      await until('the index', async () => (await tom.searchMessages({ q: 'lunch' })).messages.length === 4 && (await tom.searchMessages({ q: 'kiwi' })).messages.length === 1);
      await until("the strangers' index", async () => (await vic.searchMessages({ q: 'zebrafish' })).messages.length === 1);

      // Sam signs in on another device (a new browser profile): it holds only the newest history
      // page of each chat, so the walrus memo is not loaded (this page got every message live).
      await first.ctx.close();
      sam = await newPage();
      S = sam.page;
      await S.getByLabel('Username').fill('sam');
      await S.getByLabel('Password').fill(PASSWORD);
      await S.getByRole('button', { name: 'Sign in' }).click();
      await S.locator('.conv-item', { hasText: 'Picnic crew' }).click();
      await S.locator('.msg .body', { hasText: 'Lunch sounds great' }).waitFor();
      const composerHere = S.getByRole('textbox', { name: 'Message' });

      // Ctrl+K opens the search, the input is focused and labelled.
      await composerHere.press('Control+k');
      const input = S.getByRole('searchbox', { name: 'Search messages' });
      await input.waitFor();
      assert.equal(await input.evaluate((el) => el === document.activeElement), true, 'the search input has the focus');
      await input.pressSequentially('LUNCH', { delay: 30 });
      const results = S.locator('.search-result');
      await results.nth(3).waitFor();
      const lunch = await shownResults(S);
      assert.deepEqual(
        lunch.map(({ conv, sender, body, marks }) => ({ conv, sender, body, marks })),
        [
          { conv: 'Tom Talker', sender: 'Tom Talker', body: `${XSS} lunchbox`, marks: ['lunch'] },
          { conv: 'Picnic crew', sender: 'You', body: 'Lunch sounds great', marks: ['Lunch'] },
          { conv: 'Picnic crew', sender: 'Tom Talker', body: 'lunch plans anyone', marks: ['lunch'] },
          { conv: 'Tom Talker', sender: 'Tom Talker', body: 'Lunch at the café at one?', marks: ['Lunch'] },
        ],
      );
      assert.ok(lunch.every((r) => r.time.length > 0), 'each result shows its time');
      // The body with HTML is text: no element was made of it, no script ran.
      assert.equal(lunch[0]?.imgs, 0);
      assert.equal(await S.locator('.search-panel img').count(), 0);

      // Accents and case aside; the start of a word is marked ("on" of "one").
      await input.fill('CAFE ON');
      await until('the café search', async () => (await shownResults(S)).length === 1 && (await shownResults(S))[0]?.body.startsWith('Lunch at the café') === true);
      assert.deepEqual((await shownResults(S))[0]?.marks, ['café', 'on']);

      // A stranger's word finds nothing.
      await input.fill('zebrafish');
      const status = S.getByTestId('search-status');
      await status.filter({ hasText: 'No messages match.' }).waitFor();
      assert.equal(await results.count(), 0);

      // Only in the open conversation (the group).
      await input.fill('lunch');
      await until('the lunch results again', async () => (await results.count()) === 4);
      const onlyHere = S.getByRole('checkbox', { name: 'Only in Picnic crew' });
      await onlyHere.check();
      await until('the narrowed results', async () => (await results.count()) === 2);
      assert.deepEqual(
        (await shownResults(S)).map((r) => `${r.conv}: ${r.body}`),
        ['Picnic crew: Lunch sounds great', 'Picnic crew: lunch plans anyone'],
      );
      await onlyHere.uncheck();
      await until('all lunch results again', async () => (await results.count()) === 4);

      // Load more, past a first page that comes back empty with a next (as the server may send).
      let emptyPages = 0;
      await S.route(/\/v1\/search\?/, async (route) => {
        const url = new URL(route.request().url());
        if (url.searchParams.get('q') === 'filler' && !url.searchParams.has('after')) {
          emptyPages++;
          return route.fulfill({ json: { messages: [], next: 'an-empty-page' } });
        }
        if (url.searchParams.get('after') === 'an-empty-page') {
          url.searchParams.delete('after');
          return route.continue({ url: url.toString() });
        }
        return route.continue();
      });
      await input.fill('filler');
      await results.nth(19).waitFor();
      assert.equal(emptyPages, 1);
      const more = S.getByRole('button', { name: 'Load more' });
      await more.click();
      await results.nth(39).waitFor();
      await more.click();
      await results.nth(HISTORY_PAGE + 9).waitFor();
      await more.waitFor({ state: 'detached' });
      const fillers = (await shownResults(S)).map((r) => r.body);
      assert.equal(fillers.length, HISTORY_PAGE + 10);
      assert.deepEqual(
        fillers,
        Array.from({ length: HISTORY_PAGE + 10 }, (_, i) => `filler note ${HISTORY_PAGE + 9 - i}`),
      );
      await S.unroute(/\/v1\/search\?/);

      // An old message, by keyboard: ↓ from the input to the result, Enter opens the direct chat
      // with the message loaded (older pages), in view and highlighted.
      const only = async (body: string): Promise<boolean> => {
        const r = await shownResults(S);
        return r.length === 1 && r[0]?.body === body;
      };
      await input.fill('walrus');
      await until('the walrus result', () => only('Ancient walrus memo'));
      await input.press('ArrowDown');
      assert.equal(await results.first().evaluate((el) => el === document.activeElement), true, '↓ moves to the first result');
      await results.first().press('Enter');
      await S.getByRole('heading', { name: 'Tom Talker' }).waitFor();
      const flashed = S.locator('.msg[data-flash="true"]');
      await flashed.waitFor();
      assert.equal(await flashed.locator('.body').textContent(), 'Ancient walrus memo');
      assert.ok((await S.locator('.timeline .msg').count()) > HISTORY_PAGE + 10, 'older history was loaded');
      const inView = await flashed.evaluate((el) => {
        const box = el.getBoundingClientRect();
        const tl = (el.closest('.timeline') as HTMLElement).getBoundingClientRect();
        return box.top >= tl.top && box.bottom <= tl.bottom;
      });
      assert.ok(inView, 'the message is scrolled into view');
      // The highlight is brief.
      await flashed.waitFor({ state: 'detached', timeout: 8000 });

      // A result deleted since it was found says so.
      await input.fill('kiwi');
      await until('the kiwi result', () => only('Doomed kiwi note'));
      const kiwi = (await tom.searchMessages({ q: 'kiwi' })).messages[0];
      assert.ok(kiwi);
      await tom.deleteMessage(kiwi.id);
      await S.locator('.msg.deleted').waitFor();
      await results.first().click();
      await S.locator('.conversation [role="alert"]', { hasText: 'could not be found' }).waitFor();

      // Escape closes the search; the button that opens it gets the focus back.
      await input.press('Escape');
      await input.waitFor({ state: 'detached' });
      const searchButton = S.getByRole('button', { name: 'Search messages' });
      await until('the focus back on the search button', () => searchButton.evaluate((el) => el === document.activeElement));
      await searchButton.click();
      await input.waitFor();

      // A transport failure is told with the app's words for it.
      await S.route(/\/v1\/search\?/, (route) => route.abort());
      await input.fill('lunch');
      await S.locator('.search-panel [role="alert"]', { hasText: 'Could not reach the server' }).waitFor();
      await S.unroute(/\/v1\/search\?/);

      // Offline: search needs the server, and says so; back online, it runs.
      await sam.ctx.setOffline(true);
      await S.locator('.banner[data-state="offline"]').waitFor();
      await input.fill('lunch sounds');
      await status.filter({ hasText: 'You are offline' }).waitFor();
      assert.equal(await results.count(), 0);
      await sam.ctx.setOffline(false);
      await results.first().waitFor();
      assert.equal((await shownResults(S))[0]?.body, 'Lunch sounds great');

      assert.deepEqual(app.dialogs, [], 'no script ran from a message body');
    } finally {
      for (const c of [tom, ulla, vic]) c.stop();
      await first.ctx.close();
      await sam.ctx.close();
    }
  });
});
