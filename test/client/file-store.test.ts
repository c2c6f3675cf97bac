import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FileStore, createNodeClient } from '../../src/client/node.js';

test('two file stores on one path in one process write concurrently without clashing temp files', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'parley-filestore-'));
  try {
    const path = join(dir, 'client.json');
    const a = new FileStore(path);
    const b = new FileStore(path);
    const writes: Promise<void>[] = [];
    for (let i = 0; i < 50; i++) {
      writes.push(a.set(`a${i}`, i), b.set(`b${i}`, i));
    }
    await Promise.all(writes);
    await Promise.all([a.settled(), b.settled()]);
    // Each store rewrote the whole file; the last rename wins and no temp file is left behind.
    assert.deepEqual(await readdir(dir), ['client.json']);
    const reread = new FileStore(path);
    const keys = await reread.keys('');
    assert.ok(keys.length === 50, `one store's 50 keys survive, got ${keys.length}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('settled() waits for the writes already started, so the directory can be removed right after', async () => {
  for (let round = 0; round < 20; round++) {
    const dir = await mkdtemp(join(tmpdir(), 'parley-filestore-'));
    const store = new FileStore(join(dir, 'nested', 'client.json'));
    for (let i = 0; i < 10; i++) void store.set(`k${i}`, 'x'.repeat(10_000));
    await store.settled();
    // Without settled() this races the temp file's write and rename (ENOTEMPTY), or the
    // store's mkdir recreates the directory after it was removed.
    await rm(dir, { recursive: true });
    await assert.rejects(readdir(dir), { code: 'ENOENT' });
  }
});

test('a client that was never started closes at once', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'parley-filestore-'));
  try {
    const client = createNodeClient({ url: 'http://127.0.0.1:9', storagePath: join(dir, 'c.json') });
    await client.close();
    assert.equal(client.state, 'offline');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a read right after a write sees it, before the file is rewritten', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'parley-filestore-'));
  try {
    const store = new FileStore(join(dir, 'c.json'));
    void store.set('a', 1);
    void store.set('b', { x: [1, 2] });
    void store.delete('a');
    assert.equal(await store.get('a'), undefined);
    assert.deepEqual(await store.get('b'), { x: [1, 2] });
    await store.settled();
    assert.deepEqual(await new FileStore(join(dir, 'c.json')).keys(''), ['b']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
