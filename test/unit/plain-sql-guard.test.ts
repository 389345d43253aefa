// The plain-SQL classifier on its own: what it passes, drops and refuses, identically however the input is cut into
// chunks (every split point, byte by byte), with CRLF line ends, COPY data blocks, huge lines and leading blanks.
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import {
  HEAD_MAX,
  PlainSqlClassifier,
  PlainSqlRefusal,
  restrictedFeed,
  type PlainSqlSummary,
} from '../../src/pgtools/plain-sql-guard.js';

const KEY = 'xuZPUMHrmdA4p3PjGqMhpcNCHh8xh2NPOAF76sfhHQucCnFb0ngZNFFU52z8hQt';

/** The shape of a pg_dump 15.20 plain dump: header, its own \restrict, SQL, a COPY block, its own \unrestrict. */
function pgDumpLike(eol = '\n'): { text: string; withoutPair: string } {
  const before = ['--', '-- PostgreSQL database dump', '--', ''];
  const body = [
    '',
    '-- Dumped from database version 15.20',
    'SET standard_conforming_strings = on;',
    "SELECT pg_catalog.set_config('search_path', '', false);",
    'CREATE TABLE public.t (',
    '    s text,',
    '    id integer',
    ');',
    "COMMENT ON TABLE public.t IS 'a \\ b';",
    'COPY public.t (s, id) FROM stdin;',
    '\\N\t1',
    '\\\\.\t2',
    '\\.x\t3',
    ' \\.\t4',
    'plain\t5',
    '\\.',
    '',
    '--',
    '-- PostgreSQL database dump complete',
    '--',
    '',
  ];
  const text = [...before, `\\restrict ${KEY}`, ...body, `\\unrestrict ${KEY}`, '', ''].join(eol);
  const withoutPair = [...before, ...body, '', ''].join(eol);
  return { text, withoutPair };
}

type Outcome = { passed: string; summary: PlainSqlSummary } | { refused: PlainSqlRefusal; passedBefore: string };

/** Feeds `input` cut at `cuts` (sorted offsets) and collects what passed, or the refusal. */
function classify(input: Buffer, cuts: readonly number[] = []): Outcome {
  const classifier = new PlainSqlClassifier();
  const parts: Buffer[] = [];
  const bounds = [0, ...cuts, input.length];
  try {
    for (let i = 0; i + 1 < bounds.length; i += 1) {
      classifier.scan(input.subarray(bounds[i], bounds[i + 1]), (part) => parts.push(Buffer.from(part)));
    }
    const summary = classifier.end();
    return { passed: Buffer.concat(parts).toString('latin1'), summary };
  } catch (err) {
    if (!(err instanceof PlainSqlRefusal)) throw err;
    return { refused: err, passedBefore: Buffer.concat(parts).toString('latin1') };
  }
}

/** Every way of cutting `input` once, plus byte by byte: all must agree with the uncut result. */
function everyCut(input: Buffer): Outcome {
  const whole = classify(input);
  const describe = (o: Outcome): string =>
    'refused' in o ? `refused ${o.refused.message}` : `passed ${JSON.stringify(o.passed)} ${JSON.stringify(o.summary)}`;
  for (let cut = 1; cut < input.length; cut += 1)
    expect(describe(classify(input, [cut])), `cut at ${cut}`).toBe(describe(whole));
  const bytewise = Array.from({ length: Math.max(0, input.length - 1) }, (_, i) => i + 1);
  expect(describe(classify(input, bytewise)), 'byte by byte').toBe(describe(whole));
  return whole;
}

function refusedAt(text: string): PlainSqlRefusal {
  const outcome = everyCut(Buffer.from(text, 'latin1'));
  if (!('refused' in outcome)) throw new Error(`not refused: ${JSON.stringify(text)}`);
  return outcome.refused;
}

function passed(text: string): { passed: string; summary: PlainSqlSummary } {
  const outcome = everyCut(Buffer.from(text, 'latin1'));
  if ('refused' in outcome) throw new Error(`refused: ${outcome.refused.message}`);
  return outcome;
}

describe('plain-SQL classifier', () => {
  test('a pg_dump-shaped dump passes but for its own \\restrict pair, at every chunk boundary', () => {
    const { text, withoutPair } = pgDumpLike();
    const { passed: out, summary } = passed(text);
    expect(out).toBe(withoutPair);
    expect(out).not.toContain('restrict');
    expect(summary).toEqual({
      bytes: text.length,
      lines: text.split('\n').length - 1,
      copyBlocks: 1,
      ownRestrict: true,
    });
  });

  test('the same with CRLF line ends (COPY ... FROM stdin; CR and \\. CR as psql takes them)', () => {
    const { text, withoutPair } = pgDumpLike('\r\n');
    const { passed: out, summary } = passed(text);
    expect(out).toBe(withoutPair);
    expect(summary.copyBlocks).toBe(1);
  });

  test('a dump without the restrict pair (pg_dump before August 2025) passes unchanged', () => {
    const text = 'CREATE TABLE t (s text);\nCOPY t (s) FROM stdin;\n\\N\n\\.\nSELECT 1;';
    const { passed: out, summary } = passed(text);
    expect(out).toBe(text);
    expect(summary).toEqual({ bytes: text.length, lines: 5, copyBlocks: 1, ownRestrict: false });
  });

  test('the attack: the dump lifts its own \\restrict with its own key, then runs a shell command', () => {
    const refusal = refusedAt(`--\n\\restrict ${KEY}\nSELECT 1;\n\\unrestrict ${KEY}\n\\! touch /tmp/pwned\n`);
    expect(refusal.line).toBe(5);
    expect(refusal.message).toBe('line 5: the psql meta-command \\! outside COPY data');
  });

  test.each([
    ['\\! id', 1, '\\!'],
    ['  \\! id', 1, '\\! after blanks'],
    ['\t\\! id', 1, '\\! after blanks'],
    ['\r\\! id', 1, '\\! after blanks'],
    ['\f\v\\! id', 1, '\\! after blanks'],
    ['\\! id\r', 1, '\\!'],
    ['\\!id', 1, '\\!id'],
    ['SELECT 1;\n\\connect production', 2, '\\connect'],
    ['SELECT 1;\n\n\\c production', 3, '\\c'],
    ['\\i /etc/passwd', 1, '\\i'],
    ['\\o /tmp/out', 1, '\\o'],
    ["\\copy t from program 'id'", 1, '\\copy'],
    ['\\set ON_ERROR_STOP 0', 1, '\\set'],
    ['\\.', 1, '\\.'],
    ['COPY t (s) FROM stdin;\n\\.\n\\.', 3, '\\.'],
    ['\\', 1, '\\'],
  ])('refused: %j at line %i naming %s', (text, line, named) => {
    const refusal = refusedAt(text);
    expect(refusal.line).toBe(line);
    expect(refusal.message).toContain(named);
    expect(refusal.message).toMatch(/outside COPY data$/);
  });

  test.each([
    [`SELECT 1;\n\\restrict ${KEY}\n`, 2, 'after SQL'],
    [`\\restrict ${KEY}\n\\restrict ${KEY}\n`, 2, 'a second \\restrict'],
    [`\\restrict ${KEY}\nSELECT 1;\n\\unrestrict ${KEY}x\n`, 3, 'another key'],
    [`SELECT 1;\n\\unrestrict ${KEY}\n`, 2, 'no \\restrict before it'],
    [`\\restrict ${KEY}\n\\unrestrict ${KEY}\n\\unrestrict ${KEY}\n`, 3, 'a second \\unrestrict'],
    [` \\restrict ${KEY}\n`, 1, 'indented'],
    [`\\restrict  ${KEY}\n`, 1, 'two spaces'],
    ['\\restrict abc`touch x`\n', 1, 'backquotes in the key'],
    ['\\restrict ' + 'k'.repeat(129) + '\n', 1, 'a key too long'],
    ['\\restrict \n', 1, 'no key'],
  ])("a \\restrict or \\unrestrict that is not pg_dump's own pair is refused: %j (%s)", (text, line) => {
    const refusal = refusedAt(text);
    expect(refusal.line).toBe(line);
    expect(refusal.message).toMatch(/\\(un)?restrict that is not pg_dump's own/);
  });

  test('after the closing \\unrestrict only blank lines may follow', () => {
    expect(passed(`\\restrict ${KEY}\nSELECT 1;\n\\unrestrict ${KEY}\n\n  \n`).passed).toBe('SELECT 1;\n\n  \n');
    const refusal = refusedAt(`\\restrict ${KEY}\nSELECT 1;\n\\unrestrict ${KEY}\nDROP TABLE t;\n`);
    expect(refusal.message).toBe(
      "line 4: SQL after the dump's closing \\unrestrict (line 3), where pg_dump writes none",
    );
  });

  test('the last line needs no newline: a closing \\unrestrict is dropped, a meta-command refused', () => {
    expect(passed(`\\restrict ${KEY}\nSELECT 1;\n\\unrestrict ${KEY}`).passed).toBe('SELECT 1;\n');
    expect(refusedAt('SELECT 1;\n\\! id').line).toBe(2);
  });

  test('COPY data is data: backslash lines in it pass, `\\.` (CR allowed) ends it, then SQL rules apply again', () => {
    const data = 'COPY public.t (a, b) FROM stdin;\n\\N\t\\N\n\\! not a command here\n\\.x\n \\.\n\\.\r\n';
    expect(passed(data).passed).toBe(data);
    expect(passed(`${data}SELECT 1;\n`).summary.copyBlocks).toBe(1);
    expect(refusedAt(`${data}\\! id\n`).line).toBe(7);
    // Two blocks, a table without a column list, CRLF.
    const two = 'COPY a FROM stdin;\r\n\\N\r\n\\.\r\nCOPY b (x) FROM stdin;\n\\N\n\\.\n';
    expect(passed(two).summary.copyBlocks).toBe(2);
  });

  test('COPY lines not as pg_dump writes them do not start COPY data: their backslash lines are refused', () => {
    for (const start of [
      'copy t from stdin;',
      ' COPY t FROM stdin;',
      'COPY t FROM stdin WITH (FORMAT csv);',
      'SELECT 1; COPY t FROM stdin;',
      'COPY t FROM stdin; ',
    ]) {
      expect(refusedAt(`${start}\n\\N\n\\.\n`).line, start).toBe(2);
    }
  });

  test('a refused line is never passed on, in whole or in part, however the input is cut', () => {
    const text = Buffer.from(`SELECT 1;\nSELECT 2;\n   \\! touch /tmp/pwned\nSELECT 3;\n`);
    const marker = 'touch';
    for (let a = 1; a < text.length; a += 1) {
      for (const b of [a + 1, a + 7, text.length - 1]) {
        const cuts = b > a && b < text.length ? [a, b] : [a];
        const outcome = classify(text, cuts);
        expect('refused' in outcome).toBe(true);
        if ('refused' in outcome) {
          expect(outcome.passedBefore).not.toContain('\\');
          expect(outcome.passedBefore).not.toContain(marker);
        }
      }
    }
  });

  test('the refusal names the command, never the rest of the line', () => {
    const secret = 'postgres://admin:hunter2@db/prod';
    const refusal = refusedAt(`\\connect ${secret}\n`);
    expect(refusal.message).not.toContain('hunter2');
    expect(refusal.message).toContain('\\connect');
    const long = refusedAt(`\\${'x'.repeat(5000)} ${secret}\n`);
    expect(long.message.length).toBeLessThan(200);
    expect(long.message).toContain(`\\${'x'.repeat(19)}…`);
    expect(refusedAt('\\\x01\x02 x\n').message).toContain('\\??');
  });

  test('huge lines: COPY data and SQL lines of 8 MB pass in 64 KB chunks; a long backslash line at once', () => {
    const chunkSize = 64 * 1024;
    const cutsOf = (length: number): number[] =>
      Array.from({ length: Math.floor((length - 1) / chunkSize) }, (_, i) => (i + 1) * chunkSize);
    const big = randomBytes(6 * 1024 * 1024).toString('base64'); // 8 MB, no newline in it
    const copy = Buffer.from(`COPY t (s) FROM stdin;\n${big}\n\\.\nSELECT '${big}';\n`);
    const outcome = classify(copy, cutsOf(copy.length));
    expect('passed' in outcome && outcome.passed === copy.toString('latin1')).toBe(true);

    // A COPY statement longer than a chunk (a very wide table) still starts COPY data.
    const columns = Array.from({ length: 20_000 }, (_, i) => `column_${i}`).join(', ');
    const wide = Buffer.from(`COPY public.wide (${columns}) FROM stdin;\n\\N\n\\.\n`);
    const wideOutcome = classify(wide, cutsOf(wide.length));
    expect('summary' in wideOutcome && wideOutcome.summary.copyBlocks).toBe(1);

    // A backslash line cannot be longer than pg_dump's own pair: refused in the first chunk, nothing held.
    const classifier = new PlainSqlClassifier();
    const hostile = Buffer.from(`SELECT 1;\n\\! ${'x'.repeat(8 * 1024 * 1024)}\n`);
    const passedParts: Buffer[] = [];
    let refusedIn = -1;
    for (let i = 0; i * chunkSize < hostile.length && refusedIn < 0; i += 1) {
      try {
        classifier.scan(hostile.subarray(i * chunkSize, (i + 1) * chunkSize), (p) => passedParts.push(p));
      } catch (err) {
        expect(err).toBeInstanceOf(PlainSqlRefusal);
        expect((err as Error).message).toBe(
          `line 2: the psql meta-command \\! on a line of more than ${HEAD_MAX} bytes outside COPY data`,
        );
        refusedIn = i;
      }
    }
    expect(refusedIn).toBe(0);
    expect(Buffer.concat(passedParts).toString()).toBe('');
  });

  test('line numbers count every newline, also across chunks and inside COPY data', () => {
    const lines = [
      'SELECT 1;',
      'COPY t FROM stdin;',
      ...Array.from({ length: 50 }, (_, i) => `${i}`),
      '\\.',
      '',
      '-- c',
      '\\! id',
    ];
    expect(refusedAt(lines.join('\n')).line).toBe(lines.length);
  });
});

describe('restricted feed', () => {
  async function feed(input: string, key = 'a'.repeat(64)): Promise<{ out: string; refused: boolean; error?: Error }> {
    let refused = false;
    const chunks: Buffer[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _e, cb) {
        chunks.push(chunk);
        cb();
      },
    });
    const stream = restrictedFeed(key, () => (refused = true));
    const error = await pipeline(Readable.from([Buffer.from(input)]), stream, sink).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    return { out: Buffer.concat(chunks).toString(), refused, error };
  }

  test("psql gets Lifeline's own \\restrict first, never the dump's own key, never an \\unrestrict", async () => {
    const { text, withoutPair } = pgDumpLike();
    const ours = randomBytes(32).toString('hex');
    const { out, error } = await feed(text, ours);
    expect(error).toBeUndefined();
    expect(out).toBe(`\\restrict ${ours}\n${withoutPair}`);
    expect(out).not.toContain(KEY);
    expect(out).not.toContain('unrestrict');
    // An empty backup still leaves psql restricted.
    expect((await feed('', ours)).out).toBe(`\\restrict ${ours}\n`);
  });

  test('a refusal calls onRefusal before the stream fails; the refused line is not in the output', async () => {
    const { out, refused, error } = await feed('SELECT 1;\n\\! touch /tmp/pwned\n');
    expect(refused).toBe(true);
    expect(error).toBeInstanceOf(PlainSqlRefusal);
    expect(out).not.toContain('touch');
  });

  test('a key psql would not take is refused up front', () => {
    expect(() => restrictedFeed('short', () => undefined)).toThrow(/letters and digits/);
    expect(() => restrictedFeed(`${'a'.repeat(20)} x`, () => undefined)).toThrow(/letters and digits/);
  });
});
