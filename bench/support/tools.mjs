// What the long benchmarks (restore, backup) share around their work: a stop switch (so that a benchmark that ran
// out of time creates nothing after its cleanup ran), PostgreSQL client programs run without a shell, temporary
// folders removed at cleanup, and polling.
import { spawn } from 'node:child_process';
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { onCleanup, trackChild } from './cleanup.mjs';

/**
 * One benchmark's stop switch. `arm()` registers a cleanup that flips it (call it first in `run`); from then on
 * `alive()` throws once the benchmark's cleanup has started. Per benchmark, so that a timed-out benchmark's
 * leftover promises stay stopped while the next benchmark runs.
 */
export function stopSwitch(name) {
  let stopped = false;
  return {
    arm() {
      stopped = false;
      onCleanup(`stop the ${name} benchmark`, async () => {
        stopped = true;
      });
    },
    alive() {
      if (stopped) throw new Error(`the ${name} benchmark was stopped`);
    },
  };
}

const noop = () => undefined;

/**
 * Runs a PostgreSQL client program (argument array, no shell), killed after `limitMs` and at cleanup. Resolves
 * { ms, pid } (and `stdout`, its first MB, with `captureStdout`); rejects with the end of its stderr when it fails.
 * `onStart(pid)` runs right after the spawn.
 */
export function runProgram(command, args, { limitMs, onStart, captureStdout = false, alive = noop } = {}) {
  alive();
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(command, args, {
      stdio: ['ignore', captureStdout ? 'pipe' : 'ignore', 'pipe'],
      env: { PATH: process.env.PATH ?? '', LC_ALL: 'C' },
    });
    trackChild(child);
    const kill = () => {
      if (child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    };
    const unregister = onCleanup(`kill ${command} (pid ${child.pid})`, async () => kill());
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr = (stderr + chunk.toString('utf8')).slice(-4000)));
    let stdout = '';
    child.stdout?.on('data', (chunk) => {
      if (stdout.length < 1024 * 1024) stdout += chunk.toString('utf8');
    });
    const timer = setTimeout(() => {
      kill();
      stderr += `\n(killed after ${limitMs / 1000} s)`;
    }, limitMs ?? 600_000);
    child.once('error', (err) => {
      clearTimeout(timer);
      void unregister();
      reject(err);
    });
    child.once('close', (code, signal) => {
      const ms = performance.now() - started;
      clearTimeout(timer);
      void unregister();
      if (code === 0) resolve(captureStdout ? { ms, pid: child.pid, stdout } : { ms, pid: child.pid });
      else
        reject(
          new Error(
            `${command} ${args.filter((a) => !a.startsWith('postgres')).join(' ')} exited ${code ?? signal}: ${stderr.trim().slice(-1500)}`,
          ),
        );
    });
    if (child.pid !== undefined) onStart?.(child.pid);
  });
}

export function fsyncFile(path) {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** A fresh folder under the temp dir, removed at cleanup (or now, through the returned `remove`). */
export function tempFolder(label, { alive = noop } = {}) {
  alive();
  const dir = mkdtempSync(join(tmpdir(), `lifeline-bench-${label}-`));
  const remove = onCleanup(`remove ${dir}`, async () => rmSync(dir, { recursive: true, force: true }));
  return { dir, remove };
}

/** Polls `probe` every `everyMs` until it returns something truthy (returned), or throws after `limitMs`. */
export async function waitFor(what, probe, limitMs, { everyMs = 100, alive = noop } = {}) {
  const deadline = Date.now() + limitMs;
  while (Date.now() < deadline) {
    alive();
    const found = await probe();
    if (found) return found;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`${what} did not happen within ${limitMs / 1000} s`);
}

/** A step's stored detail (text and person parts, as Lifeline keeps it) as one line of text. */
export function stepText(detail) {
  if (!Array.isArray(detail)) return detail ?? undefined;
  return detail.map((part) => (typeof part === 'string' ? part : part.person)).join('');
}
