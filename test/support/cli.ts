// Runs the built `lifeline` CLI (node dist/delivery/cli/main.js) as a child process, the way an operator would in a
// terminal.
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const CLI_MAIN = fileURLToPath(new URL('../../dist/delivery/cli/main.js', import.meta.url));

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliChild {
  /** What it printed so far. */
  stdout(): string;
  stderr(): string;
  readonly running: boolean;
  /** Settles once it exited and its output is complete; rejects after timeoutMs (the child is killed). */
  readonly done: Promise<CliResult>;
  kill(): void;
}

const children = new Set<ChildProcess>();

/** Starts `lifeline <args…>` with exactly this environment. */
export function startCli(args: readonly string[], env: Record<string, string>, timeoutMs = 30_000): CliChild {
  const child = spawn(process.execPath, [CLI_MAIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  let running = true;
  child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
  child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
  const done = new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(
        new Error(`lifeline ${args.join(' ')} did not exit within ${timeoutMs} ms\nstdout:\n${out}\nstderr:\n${err}`),
      );
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    // 'close' comes after the last output, unlike 'exit'.
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      running = false;
      children.delete(child);
      resolve({ code: code ?? (signal ? -1 : 0), stdout: out, stderr: err });
    });
  });
  return {
    stdout: () => out,
    stderr: () => err,
    get running() {
      return running;
    },
    done,
    kill: () => child.kill('SIGKILL'),
  };
}

/** Runs `lifeline <args…>` to its end. */
export function runCli(args: readonly string[], env: Record<string, string>, timeoutMs = 30_000): Promise<CliResult> {
  return startCli(args, env, timeoutMs).done;
}

/** Kills every CLI child still running (afterAll). */
export function killCliChildren(): void {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
}

/** The whole run, for assertion messages. */
export function describeRun(run: CliResult): string {
  return `exit ${run.code}\nstdout:\n${run.stdout}\nstderr:\n${run.stderr}`;
}

export const ADMIN_MAIN = fileURLToPath(new URL('../../dist/admin.js', import.meta.url));

/** Runs `lifeline-admin <args…>` (node dist/admin.js) with exactly this environment: the server's own. */
export function runAdmin(args: readonly string[], env: Record<string, string>, timeoutMs = 30_000): Promise<CliResult> {
  return new Promise<CliResult>((resolve, reject) => {
    const child = spawn(process.execPath, [ADMIN_MAIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
    child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString('utf8')));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      const what = `lifeline-admin ${args.join(' ')}`;
      reject(new Error(`${what} did not exit within ${timeoutMs} ms\nstdout:\n${out}\nstderr:\n${err}`));
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code: code ?? (signal ? -1 : 0), stdout: out, stderr: err });
    });
  });
}

/** A token lifeline-admin printed (its only stdout line); throws with the run when there is none. */
export async function adminToken(user: string, env: Record<string, string>, days?: number): Promise<string> {
  const run = await runAdmin(['token', 'create', user, ...(days === undefined ? [] : ['--days', String(days)])], env);
  const token = run.stdout.trim();
  if (run.code !== 0 || !/^llt_[A-Za-z0-9_-]{43}$/.test(token))
    throw new Error(`lifeline-admin gave no token:\n${describeRun(run)}`);
  return token;
}
