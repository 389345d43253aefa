// The layer rules of .dependency-cruiser.cjs, checked against small trees of their own: each forbidden import is
// caught and named, and the imports the README's architecture allows pass. `npm test` runs the same rules over src/.
import { execFile } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DEPCRUISE = join(ROOT, 'node_modules', '.bin', 'depcruise');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lifeline-layers-'));
  await copyFile(join(ROOT, '.dependency-cruiser.cjs'), join(dir, '.dependency-cruiser.cjs'));
  const options = { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true };
  await writeFile(join(dir, 'tsconfig.build.json'), JSON.stringify({ compilerOptions: options, include: ['src'] }));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes a tree of `file -> [imported files]` under src/ and runs the rules over it. */
async function check(tree: Record<string, readonly string[]>): Promise<{ code: number; out: string }> {
  const src = join(dir, 'src');
  await rm(src, { recursive: true, force: true });
  for (const [file, imports] of Object.entries(tree)) {
    const lines = imports.map((target, i) => {
      const from = dirname(join('src', file));
      let spec = join('src', target).replace(/\.ts$/, '.js');
      spec = spec.startsWith(from + '/') ? './' + spec.slice(from.length + 1) : relativeSpec(from, spec);
      return `import * as m${i} from '${spec}';\nexport const use${i} = m${i};`;
    });
    await mkdir(dirname(join(src, file)), { recursive: true });
    await writeFile(join(src, file), `${lines.join('\n')}\nexport const here = 1;\n`);
  }
  try {
    const { stdout } = await promisify(execFile)(
      DEPCRUISE,
      ['src', '--config', '.dependency-cruiser.cjs', '--output-type', 'err'],
      { cwd: dir },
    );
    return { code: 0, out: stdout };
  } catch (err) {
    const failed = err as { code: number; stdout: string };
    return { code: failed.code, out: failed.stdout };
  }
}

function relativeSpec(from: string, to: string): string {
  const a = from.split('/');
  const b = to.split('/');
  let same = 0;
  while (same < a.length && a[same] === b[same]) same++;
  return [...a.slice(same).map(() => '..'), ...b.slice(same)].join('/');
}

describe('layer rules', () => {
  test('the allowed directions pass: shared <- adapters/pgtools <- domain <- delivery <- wiring <- main', async () => {
    const result = await check({
      'shared/config.ts': [],
      'adapters/slack/port.ts': ['shared/config.ts'],
      'adapters/slack/client.ts': ['adapters/slack/port.ts', 'shared/config.ts'],
      'pgtools/dump.ts': ['shared/config.ts'],
      'domain/backups/take.ts': ['pgtools/dump.ts', 'adapters/slack/port.ts'],
      'domain/recovery/service.ts': ['domain/backups/take.ts'],
      'delivery/slack/render.ts': ['domain/recovery/service.ts'],
      'delivery/commands/dr.ts': ['delivery/slack/render.ts', 'domain/recovery/service.ts'],
      'wiring/lifeline.ts': ['delivery/commands/dr.ts', 'adapters/slack/client.ts'],
      'main.ts': ['wiring/lifeline.ts'],
    });
    expect(result.out).toContain('no dependency violations found');
    expect(result.code).toBe(0);
  });

  // [what, importing file, imported file, the rule that names it]
  const refused: [string, string, string, string][] = [
    [
      'the domain imports delivery',
      'domain/incidents/service.ts',
      'delivery/slack/blocks.ts',
      'domain-knows-no-delivery',
    ],
    [
      'the domain imports a real client',
      'domain/incidents/escalation.ts',
      'adapters/pagerduty/client.ts',
      'domain-uses-ports-only',
    ],
    [
      'an adapter imports the domain',
      'adapters/slack/client.ts',
      'domain/incidents/model.ts',
      'adapters-know-no-domain',
    ],
    ['one adapter reaches into another', 'adapters/slack/memory.ts', 'adapters/aws/port.ts', 'adapters-stand-alone'],
    [
      'the PostgreSQL tools import the domain',
      'pgtools/restore.ts',
      'domain/backups/take.ts',
      'pgtools-know-no-domain',
    ],
    ['shared basics import a layer above', 'shared/log.ts', 'domain/audit/store.ts', 'shared-is-basic'],
    [
      'backups import recovery',
      'domain/backups/names.ts',
      'domain/recovery/runner.ts',
      'backups-do-not-import-recovery',
    ],
    [
      'a Slack renderer imports the commands',
      'delivery/slack/replies.ts',
      'delivery/commands/registry.ts',
      'slack-renders-not-routes',
    ],
    ['delivery imports the wiring', 'delivery/api/routes.ts', 'wiring/lifeline.ts', 'delivery-is-wired-not-wiring'],
    [
      'production code imports an in-memory double',
      'wiring/core.ts',
      'adapters/slack/stand-in.ts',
      'no-doubles-in-production-code',
    ],
    ['incidents import recovery', 'domain/incidents/service.ts', 'domain/recovery/model.ts', 'domain-folders-one-way'],
    [
      'the audit trail imports what writes to it',
      'domain/audit/store.ts',
      'domain/access/permissions.ts',
      'audit-is-a-leaf',
    ],
    ['two modules import each other', 'domain/audit/a.ts', 'domain/audit/b.ts', 'no-cycles'],
  ];
  let badTree: { code: number; out: string };
  beforeAll(async () => {
    const tree: Record<string, string[]> = { 'domain/audit/b.ts': ['domain/audit/a.ts'] };
    for (const [, from, to] of refused) {
      (tree[from] ??= []).push(to);
      tree[to] ??= [];
    }
    badTree = await check(tree);
  });
  test('a tree with forbidden imports fails the check', () => {
    expect(badTree.code).not.toBe(0);
  });
  test.each(refused)('refused and named: %s', (_what, from, to, rule) => {
    expect(badTree.out).toMatch(
      new RegExp(`error ${rule}: src/${from} → ${rule === 'no-cycles' ? '\\s*' : ''}src/${to}`),
    );
  });
});
