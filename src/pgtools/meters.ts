// Streams that watch what flows through them: byte counts, SHA-256, and the plain-SQL classifier.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Transform, Writable, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { PlainSqlClassifier, type PlainSqlSummary } from './plain-sql-guard.js';

/** Reading and inflating a .sql.gz in big pieces: Node's defaults (64 KB reads, 16 KB inflated chunks) were measured
 * here at 2.3x the time of 1 MB reads and 256 KB chunks for the same 300 MB, slower than the gunzip program. */
const INFLATE_READ_BYTES = 1024 * 1024;
const INFLATE_CHUNK_BYTES = 256 * 1024;

/** A .sql.gz file as a read stream and its inflater, to be piped one into the other. */
export const inflating = (file: string): [Readable, Transform] => [
  createReadStream(file, { highWaterMark: INFLATE_READ_BYTES }),
  createGunzip({ chunkSize: INFLATE_CHUNK_BYTES }),
];

type Meter = Transform & { readonly bytes: () => number; readonly sha256: () => string };

/** Counts and hashes what flows through; with `untilExit`, the stream ends only once that promise resolves and
 * fails if it rejects, so a consumer (a store's atomic write) never commits the output of a program that failed. */
export function meter(untilExit?: Promise<void>): Meter {
  const hash = createHash('sha256');
  let bytes = 0;
  let digest: string | undefined;
  const stream = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      bytes += chunk.length;
      callback(null, chunk);
    },
    flush(callback) {
      if (!untilExit) {
        callback();
        return;
      }
      untilExit.then(
        () => callback(),
        (err: unknown) => callback(err instanceof Error ? err : new Error(String(err))),
      );
    },
  });
  return Object.assign(stream, {
    bytes: () => bytes,
    sha256: () => (digest ??= hash.digest('hex')),
  });
}

const asError = (err: unknown): Error => (err instanceof Error ? err : new Error(String(err)));

/** A sink that runs the plain-SQL classifier over everything written to it. */
export function classifying(): Writable & { readonly summary: () => PlainSqlSummary } {
  const classifier = new PlainSqlClassifier();
  let summary: PlainSqlSummary | undefined;
  const sink = new Writable({
    highWaterMark: INFLATE_READ_BYTES,
    write(chunk: Buffer, _encoding, callback) {
      try {
        classifier.scan(chunk);
        callback();
      } catch (err) {
        callback(asError(err));
      }
    },
    final(callback) {
      try {
        summary = classifier.end();
        callback();
      } catch (err) {
        callback(asError(err));
      }
    },
  });
  return Object.assign(sink, {
    summary: () => {
      if (!summary) throw new Error('the classifier has not seen the end of the backup');
      return summary;
    },
  });
}

/** The SHA-256 of a whole file, read in 1 MB pieces. */
export async function sha256Of(file: string, signal: AbortSignal | undefined): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file, { highWaterMark: 1 << 20 }), hash, signal ? { signal } : {});
  return hash.digest('hex');
}

/**
 * A sink that hashes and counts everything written to it and passes it on to `reader` for as long as `reader` reads
 * (a program that stops once it has what it needs, like pg_restore --list): from then on the rest only goes to the
 * hash. Ending the sink ends `reader`'s input.
 */
export function hashingTee(
  reader: Writable,
): Writable & { readonly bytes: () => number; readonly sha256: () => string } {
  let listening = true;
  reader.on('error', () => (listening = false));
  reader.on('close', () => (listening = false));
  const hash = createHash('sha256');
  let bytes = 0;
  let digest: string | undefined;
  const sink = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      bytes += chunk.length;
      if (!listening || reader.write(chunk)) {
        callback();
        return;
      }
      const go = (): void => {
        reader.off('drain', go);
        reader.off('close', go);
        callback();
      };
      reader.on('drain', go);
      reader.on('close', go);
    },
    final(callback) {
      if (listening) reader.end();
      callback();
    },
  });
  return Object.assign(sink, {
    bytes: () => bytes,
    sha256: () => (digest ??= hash.digest('hex')),
  });
}
