import { describe, expect, test } from 'vitest';
import {
  backupFileName,
  isInFuture,
  latestBackup,
  parseBackupName,
  pendingFinalName,
  pendingName,
  safetyCopyFileName,
  sortNewestFirst,
} from '../../src/domain/backups/names.js';

const P = 'solosuccess_production';

describe('parseBackupName', () => {
  test('accepts the two backup forms with their UTC time', () => {
    expect(parseBackupName(P, `${P}_20240115_120000.sql.gz`)).toEqual({
      name: `${P}_20240115_120000.sql.gz`,
      takenAt: new Date('2024-01-15T12:00:00Z'),
      format: 'sql.gz',
      safetyCopy: false,
    });
    expect(parseBackupName(P, `${P}_20240115_120001.dump`)?.format).toBe('custom');
  });

  test('recognises safety copies, which are restorable but marked', () => {
    const parsed = parseBackupName(P, `${P}_pre-restore_20240116_030405.dump`);
    expect(parsed?.safetyCopy).toBe(true);
    expect(parsed?.takenAt.toISOString()).toBe('2024-01-16T03:04:05.000Z');
  });

  test.each([
    `${P}_20240115_120000.sql`,
    `${P}_20240115_120000.dump.sha256`,
    `${P}_2024011_120000.dump`,
    `other_20240115_120000.dump`,
    `${P}_20240231_120000.dump`,
    `${P}_20240115_246000.dump`,
    `../${P}_20240115_120000.dump`,
    `${P}_pre-restore_20240115_120000.sql.gz`,
    `.${P}_20240115_120000.dump.partial-ab12`,
    `${P}x_20240115_120000.dump`,
  ])('%s is not a backup', (name) => {
    expect(parseBackupName(P, name)).toBeUndefined();
  });

  test('a prefix with regex characters is matched literally', () => {
    expect(parseBackupName('a.b', 'axb_20240115_120000.dump')).toBeUndefined();
    expect(parseBackupName('a.b', 'a.b_20240115_120000.dump')).toBeDefined();
  });
});

describe('names Lifeline writes', () => {
  const at = new Date('2026-11-25T06:00:09.876Z');
  test('round-trip through the parser', () => {
    expect(backupFileName(P, at)).toBe(`${P}_20261125_060009.dump`);
    expect(safetyCopyFileName(P, at)).toBe(`${P}_pre-restore_20261125_060009.dump`);
    expect(parseBackupName(P, backupFileName(P, at))?.safetyCopy).toBe(false);
    expect(parseBackupName(P, safetyCopyFileName(P, at))?.safetyCopy).toBe(true);
  });
});

describe('latest', () => {
  test('is the newest by the time in the name, never a safety copy', () => {
    const names = [
      `${P}_20240101_000000.dump`,
      `${P}_20240103_000000.sql.gz`,
      `${P}_pre-restore_20240105_000000.dump`,
      `${P}_20240102_000000.dump`,
    ];
    const parsed = names.map((n) => parseBackupName(P, n)!);
    expect(latestBackup(parsed)?.name).toBe(`${P}_20240103_000000.sql.gz`);
    expect(sortNewestFirst(parsed).map((b) => b.name)).toEqual([names[2], names[1], names[3], names[0]]);
  });

  test('a name more than 5 minutes ahead of now is never latest (the next newest is); up to 5 minutes is a clock a little fast', () => {
    const now = new Date('2024-01-03T12:00:00Z');
    const times = ['20240103_110000', '20240103_120500', '20240103_120501', '20991231_235959'];
    const names = times.map((t) => `${P}_${t}.dump`);
    const parsed = names.map((n) => parseBackupName(P, n)!);
    expect(parsed.map((b) => isInFuture(b, now))).toEqual([false, false, true, true]);
    expect(latestBackup(parsed, now)?.name).toBe(`${P}_20240103_120500.dump`);
    const withoutIt = parsed.filter((b) => b.name !== `${P}_20240103_120500.dump`);
    expect(latestBackup(withoutIt, now)?.name).toBe(`${P}_20240103_110000.dump`);
    expect(latestBackup([parseBackupName(P, `${P}_20991231_235959.dump`)!], now)).toBeUndefined();
    // Once its time has come, it is an ordinary backup.
    expect(latestBackup(parsed, new Date('2024-01-03T12:00:02Z'))?.name).toBe(`${P}_20240103_120501.dump`);
  });

  test('an empty store or only safety copies has no latest', () => {
    expect(latestBackup([])).toBeUndefined();
    expect(latestBackup([parseBackupName(P, `${P}_pre-restore_20240105_000000.dump`)!])).toBeUndefined();
  });
});

describe('pending names', () => {
  test('never parse as a backup, and say which backup they are waiting to become', () => {
    const name = backupFileName(P, new Date('2026-11-25T06:00:09Z'));
    const pending = pendingName(name, '0a1b2c3d');
    expect(pending).toBe(`${name}.pending-0a1b2c3d`);
    expect(parseBackupName(P, pending)).toBeUndefined();
    expect(pendingFinalName(pending)).toBe(name);
    expect(pendingFinalName(name)).toBeUndefined();
    expect(pendingFinalName(`${name}.sha256`)).toBeUndefined();
    expect(pendingFinalName(`${name}.pending-0A1B2C3D`)).toBeUndefined();
    expect(() => pendingName(name, 'xyz')).toThrow(/8 lowercase hex/);
  });
});
