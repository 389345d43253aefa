// Memory and CPU of a process under test, from /proc (Linux): its VmRSS sampled every 100 ms, the summed VmRSS of its
// child processes (pg_dump, pg_restore) by program, its CPU, the machine's CPU and iowait and the kernel's dirty page
// cache per sample, and VmHWM with its reset.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { round } from './stats.mjs';

export const SAMPLE_EVERY_MS = 100;

/** A `Field:   123 kB` line of /proc/<pid>/status (or of /proc/meminfo for pid 'meminfo'), in kB. */
export function statusKb(pid, field) {
  try {
    const file = pid === 'meminfo' ? '/proc/meminfo' : `/proc/${pid}/status`;
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(file, 'utf8'));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/** pid → { ppid, comm } for every process (the task children files need CONFIG_PROC_CHILDREN, absent here). */
export function processTable() {
  const table = new Map();
  let entries;
  try {
    entries = readdirSync('/proc');
  } catch {
    return table;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const ppid = Number(stat.slice(close + 2).split(' ')[1]);
      table.set(Number(entry), { ppid, comm });
    } catch {
      // exited meanwhile
    }
  }
  return table;
}

export function descendants(root, table) {
  const children = new Map();
  for (const [pid, { ppid }] of table) {
    if (!children.has(ppid)) children.set(ppid, []);
    children.get(ppid).push(pid);
  }
  const out = [];
  const queue = [...(children.get(root) ?? [])];
  for (let guard = 0; queue.length > 0 && guard < 10_000; guard++) {
    const pid = queue.shift();
    out.push(pid);
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/**
 * Samples every 100 ms: the root process's VmRSS (unless `rootIsChild`) and the summed VmRSS of its descendants
 * (with the root itself when `rootIsChild`), and the peak of each program by name.
 */
export class MemorySampler {
  constructor(pid, { rootIsChild = false } = {}) {
    this.pid = pid;
    this.rootIsChild = rootIsChild;
    this.samples = 0;
    /** null until VmRSS was read once: a process whose memory could not be read has no peak, not a peak of 0. */
    this.rssPeakKb = null;
    this.rssFirstKb = null;
    this.rssLastKb = null;
    this.childrenPeakKb = 0;
    this.childrenPeakCount = 0;
    this.byProgramPeakKb = {};
    this.sampleMs = 0;
    /** [at (epoch ms), the root's CPU ms, machine busy, iowait and total ticks, machine Dirty kB] per sample. */
    this.timeline = [];
    this.timer = setInterval(() => this.sample(), SAMPLE_EVERY_MS);
    this.sample();
  }

  sample() {
    const t = performance.now();
    this.samples += 1;
    if (!this.rootIsChild) {
      const rss = statusKb(this.pid, 'VmRSS');
      if (rss !== null) {
        this.rssFirstKb ??= rss;
        this.rssLastKb = rss;
        this.rssPeakKb = Math.max(this.rssPeakKb ?? 0, rss);
      }
    }
    const table = processTable();
    const pids = [...(this.rootIsChild ? [this.pid] : []), ...descendants(this.pid, table)];
    let sum = 0;
    const byProgram = {};
    for (const pid of pids) {
      const rss = statusKb(pid, 'VmRSS') ?? 0;
      sum += rss;
      const comm = table.get(pid)?.comm ?? '?';
      byProgram[comm] = (byProgram[comm] ?? 0) + rss;
    }
    if (sum > this.childrenPeakKb) {
      this.childrenPeakKb = sum;
      this.childrenPeakCount = pids.length;
    }
    for (const [comm, kb] of Object.entries(byProgram))
      this.byProgramPeakKb[comm] = Math.max(this.byProgramPeakKb[comm] ?? 0, kb);
    const machine = machineTicks();
    this.timeline.push([
      Date.now(),
      cpuMs(this.pid),
      machine?.busy ?? null,
      machine?.iowait ?? null,
      machine?.total ?? null,
      statusKb('meminfo', 'Dirty'),
    ]);
    this.sampleMs += performance.now() - t;
  }

  /** CPU between two moments (epoch ms): the root's share of one CPU, and the machine's busy and iowait shares. */
  window(fromMs, toMs) {
    const at = (ms) =>
      this.timeline.reduce(
        (best, row) => (Math.abs(row[0] - ms) < Math.abs(best[0] - ms) ? row : best),
        this.timeline[0],
      );
    const a = at(fromMs);
    const b = at(toMs);
    if (!a || !b || b[0] <= a[0]) return null;
    const pct = (x, y) => (x === null || y === null || y <= 0 ? null : round((100 * x) / y, 0));
    const dirty = this.timeline
      .filter((row) => row[0] >= a[0] && row[0] <= b[0] && row[5] !== null)
      .map((row) => row[5]);
    return {
      process_cpu_pct_of_one_cpu: a[1] === null || b[1] === null ? null : pct(b[1] - a[1], b[0] - a[0]),
      machine_busy_pct: pct(b[2] - a[2], b[4] - a[4]),
      machine_iowait_pct: pct(b[3] - a[3], b[4] - a[4]),
      // The kernel's dirty page cache (not yet written files): writeback competes with the restore for the disk.
      dirty_at_start_mb: kbToMb(a[5]),
      dirty_peak_mb: kbToMb(dirty.length > 0 ? Math.max(...dirty) : null),
    };
  }

  stop() {
    clearInterval(this.timer);
    this.sample();
    return {
      samples: this.samples,
      rss_first_mb: kbToMb(this.rssFirstKb),
      rss_peak_mb: kbToMb(this.rssPeakKb),
      rss_last_mb: kbToMb(this.rssLastKb),
      children_peak_mb: kbToMb(this.childrenPeakKb),
      children_at_peak: this.childrenPeakCount,
      children_peak_by_program_mb: Object.fromEntries(
        Object.entries(this.byProgramPeakKb).map(([k, v]) => [k, kbToMb(v)]),
      ),
      sampler_ms_per_sample: round(this.sampleMs / Math.max(1, this.samples), 2),
    };
  }
}

/** utime + stime of a process in ms (clock ticks of 1/100 s); null when it is gone. */
export function cpuMs(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return null;
  }
}

/** The machine's CPU ticks so far: busy (not idle, not iowait), iowait and total, from /proc/stat. */
export function machineTicks() {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const v = line.trim().split(/\s+/).slice(1, 9).map(Number);
    const total = v.reduce((x, y) => x + y, 0);
    return { busy: total - v[3] - v[4], iowait: v[4], total };
  } catch {
    return null;
  }
}

/** Resets the process's VmHWM to its current RSS (Linux: `5` into /proc/<pid>/clear_refs); false where refused. */
export function resetPeak(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

export const kbToMb = (kb) => (kb === null ? null : round(kb / 1024, 1));
