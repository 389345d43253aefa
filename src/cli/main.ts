#!/usr/bin/env node
// Process concerns of the `lifeline` CLI: config, the operating-system user, Ctrl-C, the exit code.
import { userInfo } from 'node:os';
import { ConfigError, readConfig } from '../config.js';
import { EXIT, runCli, USAGE } from './cli.js';

// Node's default warning printer would put the AWS SDK's note about Node 20 on every run; other warnings still show.
process.removeAllListeners('warning');
process.on('warning', (warning) => {
  if (!warning.message.startsWith('NodeVersionSupportWarning')) process.stderr.write(`lifeline: warning: ${warning.message}\n`);
});

async function main(): Promise<number> {
  // Help needs no configuration: it is what someone new to the CLI runs first.
  const [first] = process.argv.slice(2).filter((a) => a !== '--no-wait');
  if (first === undefined || first === 'help' || first === '--help' || first === '-h') {
    (first === undefined ? process.stderr : process.stdout).write(`${USAGE}\n`);
    return first === undefined ? EXIT.refused : EXIT.ok;
  }
  let config;
  try {
    config = readConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const problem of err.problems) process.stderr.write(`lifeline: config error: ${problem}\n`);
    return EXIT.failed;
  }
  const interrupt = new AbortController();
  process.once('SIGINT', () => interrupt.abort());
  return runCli(
    config,
    process.argv.slice(2),
    { out: (line) => process.stdout.write(`${line}\n`), err: (line) => process.stderr.write(`${line}\n`) },
    { osUser: userInfo().username, signal: interrupt.signal },
  );
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`lifeline: fatal: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(EXIT.failed);
  },
);
