// `npm run bench`: runs each benchmark in turn (or those named on the command line), prints a summary and one final
// JSON line with every figure, and exits 1 unless every target of every benchmark passed. Each benchmark measures its
// own baseline in the same run. Everything a benchmark starts (child processes, databases, Redis keys, fakes) is
// undone after it, also on failure, timeout or signal.
import * as ackLatency from './ack-latency.mjs';
import * as alertToPage from './alert-to-page.mjs';
import * as backup from './backup.mjs';
import * as ladderAccuracy from './ladder-accuracy.mjs';
import * as plainSqlGuard from './plain-sql-guard.mjs';
import * as restore from './restore.mjs';
import * as runbookFailover from './runbook-failover.mjs';
import * as runbookOverhead from './runbook-overhead.mjs';
import { runCleanups } from './support/cleanup.mjs';

const ALL = [ackLatency, ladderAccuracy, alertToPage, restore, backup, plainSqlGuard, runbookOverhead, runbookFailover];
const wanted = process.argv.slice(2);
const unknown = wanted.filter((w) => !ALL.some((b) => b.name === w));
if (unknown.length > 0) {
  console.error(`bench: unknown benchmark ${unknown.join(', ')}; known: ${ALL.map((b) => b.name).join(', ')}`);
  process.exit(2);
}
const selected = wanted.length > 0 ? ALL.filter((b) => wanted.includes(b.name)) : ALL;
/** The whole run is bounded even if a benchmark's own limit fails to stop it: the selected limits plus cleanup time. */
const OVERALL_LIMIT_MS = Math.max(
  15 * 60_000,
  selected.reduce((sum, b) => sum + b.timeLimitMs + 60_000, 60_000),
);

let finishing = false;
async function abort(reason, code) {
  if (finishing) return;
  finishing = true;
  console.error(`bench: ${reason}; cleaning up`);
  await runCleanups();
  process.exit(code);
}
process.once('SIGINT', () => void abort('interrupted (SIGINT)', 130));
process.once('SIGTERM', () => void abort('terminated (SIGTERM)', 143));
setTimeout(() => void abort(`overall limit of ${OVERALL_LIMIT_MS / 60_000} min reached`, 1), OVERALL_LIMIT_MS).unref();

function withLimit(promise, ms, what) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

const results = {};
const summaryLines = [];
let crashed = false;
for (const bench of selected) {
  const print = (line) => console.log(`[${bench.name}] ${line}`);
  const started = Date.now();
  print('starting');
  try {
    const result = await withLimit(bench.run(print), bench.timeLimitMs, bench.name);
    results[bench.name] = { ...result, seconds: Math.round((Date.now() - started) / 100) / 10 };
    const targets = Object.entries({ ...result.targets, ...result.aims }).map(([k, v]) => `${v} ${k}`);
    // A benchmark passes only on its own word and on every one of its targets: a target with no figure is not a pass.
    const verdicts = Object.values(result.targets ?? {});
    results[bench.name].pass = result.pass === true && verdicts.length > 0 && verdicts.every((v) => v === 'PASS');
    summaryLines.push(
      `${bench.name}: ${result.headline ?? `ratio ${result.ratio_p99} vs baseline`}; ${targets.join('; ')}`,
    );
  } catch (err) {
    crashed = true;
    print(`ERROR: ${err.stack ?? err.message}`);
    results[bench.name] = { error: err.message, pass: false, seconds: Math.round((Date.now() - started) / 100) / 10 };
    summaryLines.push(`${bench.name}: ERROR ${err.message}`);
  } finally {
    await runCleanups();
  }
  print(`done in ${results[bench.name].seconds} s`);
}

console.log('');
console.log('Summary');
for (const line of summaryLines) console.log(`  ${line}`);
const pass = Object.values(results).every((r) => r.pass === true);
console.log(`  overall: ${crashed ? 'ERROR' : pass ? 'PASS' : 'FAIL'}`);
console.log(JSON.stringify({ bench: 'lifeline', at: new Date().toISOString(), pass, results }));
finishing = true;
process.exit(pass && !crashed ? 0 : 1);
