#!/usr/bin/env node
// Process concerns of the `lifeline` CLI: its two settings, Ctrl-C, the exit code.
import { EXIT, runCli } from './cli.js';
import { readCliSettings } from './settings.js';

async function main(): Promise<number> {
  const interrupt = new AbortController();
  process.once('SIGINT', () => interrupt.abort());
  return runCli(
    process.argv.slice(2),
    { out: (line) => process.stdout.write(`${line}\n`), err: (line) => process.stderr.write(`${line}\n`) },
    { settings: readCliSettings(), signal: interrupt.signal },
  );
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`lifeline: fatal: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(EXIT.failed);
  },
);
