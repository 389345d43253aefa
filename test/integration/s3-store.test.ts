// The S3 backup store through the real AWS SDK client against a fake S3 on 127.0.0.1. The endpoint, region and
// (dummy) credentials reach the SDK the way they do in production: through its own environment chain.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, beforeEach, describe, expect, test } from 'vitest';
import { latestBackup, parseBackupName, sortNewestFirst } from '../../src/domain/backups/names.js';
import {
  createS3Client,
  createS3Store,
  DEFAULT_PART_SIZE_BYTES,
  DEFAULT_QUEUE_SIZE,
} from '../../src/adapters/backup-store/s3-store.js';
import { NotFoundError } from '../../src/adapters/backup-store/port.js';
import { S3StandIn } from '../../src/adapters/backup-store/stand-in.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const MB = 1_000_000;
const MiB = 1024 * 1024;
const ENV_KEYS = [
  'AWS_ENDPOINT_URL_S3',
  'AWS_ENDPOINT_URL',
  'AWS_REGION',
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_PROFILE',
] as const;

let fake: S3StandIn;
const savedEnv = new Map<string, string | undefined>();

function awsEnv(): Record<string, string> {
  return {
    AWS_ENDPOINT_URL_S3: fake.url,
    AWS_REGION: 'eu-west-1',
    AWS_ACCESS_KEY_ID: 'AKIDLIFELINETEST',
    AWS_SECRET_ACCESS_KEY: 'not-a-real-secret',
  };
}

beforeAll(async () => {
  fake = await new S3StandIn({ bucket: 'solosuccess-backups', maxKeys: 2 }).start();
  for (const key of ENV_KEYS) {
    savedEnv.set(key, process.env[key]);
    delete process.env[key];
  }
  Object.assign(process.env, awsEnv());
});

afterAll(async () => {
  for (const [key, value] of savedEnv) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  await fake?.stop();
});

beforeEach(() => {
  fake.objects.clear();
  fake.calls.length = 0;
  fake.failures.length = 0;
  fake.beforeAnswer = undefined;
});

const URL_ = 's3://solosuccess-backups/production/';

async function bytes(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** `total` random bytes in 64 KiB chunks; fails with `failWith` once `failAfter` bytes have been produced. */
function randomStream(
  total: number,
  failAfter?: number,
  failWith = 'pg_dump died',
  onProduce?: (produced: number) => void,
): { stream: Readable; sha256: () => string } {
  const hash = createHash('sha256');
  let produced = 0;
  const stream = new Readable({
    read() {
      if (failAfter !== undefined && produced >= failAfter) {
        this.destroy(new Error(failWith));
        return;
      }
      if (produced >= total) {
        this.push(null);
        return;
      }
      const chunk = randomBytes(Math.min(64 * 1024, total - produced));
      produced += chunk.length;
      hash.update(chunk);
      onProduce?.(produced);
      this.push(chunk);
    },
  });
  return { stream, sha256: () => hash.digest('hex') };
}

describe('S3 backup store (real SDK client, fake S3)', () => {
  test('write, list, read and remove round trip; a small object is one PutObject, path-style', async () => {
    const store = createS3Store(URL_);
    expect(store.location).toBe(URL_);
    expect(await store.write('app_20240101_000000.dump', Readable.from(['hello ', 'world']))).toEqual({ size: 11 });
    expect(fake.objects.get('production/app_20240101_000000.dump')?.toString()).toBe('hello world');
    expect(fake.calls.map((c) => c.op)).toEqual(['PutObject']);

    const listed = await store.list();
    expect(listed.map((o) => [o.name, o.size])).toEqual([['app_20240101_000000.dump', 11]]);
    expect(listed[0]!.modifiedAt).toBeInstanceOf(Date);
    expect(Math.abs(listed[0]!.modifiedAt.getTime() - Date.now())).toBeLessThan(5_000);

    const stream = await store.read('app_20240101_000000.dump');
    expect(stream).toBeInstanceOf(Readable);
    expect((await bytes(stream)).toString()).toBe('hello world');

    await store.remove('app_20240101_000000.dump');
    expect(fake.objects.size).toBe(0);
    expect(await store.list()).toEqual([]);
    expect(fake.calls.map((c) => [c.op, c.key, c.status])).toEqual([
      ['PutObject', 'production/app_20240101_000000.dump', 200],
      ['ListObjectsV2', '', 200],
      ['GetObject', 'production/app_20240101_000000.dump', 200],
      ['DeleteObject', 'production/app_20240101_000000.dump', 204],
      ['ListObjectsV2', '', 200],
    ]);
  });

  test('a missing object is a NotFoundError; removing one is not an error; an empty prefix lists as empty', async () => {
    const store = createS3Store(URL_);
    const err = await store.read('app_20240101_000000.dump').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotFoundError);
    expect((err as NotFoundError).message).toBe(`app_20240101_000000.dump is not in ${URL_}`);
    expect(fake.calls).toEqual([{ op: 'GetObject', key: 'production/app_20240101_000000.dump', status: 404 }]);
    await expect(store.remove('app_20240101_000000.dump')).resolves.toBeUndefined();
    expect(await store.list()).toEqual([]);
  });

  test('a missing bucket is an S3 error, not a missing backup', async () => {
    const store = createS3Store('s3://no-such-bucket/production/');
    await expect(store.read('app_20240101_000000.dump')).rejects.toMatchObject({ name: 'NoSuchBucket' });
    await expect(store.list()).rejects.toMatchObject({ name: 'NoSuchBucket' });
  });

  test('a backup corrupted at rest fails the read with a checksum error instead of streaming bad bytes', async () => {
    const store = createS3Store(URL_);
    await store.write('app_20240101_000000.dump', Readable.from(['a small backup, uploaded with its CRC32']));
    const stored = fake.objects.get('production/app_20240101_000000.dump')!;
    stored.writeUInt8(stored.readUInt8(3) ^ 0xff, 3); // bit rot in place, same length
    const stream = await store.read('app_20240101_000000.dump');
    await expect(bytes(stream)).rejects.toThrow(/checksum/i);
  });

  test('an empty stream stores an empty object', async () => {
    const store = createS3Store(URL_);
    expect(await store.write('app_20240101_000000.dump', Readable.from([]))).toEqual({ size: 0 });
    expect(fake.objects.get('production/app_20240101_000000.dump')?.length).toBe(0);
    expect((await bytes(await store.read('app_20240101_000000.dump'))).length).toBe(0);
  });

  test('an existing backup is replaced whole', async () => {
    const store = createS3Store(URL_);
    await store.write('app_20240101_000000.dump', Readable.from(['first version, longer']));
    await store.write('app_20240101_000000.dump', Readable.from(['second']));
    expect((await bytes(await store.read('app_20240101_000000.dump'))).toString()).toBe('second');
  });

  test('names with paths are refused before any request', async () => {
    const store = createS3Store(URL_);
    await expect(store.read('../etc/passwd')).rejects.toThrow('not a plain file name');
    await expect(store.read('sub/app_20240101_000000.dump')).rejects.toThrow('not a plain file name');
    await expect(store.write('x/../../y', Readable.from(['x']))).rejects.toThrow('not a plain file name');
    await expect(store.remove('/etc/passwd')).rejects.toThrow('not a plain file name');
    expect(fake.calls).toEqual([]);
  });

  test('list pages through ListObjectsV2 and shows only objects directly under the prefix, named relative to it', async () => {
    const keys = [
      'production/', // a "folder" marker
      'production/app_20240101_000000.dump',
      'production/app_20240102_000000.sql.gz',
      'production/app_20240103_000000.dump.sha256',
      'production/notes.txt',
      'production/archive/app_20230101_000000.dump',
      'production/archive/deeper/app_20220101_000000.dump',
      'production/zz/app_20240104_000000.dump',
      'production-old/app_20240105_000000.dump',
      'productionapp_20240106_000000.dump',
      'staging/app_20240107_000000.dump',
      'top-level.dump',
    ];
    for (const key of keys) fake.objects.set(key, Buffer.from(key));
    const names = (await createS3Store(URL_).list()).map((o) => o.name).sort();
    expect(names).toEqual([
      'app_20240101_000000.dump',
      'app_20240102_000000.sql.gz',
      'app_20240103_000000.dump.sha256',
      'notes.txt',
    ]);
    // maxKeys 2 on the fake: 4 objects + 2 sub-folders + the marker need several pages.
    expect(fake.callsOf('ListObjectsV2').length).toBeGreaterThanOrEqual(3);

    // Without a trailing slash the prefix is still a folder; without a prefix, the bucket's top level.
    expect((await createS3Store('s3://solosuccess-backups/production').list()).map((o) => o.name).sort()).toEqual(
      names,
    );
    expect((await createS3Store('s3://solosuccess-backups').list()).map((o) => o.name)).toEqual([
      'productionapp_20240106_000000.dump',
      'top-level.dump',
    ]);
    expect((await createS3Store('s3://solosuccess-backups/production/archive/').list()).map((o) => o.name)).toEqual([
      'app_20230101_000000.dump',
    ]);
  });

  test('latest is chosen from listed names across pages; safety copies and other files never win', async () => {
    const names = [
      'solosuccess_production_20241101_000000.dump',
      'solosuccess_production_20241103_120000.sql.gz',
      'solosuccess_production_20241103_060000.dump',
      'solosuccess_production_pre-restore_20241105_000000.dump', // newest, but a safety copy
      'solosuccess_production_20241104_000000.dump.sha256', // a sidecar, not a backup
      'solosuccess_staging_20241106_000000.dump', // another env's prefix
      'solosuccess_production_20240231_000000.dump', // impossible date
    ];
    for (const name of names) fake.objects.set(`production/${name}`, Buffer.from(name));
    fake.objects.set('production/older/solosuccess_production_20251231_000000.dump', Buffer.from('not directly under'));
    const listed = await createS3Store(URL_).list();
    const backups = listed.flatMap((o) => parseBackupName('solosuccess_production', o.name) ?? []);
    expect(sortNewestFirst(backups).map((b) => b.name)).toEqual([
      'solosuccess_production_pre-restore_20241105_000000.dump',
      'solosuccess_production_20241103_120000.sql.gz',
      'solosuccess_production_20241103_060000.dump',
      'solosuccess_production_20241101_000000.dump',
    ]);
    expect(latestBackup(backups)?.name).toBe('solosuccess_production_20241103_120000.sql.gz');
    expect(latestBackup(backups)?.format).toBe('sql.gz');
    expect(fake.callsOf('ListObjectsV2').length).toBeGreaterThan(1);
  });

  test('a 20 MB stream goes multipart, never runs far ahead of what S3 has received, and reads back byte-identical', async () => {
    const store = createS3Store(URL_);
    let maxAhead = 0;
    const source = randomStream(20 * MB, undefined, undefined, (produced) => {
      maxAhead = Math.max(maxAhead, produced - fake.bytesReceived);
    });
    expect(await store.write('app_20240101_000000.dump', source.stream)).toEqual({ size: 20 * MB });
    const sent = source.sha256();

    const ops = fake.calls.map((c) => c.op);
    expect(ops.filter((op) => op === 'CreateMultipartUpload')).toHaveLength(1);
    expect(
      fake
        .callsOf('UploadPart')
        .map((c) => c.partNumber)
        .sort(),
    ).toEqual([1, 2, 3, 4]); // 3 × 5 MiB + the rest
    expect(ops.filter((op) => op === 'CompleteMultipartUpload')).toHaveLength(1);
    expect(ops.indexOf('CompleteMultipartUpload')).toBeGreaterThan(ops.lastIndexOf('UploadPart'));
    expect(ops).not.toContain('PutObject');
    expect(ops).not.toContain('AbortMultipartUpload');
    expect(fake.openUploads()).toEqual([]);
    console.info(`20 MB upload: read at most ${mib(maxAhead)} ahead of what the fake had received`);
    // The store reads at most (queueSize + 1) parts ahead of the wire, never the whole dump first.
    expect(maxAhead).toBeLessThanOrEqual((DEFAULT_QUEUE_SIZE + 1) * DEFAULT_PART_SIZE_BYTES + 1024 * 1024);

    const stored = fake.objects.get('production/app_20240101_000000.dump')!;
    expect(stored.length).toBe(20 * MB);
    expect(createHash('sha256').update(stored).digest('hex')).toBe(sent);
    const read = createHash('sha256');
    let chunks = 0;
    for await (const chunk of await store.read('app_20240101_000000.dump')) {
      read.update(chunk as Buffer);
      chunks++;
    }
    expect(read.digest('hex')).toBe(sent);
    expect(chunks).toBeGreaterThan(10); // streamed, not handed over as one buffer
  });

  test('the uploading process holds a bounded amount of memory, not the dump (measured in a child process)', async () => {
    // As it runs: Node collects garbage buffers lazily, so this is the RSS a 20 MB backup really costs.
    const small = await runUploadInChild(URL_, 'app_20240101_000000.dump', 20 * MB, false);
    // With garbage collected as it goes, RSS shows what the store itself holds: about (queueSize + 2) parts.
    const large = await runUploadInChild(URL_, 'app_20240102_000000.dump', 100 * MB, true);
    for (const [result, name, size] of [
      [small, 'app_20240101_000000.dump', 20 * MB],
      [large, 'app_20240102_000000.dump', 100 * MB],
    ] as const) {
      const stored = fake.objects.get(`production/${name}`)!;
      expect(stored.length).toBe(size);
      expect(result.written).toBe(size);
      expect(createHash('sha256').update(stored).digest('hex')).toBe(result.sentSha256);
    }
    fake.objects.clear();
    console.info(
      `RSS growth while uploading: 20 MB → ${mib(small.peakRss - small.baseRss)} (upload ${small.uploadMs} ms); ` +
        `100 MB with GC as it goes → ${mib(large.peakRss - large.baseRss)} (upload ${large.uploadMs} ms)`,
    );
    expect(large.peakRss - large.baseRss).toBeLessThan(0.5 * 100 * MB);
  });

  test('a stream that fails after some parts were sent aborts the upload and leaves no object', async () => {
    const store = createS3Store(URL_);
    await store.write('app_20240101_000000.dump', Readable.from(['the previous, good backup']));
    fake.calls.length = 0;

    const { stream } = randomStream(20 * MB, 12 * MB);
    await expect(store.write('app_20240101_000000.dump', stream)).rejects.toThrow('pg_dump died');
    expect(stream.destroyed).toBe(true);
    const ops = fake.calls.map((c) => c.op);
    expect(ops).toContain('CreateMultipartUpload');
    expect(ops.filter((op) => op === 'UploadPart').length).toBeGreaterThanOrEqual(1);
    expect(ops).toContain('AbortMultipartUpload');
    expect(ops).not.toContain('CompleteMultipartUpload');
    expect(ops).not.toContain('PutObject');
    expect(fake.openUploads()).toEqual([]);
    // The earlier object under the same name is untouched; a new name would not exist at all.
    expect(fake.objects.get('production/app_20240101_000000.dump')?.toString()).toBe('the previous, good backup');

    const { stream: early } = randomStream(20 * MB, 1 * MB);
    fake.calls.length = 0;
    await expect(store.write('app_20240102_000000.dump', early)).rejects.toThrow('pg_dump died');
    expect(fake.calls).toEqual([]); // failed before a part filled: nothing was ever sent
    expect((await store.list()).map((o) => o.name)).toEqual(['app_20240101_000000.dump']);
  });

  test('a part that fails once is retried; one that keeps failing aborts the upload after 3 attempts', async () => {
    const store = createS3Store(URL_);
    fake.failures.push({ op: 'UploadPart', status: 500, code: 'InternalError' });
    const first = randomStream(11 * MB);
    expect(await store.write('app_20240101_000000.dump', first.stream)).toEqual({ size: 11 * MB });
    expect(createHash('sha256').update(fake.objects.get('production/app_20240101_000000.dump')!).digest('hex')).toBe(
      first.sha256(),
    );
    expect(fake.callsOf('UploadPart').filter((c) => c.status === 500)).toHaveLength(1);

    fake.calls.length = 0;
    fake.failures.push({ op: 'UploadPart', status: 500, code: 'InternalError', times: 1000 });
    const { stream } = randomStream(11 * MB);
    await expect(store.write('app_20240102_000000.dump', stream)).rejects.toMatchObject({ name: 'InternalError' });
    expect(stream.destroyed).toBe(true);
    const failedParts = fake.callsOf('UploadPart');
    expect(failedParts.every((c) => c.status === 500)).toBe(true);
    // Two uploaders each try their part 3 times at most (maxAttempts 3).
    for (const n of new Set(failedParts.map((c) => c.partNumber))) {
      expect(failedParts.filter((c) => c.partNumber === n).length).toBeLessThanOrEqual(3);
    }
    expect(fake.calls.map((c) => c.op)).toContain('AbortMultipartUpload');
    expect(fake.openUploads()).toEqual([]);
    expect(fake.objects.has('production/app_20240102_000000.dump')).toBe(false);
  });

  test('rename: one server-side CopyObject of the object as it was read (If-Match its ETag), then the source is deleted', async () => {
    const store = createS3Store(URL_);
    const pending = 'app_20240101_000000.dump.pending-0a1b2c3d';
    await store.write(pending, Readable.from(['a checked backup']));
    await store.write('app_20240101_000000.dump', Readable.from(['an older object under the name']));
    fake.calls.length = 0;
    await store.rename(pending, 'app_20240101_000000.dump');
    expect(fake.calls.map((c) => [c.op, c.key, c.status])).toEqual([
      ['HeadObject', `production/${pending}`, 200],
      ['CopyObject', 'production/app_20240101_000000.dump', 200],
      ['DeleteObject', `production/${pending}`, 204],
    ]);
    expect([...fake.objects.keys()]).toEqual(['production/app_20240101_000000.dump']);
    expect((await bytes(await store.read('app_20240101_000000.dump'))).toString()).toBe('a checked backup');

    const missing = await store.rename(pending, 'app_20240102_000000.dump').catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(NotFoundError);
    expect(fake.objects.has('production/app_20240102_000000.dump')).toBe(false);
    await expect(store.rename('../x', 'app_20240102_000000.dump')).rejects.toThrow('not a plain file name');
    await expect(store.rename(pending, 'sub/app_20240102_000000.dump')).rejects.toThrow('not a plain file name');
  });

  test('rename: a source changed after it was looked at is not copied (412); a failed copy leaves the source and no new name', async () => {
    const store = createS3Store(URL_);
    const pending = 'app_20240101_000000.dump.pending-0a1b2c3d';
    await store.write(pending, Readable.from(['checked bytes']));
    // Someone writes other bytes over the pending object between the HeadObject and the CopyObject.
    fake.beforeAnswer = (op) => {
      if (op === 'CopyObject') fake.objects.set(`production/${pending}`, Buffer.from('other bytes'));
    };
    const changed = store.rename(pending, 'app_20240101_000000.dump');
    await expect(changed).rejects.toMatchObject({ name: 'PreconditionFailed' });
    expect([...fake.objects.keys()]).toEqual([`production/${pending}`]);
    fake.beforeAnswer = undefined;
    fake.failures.push({ op: 'CopyObject', status: 403, code: 'AccessDenied' });
    await expect(store.rename(pending, 'app_20240101_000000.dump')).rejects.toMatchObject({ name: 'AccessDenied' });
    expect([...fake.objects.keys()]).toEqual([`production/${pending}`]);
    expect(fake.callsOf('DeleteObject')).toEqual([]);
  });

  test('rename of an object over the single-copy limit: UploadPartCopy part by part, completed, byte-identical', async () => {
    const store = createS3Store(URL_, undefined, { singleCopyLimitBytes: 5 * MiB, copyPartSizeBytes: 5 * MiB });
    const pending = 'app_20240101_000000.dump.pending-0a1b2c3d';
    const { stream, sha256 } = randomStream(12 * MB);
    await store.write(pending, stream);
    fake.calls.length = 0;
    await store.rename(pending, 'app_20240101_000000.dump');
    const ops = fake.calls.map((c) => c.op);
    expect(ops[0]).toBe('HeadObject');
    expect(ops).not.toContain('CopyObject');
    expect(fake.callsOf('CreateMultipartUpload')).toHaveLength(1);
    expect(
      fake
        .callsOf('UploadPartCopy')
        .map((c) => [c.partNumber, c.status])
        .sort(),
    ).toEqual([
      [1, 200],
      [2, 200],
      [3, 200],
    ]);
    expect(fake.callsOf('CompleteMultipartUpload')).toHaveLength(1);
    expect(ops.at(-1)).toBe('DeleteObject');
    expect(fake.openUploads()).toEqual([]);
    expect([...fake.objects.keys()]).toEqual(['production/app_20240101_000000.dump']);
    const copied = fake.objects.get('production/app_20240101_000000.dump')!;
    expect(createHash('sha256').update(copied).digest('hex')).toBe(sha256());
  });

  test('rename part by part: the source changing between parts fails the next part (If-Match) and aborts the upload; nothing under the new name', async () => {
    const store = createS3Store(URL_, undefined, { singleCopyLimitBytes: 5 * MiB, copyPartSizeBytes: 5 * MiB });
    const pending = 'app_20240101_000000.dump.pending-0a1b2c3d';
    const { stream } = randomStream(12 * MB);
    await store.write(pending, stream);
    fake.calls.length = 0;
    let parts = 0;
    fake.beforeAnswer = (op) => {
      if (op === 'UploadPartCopy' && ++parts === 2) fake.objects.set(`production/${pending}`, randomBytes(12 * MB));
    };
    const renamed = store.rename(pending, 'app_20240101_000000.dump');
    await expect(renamed).rejects.toMatchObject({ name: 'PreconditionFailed' });
    expect(fake.callsOf('UploadPartCopy').filter((c) => c.status === 412).length).toBeGreaterThanOrEqual(1);
    expect(fake.callsOf('AbortMultipartUpload')).toHaveLength(1);
    expect(fake.callsOf('CompleteMultipartUpload')).toEqual([]);
    expect(fake.openUploads()).toEqual([]);
    expect([...fake.objects.keys()]).toEqual([`production/${pending}`]);
  });

  test('the client bounds attempts and each request', async () => {
    const client = createS3Client();
    expect(await client.config.maxAttempts()).toBe(3);
    const handler = client.config.requestHandler as unknown as { configProvider: Promise<Record<string, unknown>> };
    expect(await handler.configProvider).toMatchObject({
      connectionTimeout: 5_000,
      requestTimeout: 120_000,
      throwOnRequestTimeout: true,
    });
    client.destroy();
  });
});

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

interface ChildResult {
  written: number;
  sentSha256: string;
  baseRss: number;
  peakRss: number;
  uploadMs: number;
}

// Runs in a fresh Node process holding nothing but the store and the SDK, so its RSS is the client's alone (the fake
// keeps its copy of the object in this process). The bytes are generated and hashed on the fly, never kept.
const CHILD = `
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { createS3Store } from './s3-store.js';

const [url, name, totalText, collect] = process.argv.slice(2);
const total = Number(totalText);
const store = createS3Store(url);
await store.list(); // warm up: SDK modules loaded, credentials resolved, a connection open
if (collect === 'gc') globalThis.gc();
const baseRss = process.memoryUsage().rss;
let peakRss = baseRss;
const sample = setInterval(() => {
  if (collect === 'gc') globalThis.gc();
  peakRss = Math.max(peakRss, process.memoryUsage().rss);
}, collect === 'gc' ? 25 : 2);
const pool = randomBytes(1024 * 1024);
const sent = createHash('sha256');
let produced = 0;
const source = new Readable({
  read() {
    if (produced >= total) return void this.push(null);
    const size = Math.min(64 * 1024, total - produced);
    const at = produced % (pool.length - size);
    const chunk = Buffer.from(pool.subarray(at, at + size)); // a fresh buffer each time, as a pipe gives
    chunk.writeUInt32BE(produced % 0x100000000, 0);
    produced += size;
    sent.update(chunk);
    this.push(chunk);
  },
});
const started = Date.now();
const { size } = await store.write(name, source);
const uploadMs = Date.now() - started;
peakRss = Math.max(peakRss, process.memoryUsage().rss);
clearInterval(sample);
process.stdout.write(JSON.stringify({ written: size, sentSha256: sent.digest('hex'), baseRss, peakRss, uploadMs }));
`;

async function runUploadInChild(
  url: string,
  name: string,
  total: number,
  collectAsItGoes: boolean,
): Promise<ChildResult> {
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-s3-child-'));
  try {
    symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
    writeFileSync(join(dir, 'package.json'), '{"type":"module"}');
    for (const file of ['port', 's3-store']) {
      const source = readFileSync(join(ROOT, 'src', 'adapters', 'backup-store', `${file}.ts`), 'utf8');
      const { outputText } = ts.transpileModule(source, {
        compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
      });
      writeFileSync(join(dir, `${file}.js`), outputText);
    }
    writeFileSync(join(dir, 'child.mjs'), CHILD);
    const flags = collectAsItGoes ? ['--expose-gc'] : [];
    const child = spawn(
      process.execPath,
      [...flags, join(dir, 'child.mjs'), url, name, String(total), collectAsItGoes ? 'gc' : 'lazy'],
      {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...awsEnv() },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    if (code !== 0) throw new Error(`upload child exited ${code}: ${err}`);
    return JSON.parse(out) as ChildResult;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
