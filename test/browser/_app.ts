/**
 * What every browser test starts from: the web app built as shipped, a real
 * Parley server serving it, and Debian's Chromium driven by playwright-core
 * (never a downloaded browser). Without /usr/bin/chromium the tests skip,
 * except in CI, where that is an error.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { startServer, type ParleyServer } from '../../src/server.js';

const CHROMIUM = '/usr/bin/chromium';
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) {
  if (process.env.CI === 'true') throw new Error(`${CHROMIUM} is missing; CI must install the chromium package`);
  console.log(`# skipping browser tests: ${CHROMIUM} is not installed (apt-get install chromium)`);
}

export const PASSWORD = 'a long password';
export const XSS = '<img src=x onerror=alert(1)>';

/** How long a fail-fast page waits for anything. */
export const FAIL_FAST_MS = 10_000;

export interface App {
  server: ParleyServer;
  browser: Browser;
  /** A temporary folder of this run (the build, the data), removed by close(). */
  tmp: string;
  /** Messages of every dialog (alert, confirm) the pages opened; each is dismissed. */
  dialogs: string[];
  /**
   * A new browser context (its own profile) with the app open. `failFast`
   * makes every wait of the page give up after FAIL_FAST_MS instead of
   * Playwright's 30 s, so a control that does nothing fails the test quickly.
   */
  newPage(opts?: { failFast?: boolean }): Promise<{ ctx: BrowserContext; page: Page }>;
  close(): Promise<void>;
}

export async function startApp(tmpPrefix: string): Promise<App> {
  const tmp = await mkdtemp(join(tmpdir(), tmpPrefix));
  const webDir = join(tmp, 'web');
  // Build the app as shipped, so the test sees exactly what `npm start` serves.
  const { build } = await import('vite');
  await build({ configFile: join(ROOT, 'web/vite.config.ts'), logLevel: 'warn', build: { outDir: webDir, emptyOutDir: true, sourcemap: false } });
  const server = await startServer({ host: '127.0.0.1', port: 0, dataDir: join(tmp, 'data'), webDir, logLevel: 'silent', argon2MemoryKiB: 1024, argon2TimeCost: 1 });
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    // launch() runs each browser on a fresh temporary profile (user data dir).
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const dialogs: string[] = [];
  return {
    server,
    browser,
    tmp,
    dialogs,
    async newPage(opts = {}) {
      const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 }, colorScheme: 'light' });
      if (opts.failFast) ctx.setDefaultTimeout(FAIL_FAST_MS);
      const page = await ctx.newPage();
      page.on('dialog', (d) => {
        dialogs.push(d.message());
        void d.dismiss();
      });
      await page.goto(server.url);
      return { ctx, page };
    },
    async close() {
      await browser.close();
      await server.close();
      await rm(tmp, { recursive: true, force: true });
    },
  };
}

/** Signs a new account up through the app's own form, and waits for the conversation list. */
export async function register(page: Page, username: string, displayName: string): Promise<void> {
  await page.getByRole('button', { name: 'Create an account' }).click();
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Display name').fill(displayName);
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('complementary', { name: 'Conversations' }).waitFor();
}
