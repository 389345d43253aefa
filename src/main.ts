// Process concerns only: read config, start, stop on SIGTERM/SIGINT within the 10 s the README promises.
import { loadRunbooks } from './domain/runbooks/definitions.js';
import { requireVercelToken } from './domain/runbooks/steps/vercel.js';
import { ConfigError, readConfig } from './shared/config.js';
import { startLifeline } from './wiring/lifeline.js';
import { StartupError } from './wiring/runtime.js';

const SHUTDOWN_LIMIT_MS = 9_000;

async function main(): Promise<void> {
  let config;
  let runbooks;
  try {
    config = readConfig();
    // The runbooks' steps are checked against their kinds' schemas here, so a bad step stops startup like any
    // other config problem.
    runbooks = loadRunbooks(config.file);
    requireVercelToken(runbooks, config.vercel.token);
  } catch (err) {
    if (err instanceof ConfigError) {
      for (const problem of err.problems) process.stderr.write(`lifeline: config error: ${problem}\n`);
      process.exit(2);
    }
    throw err;
  }
  let running;
  try {
    running = await startLifeline(config, { runbooks });
  } catch (err) {
    if (err instanceof StartupError) {
      process.stderr.write(`lifeline: startup failed: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`lifeline: ${signal} received, stopping\n`);
    // Whatever is still running at the limit goes back to the queue: its lock and step lease expire and another
    // worker picks it up.
    setTimeout(() => process.exit(0), SHUTDOWN_LIMIT_MS).unref();
    void running.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

void main().catch((err: unknown) => {
  const shown = err instanceof Error && err.stack !== undefined ? err.stack : String(err);
  process.stderr.write(`lifeline: fatal: ${shown}\n`);
  process.exit(1);
});
