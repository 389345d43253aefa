import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { describe, expect, test } from 'vitest';
import { createFileStore } from '../../src/adapters/backup-store/file-store.js';
import { NotFoundError } from '../../src/adapters/backup-store/port.js';

function newStore() {
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-store-'));
  return { dir, store: createFileStore(pathToFileURL(dir).toString()) };
}

async function text(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

describe('file store', () => {
  test('writes, lists, reads and removes', async () => {
    const { dir, store } = newStore();
    expect(await store.write('a_20240101_000000.dump', Readable.from(['hello ', 'world']))).toEqual({ size: 11 });
    writeFileSync(join(dir, 'notes.txt'), 'x');
    const listed = await store.list();
    expect(listed.map((o) => [o.name, o.size]).sort()).toEqual([
      ['a_20240101_000000.dump', 11],
      ['notes.txt', 1],
    ]);
    expect(await text(await store.read('a_20240101_000000.dump'))).toBe('hello world');
    await store.remove('a_20240101_000000.dump');
    expect((await store.list()).map((o) => o.name)).toEqual(['notes.txt']);
  });

  test('a stream that fails midway leaves nothing under the final name and no partial file', async () => {
    const { dir, store } = newStore();
    const failing = new Readable({
      read() {
        this.push('part of a backup');
        this.destroy(new Error('pg_dump died'));
      },
    });
    await expect(store.write('a_20240101_000000.dump', failing)).rejects.toThrow('pg_dump died');
    expect(readdirSync(dir)).toEqual([]);
    expect(await store.list()).toEqual([]);
  });

  test('names with paths are refused before touching the disk', async () => {
    const { store } = newStore();
    await expect(store.read('../etc/passwd')).rejects.toThrow('not a plain file name');
    await expect(store.write('x/../../y', Readable.from(['x']))).rejects.toThrow('not a plain file name');
    await expect(store.remove('/etc/passwd')).rejects.toThrow('not a plain file name');
  });

  test('a missing object is a NotFoundError; a missing folder lists as empty', async () => {
    const { store } = newStore();
    await expect(store.read('nope_20240101_000000.dump')).rejects.toBeInstanceOf(NotFoundError);
    const absent = createFileStore('file:///nonexistent/lifeline-folder');
    expect(await absent.list()).toEqual([]);
  });

  test('an existing backup is replaced whole, never mixed', async () => {
    const { dir, store } = newStore();
    await store.write('a_20240101_000000.dump', Readable.from(['first version, longer']));
    await store.write('a_20240101_000000.dump', Readable.from(['second']));
    expect(readFileSync(join(dir, 'a_20240101_000000.dump'), 'utf8')).toBe('second');
  });

  test('rename moves a file within the folder, replacing what was under the new name; a missing source is a NotFoundError', async () => {
    const { dir, store } = newStore();
    await store.write('a_20240101_000000.dump.pending-0a1b2c3d', Readable.from(['checked']));
    writeFileSync(join(dir, 'a_20240101_000000.dump'), 'older');
    await store.rename('a_20240101_000000.dump.pending-0a1b2c3d', 'a_20240101_000000.dump');
    expect(readdirSync(dir)).toEqual(['a_20240101_000000.dump']);
    expect(readFileSync(join(dir, 'a_20240101_000000.dump'), 'utf8')).toBe('checked');
    const gone = store.rename('a_20240101_000000.dump.pending-0a1b2c3d', 'b_20240101_000000.dump');
    await expect(gone).rejects.toBeInstanceOf(NotFoundError);
    const outside = store.rename('a_20240101_000000.dump', '../b_20240101_000000.dump');
    await expect(outside).rejects.toThrow('not a plain file name');
    expect(readdirSync(dir)).toEqual(['a_20240101_000000.dump']);
  });
});
