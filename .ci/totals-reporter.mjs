// A vitest reporter for .ci/totals.mjs: what vitest's JSON report leaves out. Unhandled errors (a rejection nobody
// awaited fails the run, yet every test of its file reads "passed") and the tests a failed beforeAll kept from
// running (they read "skipped", like a test skipped on purpose). Written to test-artifacts/vitest-extra.json.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** A suite or module above `test` that failed: its hooks failed, so the test never ran. */
function blockedBy(test) {
  for (let at = test.parent; at; at = at.type === 'module' ? undefined : at.parent) {
    if (at.state() === 'failed') return at;
  }
  return undefined;
}

export default class TotalsReporter {
  onTestRunEnd(testModules, unhandledErrors, reason) {
    const path = 'test-artifacts/vitest-extra.json';
    const blocked = [];
    for (const module of testModules) {
      for (const test of module.children.allTests()) {
        const mode = test.options.mode;
        if (test.result().state !== 'skipped' || mode === 'skip' || mode === 'todo') continue;
        if (blockedBy(test)) blocked.push({ file: module.moduleId, name: test.fullName });
      }
    }
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(
      path,
      JSON.stringify({
        reason,
        unhandledErrors: unhandledErrors.length,
        unhandledMessages: unhandledErrors.slice(0, 5).map((e) => String(e.message ?? e).slice(0, 500)),
        blockedTests: blocked,
      }),
    );
  }
}
