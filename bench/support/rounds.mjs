// What the restore and backup benchmarks share around their own measurement: the disk check, the fakes, the 1x
// and 2x rounds, the per-step and memory lines, and the memory verdicts (peak under a limit, flat when doubled).
import { statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { startFakes } from './fakes.mjs';
import { SAMPLE_EVERY_MS } from './memory.mjs';
import { median, megabytes, ratio, round, seconds, spreadOf, verdict } from './stats.mjs';

export const TARGET_PEAK_MB = 200;
/** "Flat": the peak at twice the data at most this many times the first peak. */
export const TARGET_FLAT_RATIO = 1.2;

/** Checks the free disk, starts the fakes, runs `measure` at 1x and 2x and prints each round. */
export async function twoRounds({ sizeMb, diskFactor, doubleBaseline, measure, printRound, print }) {
  const free = statfsSync(tmpdir());
  const freeBytes = free.bavail * free.bsize;
  const needBytes = sizeMb * 2 * 1024 * 1024 * diskFactor;
  print(
    `free disk at ${tmpdir()}: ${round(freeBytes / 1024 ** 3, 1)} GB; this run needs about ${round(needBytes / 1024 ** 3, 1)} GB`,
  );
  if (freeBytes < needBytes)
    throw new Error(
      `not enough free disk: ${round(freeBytes / 1024 ** 3, 1)} GB free, about ${round(needBytes / 1024 ** 3, 1)} GB needed`,
    );
  const { slack, pagerduty } = await startFakes();
  const first = await measure({ sizeMb, label: '1x', withBaseline: true, slack, pagerduty, print });
  printRound(print, first);
  const second = await measure({
    sizeMb: sizeMb * 2,
    label: '2x',
    withBaseline: doubleBaseline,
    slack,
    pagerduty,
    print,
  });
  printRound(print, second);
  return { first, second };
}

/** One line per step with Lifeline's and the machine's CPU during it. */
export function printSteps(print, r, extra = () => undefined) {
  for (const s of r.steps) {
    const cpu = s.cpu
      ? `; Lifeline CPU ${s.cpu.process_cpu_pct_of_one_cpu}% of one CPU, machine busy ${s.cpu.machine_busy_pct}%, iowait ${s.cpu.machine_iowait_pct}%, dirty ${s.cpu.dirty_at_start_mb} → peak ${s.cpu.dirty_peak_mb} MB`
      : '';
    print(`${r.label}:   step ${s.name}: ${seconds(s.ms)} (${s.state}${cpu})`);
    const more = extra(s);
    if (more) print(`${r.label}:     ${more}`);
  }
}

/** The Lifeline process's memory during the round, and its log's warnings and errors. */
export function printMemoryAndLog(print, r) {
  const m = r.memory;
  print(
    `${r.label}: Lifeline RSS idle ${m.rss_idle_before_mb} MB, peak ${m.rss_peak_mb} MB over ${m.samples} samples (every ${SAMPLE_EVERY_MS} ms), ` +
      `VmHWM ${m.vm_hwm_mb} MB (${m.vm_hwm_covers}); child processes peak ${m.children_peak_mb} MB summed (${m.children_at_peak} processes), ` +
      `by program ${JSON.stringify(m.children_peak_by_program_mb)}`,
  );
  print(`${r.label}: Lifeline log lines warn ${r.log_warnings} error ${r.log_errors}`);
  for (const line of r.first_log_problems) print(`${r.label}:   lifeline log: ${line}`);
}

/**
 * Peak RSS under TARGET_PEAK_MB in both rounds, and 2x/1x <= TARGET_FLAT_RATIO; printed, and returned. A round whose
 * RSS could not be read (no sample of VmRSS, no VmHWM) fails both: a missing figure is not a small one.
 */
export function memoryVerdicts(print, first, second, doubled) {
  const peakOf = (r) => {
    const read = [r.memory.rss_peak_mb, r.memory.vm_hwm_mb].filter((mb) => typeof mb === 'number' && mb > 0);
    return read.length > 0 ? Math.max(...read) : null;
  };
  const peak1 = peakOf(first);
  const peak2 = peakOf(second);
  const flatRatio = ratio(peak2, peak1);
  const memoryOk = peak1 !== null && peak2 !== null && peak1 < TARGET_PEAK_MB && peak2 < TARGET_PEAK_MB;
  const flatOk = flatRatio !== null && flatRatio <= TARGET_FLAT_RATIO;
  print(
    `Lifeline peak RSS: ${first.memory.rss_peak_mb} MB at ${megabytes(first.database_bytes)} (VmHWM ${first.memory.vm_hwm_mb} MB), ` +
      `${second.memory.rss_peak_mb} MB at ${megabytes(second.database_bytes)} (VmHWM ${second.memory.vm_hwm_mb} MB): ratio ${flatRatio}`,
  );
  const shown = (mb) => (mb === null ? 'not read' : `${mb} MB`);
  return {
    peak1,
    peak2,
    flatRatio,
    memoryOk,
    flatOk,
    printVerdicts() {
      print(`${verdict(memoryOk)} Lifeline peak RSS < ${TARGET_PEAK_MB} MB (${shown(peak1)}, ${shown(peak2)})`);
      print(
        `${verdict(flatOk)} peak RSS flat when the ${doubled} doubles: 2x/1x <= ${TARGET_FLAT_RATIO} (${flatRatio})`,
      );
    },
  };
}

/**
 * The order of `baselines` baseline runs and `jobs` Lifeline runs, in turns B,J,J,B,B,J,..: neither side always runs
 * first, on a fresher server or after the other's writeback.
 */
export function interleaved(baselines, jobs) {
  const order = [];
  let b = 0;
  let j = 0;
  for (let turn = 0; b < baselines || j < jobs; turn++) {
    for (const side of turn % 2 === 0 ? ['baseline', 'job'] : ['job', 'baseline']) {
      if (side === 'baseline' && b < baselines) {
        order.push(side);
        b++;
      }
      if (side === 'job' && j < jobs) {
        order.push(side);
        j++;
      }
    }
  }
  return order;
}

/**
 * One round's runs in turns (see interleaved): `runs` jobs at 1x and one at 2x; `runs` baselines when `withBaseline`,
 * none otherwise. Each is called with its index and how many of its side there are.
 */
export async function runInTurns({ label, runs, withBaseline, timeBaseline, timeJob }) {
  const jobRuns = label === '1x' ? runs : 1;
  const baselineRuns = withBaseline ? runs : 0;
  let b = 0;
  let j = 0;
  for (const side of interleaved(baselineRuns, jobRuns)) {
    if (side === 'baseline') await timeBaseline(b++, baselineRuns);
    else await timeJob(j++, jobRuns);
  }
}

/**
 * What several Lifeline runs of one round add up to: the median of each of `keys` (null if a run lacks it) with its
 * spread, the steps of the median run, the memory of the run with the highest peak, and all their log problems.
 */
export function medianRun(runs, keys) {
  const figures = {};
  const spread = {};
  for (const key of keys) {
    const values = runs.map((r) => r[key]);
    const known = values.every((v) => typeof v === 'number');
    figures[key] = known ? round(median(values), 0) : null;
    spread[key] = known ? spreadOf(values) : null;
  }
  const byTime = [...runs].sort((a, b) => a[keys[0]] - b[keys[0]]);
  const middle = byTime[Math.floor((byTime.length - 1) / 2)];
  const peakOf = (r) => Math.max(r.memory.rss_peak_mb ?? -1, r.memory.vm_hwm_mb ?? -1);
  const highest = runs.reduce((a, b) => (peakOf(b) > peakOf(a) ? b : a));
  return {
    ...figures,
    spread,
    steps: middle.steps,
    memory: highest.memory,
    log_warnings: runs.reduce((sum, r) => sum + r.log_warnings, 0),
    log_errors: runs.reduce((sum, r) => sum + r.log_errors, 0),
    first_log_problems: runs.flatMap((r) => r.first_log_problems).slice(0, 5),
  };
}
