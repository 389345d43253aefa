// decideRetention: which backups retention deletes. Older than retention_days goes, except the newest regular
// backup (safety copies never count as newest) and the newest backup that passed a drill.
import { describe, expect, test } from 'vitest';
import {
  backupFileName,
  parseBackupName,
  safetyCopyFileName,
  type BackupName,
} from '../../src/domain/backups/names.js';
import { decideRetention } from '../../src/domain/backups/retention.js';

const P = 'solosuccess_production';
const DAY = 86_400_000;
const NOW = new Date('2026-03-10T12:00:00.000Z');
const RETENTION = 7;
const CUTOFF = NOW.getTime() - RETENTION * DAY;

/** A regular backup taken `ms` before NOW (whole seconds, as file names carry). */
function regular(msBefore: number, format: 'dump' | 'sql.gz' = 'dump'): BackupName {
  const at = new Date(NOW.getTime() - msBefore);
  const name = format === 'dump' ? backupFileName(P, at) : backupFileName(P, at).replace(/\.dump$/, '.sql.gz');
  const parsed = parseBackupName(P, name);
  if (!parsed) throw new Error(`not a backup name: ${name}`);
  return parsed;
}

function safety(msBefore: number): BackupName {
  const parsed = parseBackupName(P, safetyCopyFileName(P, new Date(NOW.getTime() - msBefore)));
  if (!parsed) throw new Error('not a safety copy name');
  return parsed;
}

const none = (): boolean => false;
const passed =
  (...backups: BackupName[]) =>
  (name: string): boolean =>
    backups.some((b) => b.name === name);

const names = (list: readonly { name: string }[]): string[] => list.map((b) => b.name);
const keptNames = (list: readonly { backup: { name: string }; why: string }[]): [string, string][] =>
  list.map((k) => [k.backup.name, k.why]);

describe('decideRetention', () => {
  test('an empty list: nothing to remove, nothing kept', () => {
    expect(decideRetention([], NOW, RETENTION, none)).toEqual({ remove: [], kept: [] });
  });

  test('everything within retention stays and is not reported as kept', () => {
    const list = [regular(0), regular(DAY), regular(3 * DAY), regular(RETENTION * DAY - 1000), safety(2 * DAY)];
    expect(decideRetention(list, NOW, RETENTION, none)).toEqual({ remove: [], kept: [] });
  });

  test('exactly at the cutoff is kept; one second (and one millisecond) older goes', () => {
    const newest = regular(DAY);
    const atCutoff = regular(RETENTION * DAY);
    const secondOlder = regular(RETENTION * DAY + 1000);
    expect(atCutoff.takenAt.getTime()).toBe(CUTOFF);
    const decision = decideRetention([newest, atCutoff, secondOlder], NOW, RETENTION, none);
    expect(names(decision.remove)).toEqual([secondOlder.name]);
    expect(decision.kept).toEqual([]);

    // Millisecond precision (a caller's own objects may carry it): cutoff - 1 ms is past it.
    const exact = { ...atCutoff, name: 'exact', takenAt: new Date(CUTOFF) };
    const justPast = { ...atCutoff, name: 'just-past', takenAt: new Date(CUTOFF - 1) };
    const ms = decideRetention([newest, exact, justPast], NOW, RETENTION, none);
    expect(names(ms.remove)).toEqual(['just-past']);
  });

  test('older than the cutoff goes, newest first, when a newer backup exists', () => {
    const fresh = regular(DAY);
    const old1 = regular(8 * DAY);
    const old2 = regular(30 * DAY);
    const old3 = regular(9 * DAY, 'sql.gz');
    const decision = decideRetention([old2, fresh, old1, old3], NOW, RETENTION, none);
    expect(names(decision.remove)).toEqual([old1.name, old3.name, old2.name]);
    expect(decision.kept).toEqual([]);
  });

  test('the newest backup is kept even when it is older than the cutoff', () => {
    const newest = regular(10 * DAY);
    const older = regular(20 * DAY);
    const decision = decideRetention([older, newest], NOW, RETENTION, none);
    expect(names(decision.remove)).toEqual([older.name]);
    expect(keptNames(decision.kept)).toEqual([[newest.name, 'the newest backup']]);
    // A single, old backup: kept.
    const alone = decideRetention([older], NOW, RETENTION, none);
    expect(alone.remove).toEqual([]);
    expect(keptNames(alone.kept)).toEqual([[older.name, 'the newest backup']]);
  });

  test('a safety copy never counts as the newest: the newest regular backup is kept, the old safety copy goes', () => {
    const safetyCopy = safety(8 * DAY); // newer than every regular backup, and past the cutoff
    const newestRegular = regular(10 * DAY);
    const older = regular(12 * DAY);
    const decision = decideRetention([safetyCopy, newestRegular, older], NOW, RETENTION, none);
    expect(names(decision.remove)).toEqual([safetyCopy.name, older.name]);
    expect(keptNames(decision.kept)).toEqual([[newestRegular.name, 'the newest backup']]);
  });

  test('safety copies older than the cutoff are removed; those within retention stay', () => {
    const fresh = regular(DAY);
    const oldSafety = safety(8 * DAY);
    const olderSafety = safety(40 * DAY);
    const freshSafety = safety(2 * DAY);
    const decision = decideRetention([olderSafety, fresh, freshSafety, oldSafety], NOW, RETENTION, none);
    expect(names(decision.remove)).toEqual([oldSafety.name, olderSafety.name]);
    expect(decision.kept).toEqual([]);
    // Only safety copies, all old: none of them is "the newest backup", so all go.
    const onlySafety = decideRetention([oldSafety, olderSafety], NOW, RETENTION, none);
    expect(names(onlySafety.remove)).toEqual([oldSafety.name, olderSafety.name]);
    expect(onlySafety.kept).toEqual([]);
  });

  test('the newest backup that passed a drill is kept; an even older drilled one goes', () => {
    const fresh = regular(DAY); // never drilled
    const drilledNewest = regular(10 * DAY);
    const undrilled = regular(11 * DAY);
    const drilledOlder = regular(15 * DAY);
    const failedDrill = regular(9 * DAY);
    const decision = decideRetention(
      [drilledOlder, fresh, undrilled, drilledNewest, failedDrill],
      NOW,
      RETENTION,
      passed(drilledNewest, drilledOlder),
    );
    expect(names(decision.remove)).toEqual([failedDrill.name, undrilled.name, drilledOlder.name]);
    expect(keptNames(decision.kept)).toEqual([[drilledNewest.name, 'the newest backup that passed a drill']]);
  });

  test('the newest backup and the newest drilled one are both kept when both are past the cutoff', () => {
    const newest = regular(8 * DAY);
    const drilled = regular(20 * DAY);
    const between = regular(10 * DAY);
    const decision = decideRetention([drilled, between, newest], NOW, RETENTION, passed(drilled));
    expect(names(decision.remove)).toEqual([between.name]);
    expect(keptNames(decision.kept)).toEqual([
      [newest.name, 'the newest backup'],
      [drilled.name, 'the newest backup that passed a drill'],
    ]);
  });

  test('when the newest drilled backup is within retention, every older drilled one may go', () => {
    const drilledFresh = regular(2 * DAY);
    const drilledOld = regular(9 * DAY);
    const decision = decideRetention([drilledOld, drilledFresh], NOW, RETENTION, passed(drilledFresh, drilledOld));
    expect(names(decision.remove)).toEqual([drilledOld.name]);
    expect(decision.kept).toEqual([]);
  });

  test('when the newest backup is also the newest drilled one, it is kept once, as the newest', () => {
    const newest = regular(8 * DAY);
    const drilledOlder = regular(9 * DAY);
    const decision = decideRetention([drilledOlder, newest], NOW, RETENTION, passed(newest, drilledOlder));
    expect(names(decision.remove)).toEqual([drilledOlder.name]);
    expect(keptNames(decision.kept)).toEqual([[newest.name, 'the newest backup']]);
  });

  test('retention_days scales the cutoff; nothing is removed and nothing kept twice', () => {
    const list = [regular(0), regular(DAY + 1000), regular(2 * DAY + 1000), regular(31 * DAY)];
    const one = decideRetention(list, NOW, 1, none);
    expect(names(one.remove)).toEqual([list[1]!.name, list[2]!.name, list[3]!.name]);
    const thirty = decideRetention(list, NOW, 30, none);
    expect(names(thirty.remove)).toEqual([list[3]!.name]);
    for (const decision of [one, thirty]) {
      const all = [...names(decision.remove), ...decision.kept.map((k) => k.backup.name)];
      expect(new Set(all).size).toBe(all.length);
    }
  });

  test("returns the caller's own objects and leaves the input list untouched", () => {
    type Listed = BackupName & { readonly size: number };
    const a: Listed = { ...regular(DAY), size: 1 };
    const b: Listed = { ...regular(9 * DAY), size: 2 };
    const c: Listed = { ...regular(10 * DAY), size: 3 };
    const input: Listed[] = [c, a, b];
    const decision = decideRetention(input, NOW, RETENTION, none);
    expect(decision.remove[0]).toBe(b);
    expect(decision.remove[1]).toBe(c);
    expect(decision.remove[0]?.size).toBe(2);
    expect(input).toEqual([c, a, b]);
  });

  test('passedDrill is asked about names; a safety copy that passed a drill is not what protects the newest drilled backup', () => {
    const fresh = regular(DAY);
    const drilled = regular(10 * DAY);
    const safetyDrilled = safety(9 * DAY);
    const asked: string[] = [];
    const decision = decideRetention([fresh, safetyDrilled, drilled], NOW, RETENTION, (name) => {
      asked.push(name);
      return name === drilled.name || name === safetyDrilled.name;
    });
    expect(asked).toContain(drilled.name);
    expect(keptNames(decision.kept)).toEqual([[drilled.name, 'the newest backup that passed a drill']]);
    expect(names(decision.remove)).toEqual([safetyDrilled.name]);
  });
});
