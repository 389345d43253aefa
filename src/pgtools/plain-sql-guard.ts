// The guard on plain-SQL (.sql.gz) restores: no psql meta-command from a backup ever reaches psql.
//
// psql runs any unquoted backslash in its input as a meta-command: `\!` runs a shell command (with the restore's
// PGPASSWORD in its environment), `\o` and `\w` write files, `\i` reads them, `\connect` moves the rest of the script
// to another database (the live target, by name). A backup is input we did not write, so there are two defences,
// independent of each other and of anything the backup says about itself:
//
// 1. This classifier reads the inflated backup as psql does, as byte lines split on \n, and refuses any line outside
//    COPY data whose first byte after blanks is a backslash (psql runs `  \!` and `\r\!` too), except pg_dump's own
//    leading `\restrict <key>` and trailing `\unrestrict <key>` (the same key), which it drops. Preflight runs it over
//    the whole backup before anything is created; the restore feeds psql through the same classifier, so psql gets
//    exactly what preflight accepted, and a backup changed since then is refused again before its line is passed on.
//    A backslash line outside COPY data is never passed on: its bytes are held back until the line ends (at most
//    HEAD_MAX bytes; a longer one cannot be pg_dump's and is refused at once), then dropped or refused.
// 2. psql runs in restricted mode under Lifeline's own random key, written before the first byte of the backup; the
//    dump's own pair is dropped and nothing ever writes \unrestrict (see restorePlainSql). A line classifier cannot lex
//    SQL, and this is what covers what it cannot see: a backslash after SQL on the same line (`SELECT 1; \! id`), after
//    a comment or a byte-order mark, or on a line the classifier took for COPY data while psql did not (a `COPY ...
//    FROM stdin;` line inside a dollar-quoted string). Restricted psql refuses those, and ON_ERROR_STOP ends the run.
//
// COPY data is tracked the way pg_dump writes it: a line `COPY <table> (<columns>) FROM stdin;` starts a block, the
// line `\.` (or `\.` CR) ends it, as in psql's own copy loop. psql itself enters COPY mode on the server's answer, not
// on the text; where the two disagree, one direction is harmless (a COPY the classifier did not recognise, say in
// lower case or after other SQL on its line, only makes it stricter: its data lines are checked as SQL and its `\.`
// is refused) and the other is what restricted mode is for.
//
// Hand-written: no library classifies psql input, and this one must work on Buffers at gunzip speed (the restore's
// feed must cost at most 5% of `gunzip | psql`): a COPY data line, nearly all of a dump, costs one indexOf and a few
// byte comparisons, with no allocation.
import { Transform, type TransformCallback } from 'node:stream';
import { PermanentError } from '../shared/errors.js';

const NEWLINE = 0x0a;
const CR = 0x0d;
const BACKSLASH = 0x5c;
const DOT = 0x2e;
const DASH = 0x2d;
/** pg_dump's restrict keys are 63 alphanumeric characters; allow some room. */
const MAX_KEY_LENGTH = 128;
/** The most of a line after its leading blanks that is ever looked at: `\unrestrict `, a key, a CR. */
export const HEAD_MAX = '\\unrestrict '.length + MAX_KEY_LENGTH + 1;
const COPY_START = Buffer.from('COPY ');
const COPY_END = Buffer.from(' FROM stdin;');
/** The end of a COPY line, CR included. */
const TAIL_MAX = COPY_END.length + 1;
const RESTRICT = Buffer.from('\\restrict ');
const UNRESTRICT = Buffer.from('\\unrestrict ');
/** How much of a refused command is named: enough to tell `\!` from `\connect`, never a whole line. */
const NAMED_COMMAND_MAX = 20;

/** A backup that carries something psql would run as a meta-command. Retrying cannot help. */
export class PlainSqlRefusal extends PermanentError {
  constructor(
    readonly line: number,
    readonly reason: string,
  ) {
    super(`line ${line}: ${reason}`);
    this.name = 'PlainSqlRefusal';
  }
}

/** What the classifier saw, for the preflight's report. */
export interface PlainSqlSummary {
  readonly bytes: number;
  readonly lines: number;
  readonly copyBlocks: number;
  /** The dump carried pg_dump's own \restrict line (dropped, like its closing \unrestrict). */
  readonly ownRestrict: boolean;
}

// psql's lexer takes these as blanks before a meta-command (checked with psql 15: " \t\r\f\v" all lead to one).
function isBlank(byte: number): boolean {
  return byte === 0x20 || byte === 0x09 || byte === CR || byte === 0x0c || byte === 0x0b;
}

function isAlphanumeric(byte: number): boolean {
  return (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a);
}

function startsWith(buf: Buffer, start: number, end: number, prefix: Buffer): boolean {
  return end - start >= prefix.length && buf.compare(prefix, 0, prefix.length, start, start + prefix.length) === 0;
}

/**
 * Classifies a plain-SQL backup chunk by chunk. `scan` hands what psql may get to `pass`, in order (normally the
 * chunk itself), and throws PlainSqlRefusal at the first line it refuses, before passing on any of that chunk. Memory
 * is a few hundred bytes whatever the line lengths.
 */
export class PlainSqlClassifier {
  /** The number of the line being read (1-based). */
  private line = 1;
  private bytes = 0;
  private endsWithNewline = false;
  private inCopy = false;
  private copyBlocks = 0;
  /** A line outside COPY data other than blanks and `--` comments has been seen. */
  private sqlSeen = false;
  private ownKey: Buffer | undefined;
  /** Line number of the dump's closing \unrestrict: only blank lines may follow it. */
  private closedAt: number | undefined;

  // The current line while it spans chunks: its leading blanks, up to HEAD_MAX bytes from its first non-blank byte
  // (from its first byte in COPY data), its last TAIL_MAX bytes and its length after the blanks.
  private spanning = false;
  private inLeadingBlanks = true;
  private leadingBlanks = 0;
  private readonly head = Buffer.alloc(HEAD_MAX);
  private headLength = 0;
  private readonly tail = Buffer.alloc(TAIL_MAX);
  private tailLength = 0;
  private length = 0;
  /** A backslash line outside COPY data: none of its bytes is passed on, it is dropped or refused. */
  private heldBack = false;

  /** Classifies the next chunk; `pass` receives the parts psql may get, in order, unless this throws. */
  scan(chunk: Buffer, pass: (part: Buffer) => void = () => undefined): void {
    const parts: number[] = [];
    let passFrom = 0;
    let pos = 0;
    const size = chunk.length;
    while (pos < size) {
      const newline = chunk.indexOf(NEWLINE, pos);
      if (newline !== -1 && !this.spanning) {
        // The common case: a whole line inside the chunk, classified in place.
        if (this.inCopy) {
          if (endsCopy(chunk, pos, newline)) this.inCopy = false;
        } else {
          let first = pos;
          while (first < newline && isBlank(chunk[first] ?? 0)) first += 1;
          const headEnd = Math.min(newline, first + HEAD_MAX);
          const tailStart = Math.max(first, newline - TAIL_MAX);
          if (this.classify(chunk, first, headEnd, chunk, tailStart, newline, newline - first, first - pos)) {
            if (pos > passFrom) parts.push(passFrom, pos);
            passFrom = newline + 1;
          }
        }
        this.line += 1;
        pos = newline + 1;
        continue;
      }
      // A line that began in an earlier chunk, or goes on in the next one.
      const end = newline === -1 ? size : newline;
      const heldFrom = this.take(chunk, pos, end);
      if (heldFrom !== undefined) {
        if (heldFrom > passFrom) parts.push(passFrom, heldFrom);
        passFrom = newline === -1 ? size : newline + 1;
      }
      if (newline === -1) break;
      this.finishSpanningLine();
      this.line += 1;
      pos = newline + 1;
    }
    if (passFrom < size) parts.push(passFrom, size);
    this.bytes += size;
    if (size > 0) this.endsWithNewline = chunk[size - 1] === NEWLINE;
    for (let i = 0; i < parts.length; i += 2) {
      const from = parts[i] ?? 0;
      const to = parts[i + 1] ?? 0;
      pass(from === 0 && to === size ? chunk : chunk.subarray(from, to));
    }
  }

  /** The end of the input: a last line without a newline is classified like any other (psql runs it too). */
  end(): PlainSqlSummary {
    if (this.spanning) this.finishSpanningLine();
    const lines = this.line - 1 + (this.bytes > 0 && !this.endsWithNewline ? 1 : 0);
    return { bytes: this.bytes, lines, copyBlocks: this.copyBlocks, ownRestrict: this.ownKey !== undefined };
  }

  /**
   * Adds chunk[start, end) to the spanning line. Returns where this chunk's part of it starts being held back (a
   * backslash line outside COPY data), or undefined when it may pass.
   */
  private take(chunk: Buffer, start: number, end: number): number | undefined {
    this.spanning = true;
    let from = start;
    if (this.inLeadingBlanks && !this.inCopy) {
      while (from < end && isBlank(chunk[from] ?? 0)) from += 1;
      this.leadingBlanks += from - start;
      if (from === end) return undefined;
      if (chunk[from] === BACKSLASH) this.heldBack = true;
    }
    this.inLeadingBlanks = false;
    const count = end - from;
    const copied = Math.min(count, HEAD_MAX - this.headLength);
    if (copied > 0) {
      chunk.copy(this.head, this.headLength, from, from + copied);
      this.headLength += copied;
    }
    if (count >= TAIL_MAX) {
      chunk.copy(this.tail, 0, end - TAIL_MAX, end);
      this.tailLength = TAIL_MAX;
    } else if (count > 0) {
      const kept = Math.min(this.tailLength, TAIL_MAX - count);
      this.tail.copy(this.tail, 0, this.tailLength - kept, this.tailLength);
      chunk.copy(this.tail, kept, from, end);
      this.tailLength = kept + count;
    }
    this.length += count;
    // Longer than pg_dump's own \restrict or \unrestrict line: refused now, neither read nor held any further.
    if (this.heldBack && this.length > HEAD_MAX)
      throw this.refusal(this.head, 0, this.headLength, this.leadingBlanks, this.length);
    return this.heldBack ? from : undefined;
  }

  private finishSpanningLine(): void {
    if (this.inCopy) {
      if (endsCopy(this.head, 0, this.headLength) && this.length === this.headLength) this.inCopy = false;
    } else {
      this.classify(this.head, 0, this.headLength, this.tail, 0, this.tailLength, this.length, this.leadingBlanks);
    }
    this.spanning = false;
    this.heldBack = false;
    this.inLeadingBlanks = true;
    this.leadingBlanks = 0;
    this.headLength = 0;
    this.tailLength = 0;
    this.length = 0;
  }

  /**
   * One line outside COPY data from its first non-blank byte: head[headStart, headEnd) is up to HEAD_MAX bytes of
   * it, tail[tailStart, tailEnd) its last bytes, `length` its length, `blanks` how many blanks came before it.
   * Returns true for a line to drop (the dump's own restrict pair); throws for a line to refuse.
   */
  private classify(
    head: Buffer,
    headStart: number,
    headEnd: number,
    tail: Buffer,
    tailStart: number,
    tailEnd: number,
    length: number,
    blanks: number,
  ): boolean {
    if (length === 0) return false;
    if (head[headStart] === BACKSLASH) {
      if (length === headEnd - headStart && blanks === 0) {
        const key = keyAfter(head, headStart, headEnd, RESTRICT);
        if (key && this.ownKey === undefined && !this.sqlSeen) {
          this.ownKey = Buffer.from(key);
          return true;
        }
        const closing = keyAfter(head, headStart, headEnd, UNRESTRICT);
        if (closing && this.ownKey?.equals(closing) && this.closedAt === undefined) {
          this.closedAt = this.line;
          return true;
        }
      }
      throw this.refusal(head, headStart, headEnd, blanks, length);
    }
    if (this.closedAt !== undefined) {
      throw new PlainSqlRefusal(
        this.line,
        `SQL after the dump's closing \\unrestrict (line ${this.closedAt}), where pg_dump writes none`,
      );
    }
    if (head[headStart] === DASH && head[headStart + 1] === DASH) return false;
    this.sqlSeen = true;
    if (
      blanks === 0 &&
      startsWith(head, headStart, headEnd, COPY_START) &&
      endsCopyStatement(tail, tailStart, tailEnd)
    ) {
      this.inCopy = true;
      this.copyBlocks += 1;
    }
    return false;
  }

  /** Names the command (the backslash and what follows up to a blank), never more than NAMED_COMMAND_MAX bytes. */
  private refusal(head: Buffer, start: number, end: number, blanks: number, length: number): PlainSqlRefusal {
    let name = '\\';
    let i = start + 1;
    for (; i < end && name.length < NAMED_COMMAND_MAX; i += 1) {
      const byte = head[i] ?? 0;
      if (isBlank(byte) || byte === BACKSLASH) break;
      name += byte >= 0x21 && byte <= 0x7e ? String.fromCharCode(byte) : '?';
    }
    if (i < end && !isBlank(head[i] ?? 0) && head[i] !== BACKSLASH) name += '…';
    const what =
      name === '\\restrict' || name === '\\unrestrict'
        ? `a ${name} that is not pg_dump's own (its leading \\restrict and trailing \\unrestrict, one key, ` +
          'before and after all SQL)'
        : `the psql meta-command ${name}`;
    const indented = blanks > 0 ? ' after blanks (psql skips them)' : '';
    const long = length > HEAD_MAX ? ` on a line of more than ${HEAD_MAX} bytes` : '';
    return new PlainSqlRefusal(this.line, `${what}${indented}${long} outside COPY data`);
  }
}

/** `\.` alone on its line (a CR allowed), as psql's copy loop ends COPY data. */
function endsCopy(buf: Buffer, start: number, end: number): boolean {
  const length = end - start;
  return (
    (length === 2 || (length === 3 && buf[start + 2] === CR)) && buf[start] === BACKSLASH && buf[start + 1] === DOT
  );
}

/** The line ends ` FROM stdin;` (a CR allowed), as pg_dump ends its COPY statements. */
function endsCopyStatement(tail: Buffer, start: number, end: number): boolean {
  const last = tail[end - 1] === CR ? end - 1 : end;
  const from = last - COPY_END.length;
  return from >= start && tail.compare(COPY_END, 0, COPY_END.length, from, last) === 0;
}

/** `<command><key>` (a CR allowed at the end) with an alphanumeric key: the key's bytes, else undefined. */
function keyAfter(buf: Buffer, start: number, end: number, command: Buffer): Buffer | undefined {
  if (!startsWith(buf, start, end, command)) return undefined;
  const keyEnd = buf[end - 1] === CR ? end - 1 : end;
  const keyStart = start + command.length;
  if (keyEnd <= keyStart || keyEnd - keyStart > MAX_KEY_LENGTH) return undefined;
  for (let i = keyStart; i < keyEnd; i += 1) if (!isAlphanumeric(buf[i] ?? 0)) return undefined;
  return buf.subarray(keyStart, keyEnd);
}

/**
 * The restore's feed into psql: Lifeline's own `\restrict <key>` first, then the backup as the classifier passes it
 * (the dump's own \restrict and \unrestrict lines dropped). Nothing ever writes \unrestrict, so psql stays restricted
 * to the end. On a refusal, `onRefusal` runs before the stream fails (the caller stops psql there, before its input
 * closes: psql would run a last unfinished statement at the end of its input).
 */
export function restrictedFeed(key: string, onRefusal: () => void): Transform {
  if (!/^[A-Za-z0-9]{16,128}$/.test(key)) throw new Error('a restrict key is 16 to 128 letters and digits');
  const classifier = new PlainSqlClassifier();
  let started = false;
  const start = (stream: Transform): void => {
    if (started) return;
    started = true;
    stream.push(Buffer.from(`\\restrict ${key}\n`));
  };
  const fail = (err: unknown, callback: TransformCallback): void => {
    if (err instanceof PlainSqlRefusal) onRefusal();
    callback(err instanceof Error ? err : new Error(String(err)));
  };
  return new Transform({
    // Room for a few of the inflater's 256 KB chunks on each side, so that inflating, classifying and psql overlap.
    highWaterMark: 1024 * 1024,
    transform(chunk: Buffer, _encoding, callback) {
      try {
        start(this);
        classifier.scan(chunk, (part) => this.push(part));
        callback();
      } catch (err) {
        fail(err, callback);
      }
    },
    flush(callback) {
      try {
        start(this);
        classifier.end();
        callback();
      } catch (err) {
        fail(err, callback);
      }
    },
  });
}
