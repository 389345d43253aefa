import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, test } from 'vitest';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const TOTALS = join(ROOT, '.ci', 'totals.mjs');
const REPORTER = join(ROOT, '.ci', 'totals-reporter.mjs');

const dir = mkdtempSync(join(tmpdir(), 'lifeline-ci-totals-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The totals line for a JSON report and an extra report (undefined: the file is missing) after `status`. */
async function totals(report: object, extra: object | undefined, status: number): Promise<string> {
  const name = Math.random().toString(36).slice(2);
  const reportPath = join(dir, `${name}.json`);
  const extraPath = join(dir, `${name}-extra.json`);
  writeFileSync(reportPath, JSON.stringify(report));
  if (extra) writeFileSync(extraPath, JSON.stringify(extra));
  const { stdout } = await run(process.execPath, [TOTALS, reportPath, extraPath, String(status)]);
  return stdout.trim();
}

const test1 = (status: string) => ({ title: 't', status });
const file = (name: string, status: 'passed' | 'failed', tests: { status: string }[]) => ({
  name,
  status,
  message: '',
  assertionResults: tests,
});

describe('.ci/totals.mjs over sample reports', () => {
  test('a green run reads 0 failed', async () => {
    const report = { success: true, testResults: [file('/a.test.ts', 'passed', [test1('passed'), test1('passed')])] };
    expect(await totals(report, { unhandledErrors: 0, blockedTests: [] }, 0)).toBe('2 passed, 0 failed');
  });

  test("the tests a failed beforeAll kept from running count as failed, a test skipped on purpose doesn't", async () => {
    const report = {
      success: false,
      testResults: [
        file('/a.test.ts', 'failed', [test1('skipped'), test1('skipped'), test1('skipped'), test1('passed')]),
      ],
    };
    const extra = {
      unhandledErrors: 0,
      blockedTests: [
        { file: '/a.test.ts', name: 'x' },
        { file: '/a.test.ts', name: 'y' },
      ],
    };
    expect(await totals(report, extra, 1)).toBe('1 passed, 2 failed');
  });

  test('unhandled errors count as failed although every test passed', async () => {
    const report = { success: true, testResults: [file('/a.test.ts', 'passed', [test1('passed')])] };
    expect(await totals(report, { unhandledErrors: 2, blockedTests: [] }, 1)).toBe('1 passed, 2 failed');
  });

  test('a file that failed with no test to blame (an import error) counts once', async () => {
    const report = {
      success: false,
      testResults: [file('/a.test.ts', 'failed', []), file('/b.test.ts', 'passed', [test1('passed')])],
    };
    expect(await totals(report, { unhandledErrors: 0, blockedTests: [] }, 1)).toBe('1 passed, 1 failed');
  });

  test('without the extra report, the not-passed tests of a failed file count as failed', async () => {
    const report = { success: false, testResults: [file('/a.test.ts', 'failed', [test1('skipped'), test1('passed')])] };
    expect(await totals(report, undefined, 1)).toBe('1 passed, 1 failed');
  });

  test('a failed run never reads 0 failed', async () => {
    const report = { success: true, testResults: [file('/a.test.ts', 'passed', [test1('passed')])] };
    expect(await totals(report, { unhandledErrors: 0, blockedTests: [] }, 1)).toBe('1 passed, 1 failed');
  });
});

describe('.ci/totals.mjs over a real vitest run', () => {
  test('counts a failed beforeAll, an unhandled rejection, a failed test and an import error, not a skip', async () => {
    const root = mkdtempSync(join(dir, 'run-'));
    symlinkSync(join(ROOT, 'node_modules'), join(root, 'node_modules'));
    writeFileSync(
      join(root, 'vitest.config.mjs'),
      `export default { test: { include: ['t/*.test.ts'], pool: 'forks' } };\n`,
    );
    const files: Record<string, string> = {
      'before-all': `describe('a', () => {
  beforeAll(() => { throw new Error('beforeAll broke'); });
  it('one', () => expect(1).toBe(1));
  it('two', () => expect(1).toBe(1));
});
describe('b', () => { it('passes', () => expect(1).toBe(1)); });`,
      unhandled: `it('leaves a rejection behind', async () => {
  void Promise.reject(new Error('nobody handles me'));
  await new Promise((r) => setTimeout(r, 50));
});`,
      failing: `it.skip('skipped on purpose', () => expect(1).toBe(1));
it('fails', () => expect(1).toBe(2));
it('passes', () => expect(1).toBe(1));`,
      'import-error': `throw new Error('import-time failure');`,
    };
    const t = join(root, 't');
    mkdirSync(t);
    for (const [name, body] of Object.entries(files)) {
      writeFileSync(join(t, `${name}.test.ts`), `import { beforeAll, describe, expect, it } from 'vitest';\n${body}\n`);
    }
    const reportPath = join(root, 'vitest.json');
    const extraPath = join(root, 'test-artifacts', 'vitest-extra.json');
    const vitest = join(ROOT, 'node_modules', 'vitest', 'vitest.mjs');
    const args = [vitest, 'run', '--reporter=json', `--outputFile.json=${reportPath}`, `--reporter=${REPORTER}`];
    const status = await run(process.execPath, args, { cwd: root }).then(
      () => 0,
      (err: { code?: number }) => err.code ?? 1,
    );
    expect(status).toBe(1);
    const { stdout } = await run(process.execPath, [TOTALS, reportPath, extraPath, String(status)]);
    // passed: b > passes, the rejection's test, failing > passes; failed: one, two, fails, the import error, the
    // rejection.
    expect(stdout.trim()).toBe('3 passed, 5 failed');
  }, 60_000);
});
