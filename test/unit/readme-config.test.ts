import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { settingsMarkdown } from '../../src/config.js';

test("the README's configuration table is the one generated from SETTINGS", () => {
  const readme = readFileSync('README.md', 'utf8');
  assert.ok(readme.includes(settingsMarkdown()), 'regenerate it with: node --import tsx src/cli.ts config --markdown');
});
