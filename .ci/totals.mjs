// The "N passed, M failed" line of .ci/run, from vitest's JSON report and .ci/totals-reporter.mjs's extra report.
// Failed counts every failed test, every test a failed beforeAll kept from running, every file that failed with no
// test to blame (an import error, a failed afterAll), and every unhandled error. It never reads "0 failed" when the
// run failed: without a figure to show, the failure itself counts as one.
//
//   node .ci/totals.mjs <vitest.json> <vitest-extra.json> <exit status of the test command>
import { existsSync, readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

/** Totals of a run; `extra` is undefined when the reporter wrote nothing (a crash before the end of the run). */
export function countTotals(report, extra, exitStatus) {
  const files = report?.testResults ?? [];
  const blockedByFile = new Map();
  for (const test of extra?.blockedTests ?? []) blockedByFile.set(test.file, (blockedByFile.get(test.file) ?? 0) + 1);
  let passed = 0;
  let failedTests = 0;
  let blocked = 0;
  let brokenFiles = 0;
  for (const file of files) {
    const tests = file.assertionResults ?? [];
    const failedHere = tests.filter((t) => t.status === 'failed').length;
    passed += tests.filter((t) => t.status === 'passed').length;
    failedTests += failedHere;
    // Without the extra report, a failed file's tests that did not pass are taken as kept from running.
    const blockedHere = extra
      ? (blockedByFile.get(file.name) ?? 0)
      : file.status === 'failed' && failedHere === 0
        ? tests.filter((t) => t.status !== 'passed').length
        : 0;
    blocked += blockedHere;
    if (file.status === 'failed' && failedHere === 0 && blockedHere === 0) brokenFiles += 1;
  }
  const unhandled = extra?.unhandledErrors ?? 0;
  let failed = failedTests + blocked + brokenFiles + unhandled;
  if (failed === 0 && (exitStatus !== 0 || report === undefined || report.success === false)) failed = 1;
  return { passed, failed, failedTests, blocked, brokenFiles, unhandled };
}

function readJson(path) {
  if (!path || !existsSync(path)) return undefined;
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [reportPath, extraPath, status] = process.argv.slice(2);
  const totals = countTotals(readJson(reportPath), readJson(extraPath), Number(status ?? 1));
  const parts = [
    totals.failedTests && `${totals.failedTests} failed tests`,
    totals.blocked && `${totals.blocked} tests kept from running by a failed hook`,
    totals.brokenFiles && `${totals.brokenFiles} files that failed outside their tests`,
    totals.unhandled && `${totals.unhandled} unhandled errors`,
  ].filter(Boolean);
  if (parts.length > 0) console.error(`[ci] failed: ${parts.join(', ')}`);
  console.log(`${totals.passed} passed, ${totals.failed} failed`);
}
