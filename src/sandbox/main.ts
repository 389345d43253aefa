// `npm run sandbox`: process concerns only. Reads the settings, starts the sandbox, stops it on SIGINT/SIGTERM; or,
// with --clean, removes what an earlier one left without starting it.
import { SetupError } from './errors.js';
import { removeLeftovers } from './leftovers.js';
import { startSandbox, type RunningSandbox } from './sandbox.js';
import { readSandboxSettings, SettingsError, USAGE, type SandboxSettings } from './settings.js';

const say = (line: string): void => void process.stderr.write(`${line}\n`);

async function main(): Promise<void> {
  let settings;
  try {
    settings = readSandboxSettings();
  } catch (err) {
    if (err instanceof SettingsError) {
      for (const line of err.message.split('\n')) say(`sandbox: ${line}`);
      say(USAGE);
      process.exit(2);
    }
    throw err;
  }
  if (settings.action === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (settings.action === 'clean') {
    await removeLeftovers(settings, say).catch((err: unknown) => {
      if (!(err instanceof SetupError)) throw err;
      say(`sandbox: ${err.message}`);
      process.exit(1);
    });
    return;
  }
  await run(settings);
}

async function run(settings: SandboxSettings): Promise<void> {
  let running: RunningSandbox | undefined;
  let exitCode: number | undefined;
  const stop = (why: string, code: number): void => {
    if (exitCode !== undefined) {
      // A second Ctrl+C: the user does not want to wait (the exit handler still kills Lifeline).
      say('sandbox: stopping now; `npm run sandbox -- --clean` removes what it leaves');
      process.exit(130);
    }
    exitCode = code;
    say(`sandbox: ${why}, stopping`);
    // During startup there is nothing to stop yet: startup sees exitCode when it is done and stops then.
    if (running) void running.stop().then(() => process.exit(code));
  };
  process.on('SIGINT', () => stop('SIGINT received', 0));
  process.on('SIGTERM', () => stop('SIGTERM received', 0));

  try {
    running = await startSandbox(settings, {
      say,
      lifelineDied: (how) => stop(`Lifeline ${how} (it was not asked to stop)`, 1),
    });
  } catch (err) {
    if (!(err instanceof SetupError)) throw err;
    say(`sandbox: ${err.message}`);
    process.exit(1);
  }
  if (exitCode !== undefined) {
    await running.stop();
    process.exit(exitCode);
  }
  say('');
  say(`  Lifeline sandbox is ready: open ${running.url}`);
  say('  Slack, PagerDuty, Statuspage and AWS are local stand-ins; Lifeline, its database and the restores are real.');
  say(
    settings.dropOnExit
      ? '  Ctrl+C stops it and drops its databases, backups and queues.'
      : `  Ctrl+C stops it; its databases (${settings.stateDb}, ${settings.appDb}) and backups stay to look at ` +
          'until the next start or `npm run sandbox -- --clean`.',
  );
  say('');
}

void main().catch((err: unknown) => {
  say(`sandbox: fatal: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
