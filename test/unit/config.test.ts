import { test } from 'node:test';
import assert from 'node:assert/strict';
import { defaultConfig, loadConfig, settingsMarkdown, SETTINGS } from '../../src/config.js';

test('defaults match the issue: 127.0.0.1:8080, ./data, 4,000-character bodies, 64 KiB frames', () => {
  const c = defaultConfig();
  assert.equal(c.host, '127.0.0.1');
  assert.equal(c.port, 8080);
  assert.equal(c.dataDir, './data');
  assert.equal(c.maxBodyChars, 4000);
  assert.equal(c.maxFrameBytes, 65536);
  assert.ok(c.heartbeatMs <= 30_000);
});

test('env vars override defaults and flags override env vars, in both flag forms', () => {
  const c = loadConfig({ PARLEY_PORT: '9000', PARLEY_DATA_DIR: '/tmp/x' }, ['--port', '9100', '--max-body=100']);
  assert.equal(c.port, 9100);
  assert.equal(c.dataDir, '/tmp/x');
  assert.equal(c.maxBodyChars, 100);
});

test('bad values and unknown flags are refused with a message naming them', () => {
  assert.throws(() => loadConfig({ PARLEY_PORT: 'eighty' }), /PARLEY_PORT/);
  assert.throws(() => loadConfig({}, ['--nope', '1']), /--nope/);
  assert.throws(() => loadConfig({}, ['--port']), /needs a value/);
  assert.throws(() => loadConfig({ PARLEY_SQLITE_SYNCHRONOUS: 'sometimes' }), /SYNCHRONOUS/);
  assert.throws(() => loadConfig({ PARLEY_DATABASE_APPEND_BATCHES: '0' }), /APPEND_BATCHES/);
  assert.throws(() => loadConfig({}, ['--database-append-batches', '10']), /APPEND_BATCHES/);
  assert.equal(loadConfig({ PARLEY_DATABASE_APPEND_BATCHES: '4' }).databaseAppendBatches, 4);
});

test('the README table lists every setting', () => {
  const md = settingsMarkdown();
  for (const s of SETTINGS) assert.ok(md.includes(s.env), s.env);
});
