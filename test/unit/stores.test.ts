import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { describe, expect, test } from 'vitest';
import { MemoryStore } from '../../src/adapters/backup-store/memory.js';
import { latestBackup, parseBackupName } from '../../src/domain/backups/names.js';
import { parseS3Url } from '../../src/adapters/backup-store/s3-store.js';
import { NotFoundError } from '../../src/adapters/backup-store/port.js';
import { createBackupStore } from '../../src/adapters/backup-store/stores.js';

async function text(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

describe('createBackupStore', () => {
  test('file:// gives a working folder store', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'lifeline-stores-'));
    const url = pathToFileURL(dir).toString();
    const store = createBackupStore(url);
    expect(store.location).toBe(url);
    expect(await store.write('a_20240101_000000.dump', Readable.from(['data']))).toEqual({ size: 4 });
    expect(readdirSync(dir)).toEqual(['a_20240101_000000.dump']);
  });

  test('s3:// gives an S3 store for that bucket and prefix, without any request', () => {
    const store = createBackupStore('s3://solosuccess-backups/production/');
    expect(store.location).toBe('s3://solosuccess-backups/production/');
    expect(parseS3Url('s3://solosuccess-backups/production/')).toEqual({
      bucket: 'solosuccess-backups',
      prefix: 'production/',
    });
    expect(parseS3Url('s3://solosuccess-backups/production')).toEqual({
      bucket: 'solosuccess-backups',
      prefix: 'production/',
    });
    expect(parseS3Url('s3://solosuccess-backups/a/b/')).toEqual({ bucket: 'solosuccess-backups', prefix: 'a/b/' });
    expect(parseS3Url('s3://solosuccess-backups')).toEqual({ bucket: 'solosuccess-backups', prefix: '' });
    expect(parseS3Url('s3://solosuccess-backups/')).toEqual({ bucket: 'solosuccess-backups', prefix: '' });
    expect(parseS3Url('s3://my.backups-1/with%20space/')).toEqual({ bucket: 'my.backups-1', prefix: 'with space/' });
  });

  test.each([
    ['s3://Bad_Bucket/x/', 'is not a valid S3 bucket name'],
    ['s3://ab/x/', 'is not a valid S3 bucket name'],
    ['s3:///x/', 'is not a valid S3 bucket name'],
    ['s3://bucket/a//b/', 'must not contain empty'],
    ['s3://bucket/a/../b/', 'must not contain empty'],
    ['s3://bucket/x/?versionId=1', 'no port, query or fragment'],
    ['s3://bucket:9000/x/', 'no port, query or fragment'],
  ])('a malformed S3 URL is refused with a clear error naming it: %s', (url, message) => {
    expect(() => createBackupStore(url)).toThrow(message);
    expect(() => createBackupStore(url)).toThrow(url);
  });

  test('an S3 URL carrying credentials is refused without repeating them', () => {
    expect(() => createBackupStore('s3://AKIDEXAMPLE:wJalrXUtnFEMIsecret@bucket/x/')).toThrow(
      'must not carry credentials',
    );
    for (const url of ['s3://AKIDEXAMPLE:wJalrXUtnFEMIsecret@bucket/x/', 's3://AKIDEXAMPLE:wJalrXUtnFEMIsecret@/x/']) {
      const err = (() => {
        try {
          createBackupStore(url);
        } catch (e) {
          return e as Error;
        }
        throw new Error('not refused');
      })();
      expect(err.message).toMatch(/must not carry credentials|is not a valid s3:\/\/ URL/);
      expect(err.message).not.toContain('wJalrXUtnFEMIsecret');
    }
  });

  test.each([
    'https://solosuccess-backups.s3.amazonaws.com/production/',
    'gs://bucket/prefix/',
    '/var/backups/production',
    'backups',
    '',
  ])('anything but file:// and s3:// is refused, naming both: %s', (url) => {
    expect(() => createBackupStore(url)).toThrow(
      `backup store "${url}" is not supported: use file:///absolute/path or s3://bucket/prefix/`,
    );
  });

  test('an unsupported URL with credentials in it is named without them', () => {
    expect(() => createBackupStore('https://user:hunter2@backups.example.com/x/')).toThrow(
      'backup store "https://…@backups.example.com/x/" is not supported',
    );
  });

  test('a file URL with a remote host is refused', () => {
    expect(() => createBackupStore('file://backup-server/var/backups')).toThrow('is not a local folder URL');
  });
});

describe('MemoryStore', () => {
  test('writes, lists, reads and removes; records the calls', async () => {
    const store = new MemoryStore();
    expect(store.location).toBe('memory://backups/');
    expect(await store.write('a_20240101_000000.dump', Readable.from(['hello ', 'world']))).toEqual({ size: 11 });
    expect((await store.list()).map((o) => [o.name, o.size])).toEqual([['a_20240101_000000.dump', 11]]);
    expect(await text(await store.read('a_20240101_000000.dump'))).toBe('hello world');
    expect(store.text('a_20240101_000000.dump')).toBe('hello world');
    await store.remove('a_20240101_000000.dump');
    await store.remove('a_20240101_000000.dump'); // absent: not an error, like the real stores
    expect(await store.list()).toEqual([]);
    expect(store.calls.map((c) => c.op)).toEqual(['write', 'list', 'read', 'remove', 'remove', 'list']);
  });

  test('a missing object is a NotFoundError; names with paths are refused', async () => {
    const store = new MemoryStore('memory://test/');
    const err = await store.read('nope_20240101_000000.dump').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as Error).message).toBe('nope_20240101_000000.dump is not in memory://test/');
    await expect(store.read('../etc/passwd')).rejects.toThrow('not a plain file name');
    await expect(store.write('a/b', Readable.from(['x']))).rejects.toThrow('not a plain file name');
    await expect(store.remove('/etc/passwd')).rejects.toThrow('not a plain file name');
    expect(() => store.put('x/y', 'z')).toThrow('not a plain file name');
  });

  test('an injected failure midway leaves nothing new, keeps the old object, and fires once', async () => {
    const store = new MemoryStore().put('a_20240101_000000.dump', 'the good one');
    store.failNextWrite({ afterBytes: 5 });
    const body = Readable.from(['0123', '4567', '89ab']);
    await expect(store.write('a_20240101_000000.dump', body)).rejects.toThrow('injected failure after 8 bytes');
    expect(body.destroyed).toBe(true);
    expect(store.text('a_20240101_000000.dump')).toBe('the good one');

    store.failNextWrite({ afterBytes: 0, error: new Error('disk full') });
    await expect(store.write('b_20240101_000000.dump', Readable.from(['x']))).rejects.toThrow('disk full');
    expect(store.objects.has('b_20240101_000000.dump')).toBe(false);

    expect(await store.write('b_20240101_000000.dump', Readable.from(['fine now']))).toEqual({ size: 8 });
    expect(store.text('b_20240101_000000.dump')).toBe('fine now');
  });

  test('a failing source stream rejects the write and stores nothing', async () => {
    const store = new MemoryStore();
    const failing = new Readable({
      read() {
        this.push('part of a backup');
        this.destroy(new Error('pg_dump died'));
      },
    });
    await expect(store.write('a_20240101_000000.dump', failing)).rejects.toThrow('pg_dump died');
    expect(await store.list()).toEqual([]);
  });

  test('seeded objects keep their times and feed the latest logic', async () => {
    const store = new MemoryStore()
      .put('app_20240101_000000.dump', 'a', new Date('2024-01-01T00:00:00Z'))
      .put('app_20240102_000000.sql.gz', 'b')
      .put('app_pre-restore_20240103_000000.dump', 'c')
      .put('notes.txt', 'd');
    const listed = await store.list();
    expect(listed.find((o) => o.name === 'app_20240101_000000.dump')?.modifiedAt.toISOString()).toBe(
      '2024-01-01T00:00:00.000Z',
    );
    const backups = listed.flatMap((o) => parseBackupName('app', o.name) ?? []);
    expect(latestBackup(backups)?.name).toBe('app_20240102_000000.sql.gz');
  });

  test('reads hand out copies: a consumer cannot change the stored bytes', async () => {
    const store = new MemoryStore().put('a_20240101_000000.dump', 'abc');
    for await (const chunk of await store.read('a_20240101_000000.dump')) (chunk as Buffer).fill(0);
    expect(store.text('a_20240101_000000.dump')).toBe('abc');
  });
});
