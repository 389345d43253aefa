// The sandbox's command line: run (the default), --clean (remove what an earlier run left, start nothing), --help,
// and the config folder --clean finds by the state database's name.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { readSandboxSettings, SettingsError, USAGE } from '../../src/sandbox/settings.js';

const read = (args: string[], env: Record<string, string> = {}) => readSandboxSettings(env, args);

describe('sandbox settings', () => {
  test('no option runs it; --clean cleans; --help and -h print the usage', () => {
    expect(read([]).action).toBe('run');
    expect(read(['--drop-on-exit'])).toMatchObject({ action: 'run', dropOnExit: true });
    expect(read(['--clean'])).toMatchObject({ action: 'clean', dropOnExit: false });
    expect(read(['--help']).action).toBe('help');
    expect(read(['-h']).action).toBe('help');
    expect(USAGE).toMatch(/--clean\s+do not start it/);
  });

  test('--help is answered even beside a mistake; other mistakes are refused, naming them', () => {
    expect(read(['--help', '--bogus']).action).toBe('help');
    expect(() => read(['--bogus'])).toThrow(new SettingsError('unknown argument --bogus'));
    expect(() => read(['--clean', '--drop-on-exit'])).toThrow(/exclude each other/);
  });

  test('the config folder is named after the state database, so --clean with the same settings finds it', () => {
    expect(read([]).configDir).toBe(join(tmpdir(), 'lifeline-sandbox', 'config-lifeline_sandbox'));
    expect(read(['--clean'], { SANDBOX_STATE_DB: 'other_state' }).configDir).toBe(
      join(tmpdir(), 'lifeline-sandbox', 'config-other_state'),
    );
  });
});
