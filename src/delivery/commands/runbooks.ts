// `/dr runbook list|show` and `/dr run <name> [--dry-run]`, `/dr run report RUN-n`: the runbooks' entries of the /dr
// table. Parsing needs nothing; the service checks who may do what.
import { runId, parseRunId } from '../../domain/runbooks/model.js';
import { reportMarkdown } from '../../domain/runbooks/report.js';
import type { RunbookService } from '../../domain/runbooks/service.js';
import { auditOfRun } from '../../domain/audit/store.js';
import type { RecoveryService } from '../../domain/recovery/service.js';
import type { Db } from '../../shared/db/pool.js';
import { code, line, md } from '../slack/blocks.js';
import { runbookList, runbookShow, runReport } from '../slack/runbook-replies.js';
import { badCommand, subcommand, words, type Subcommand } from './registry.js';

export interface RunbookCommandDeps {
  readonly db: Db;
  readonly runbooks: RunbookService;
  readonly recovery: Pick<RecoveryService, 'requireResponder'>;
}

const NAME = /^[a-z][a-z0-9-]{0,62}$/;

type RunArgs = { report: number } | { runbook: string; dryRun: boolean };

export function parseRun(rest: string): RunArgs {
  const tokens = words(rest);
  if (tokens[0]?.toLowerCase() === 'report' && tokens.length === 2 && parseRunId(tokens[1]!) !== undefined) {
    return { report: parseRunId(tokens[1]!)! };
  }
  const dryRun = tokens.includes('--dry-run');
  const others = tokens.filter((t) => t !== '--dry-run');
  const [name, ...extra] = others;
  if (name === undefined)
    throw badCommand('Name the runbook (`/dr runbook list` shows them), or say `report RUN-<n>`.');
  if (name.startsWith('-')) throw badCommand(`Unknown option "${name}": the only one is --dry-run.`);
  if (!NAME.test(name)) throw badCommand(`"${name}" is not a runbook name (lower-case letters, digits and -).`);
  if (extra.length > 0) throw badCommand(`Unexpected text "${extra.join(' ')}".`);
  return { runbook: name, dryRun };
}

export function runbookEntries(deps: RunbookCommandDeps): Subcommand<unknown>[] {
  return [
    subcommand({
      usage: 'runbook list|show <name>',
      access: 'anyone',
      summary: "the plan's runbooks, or one runbook's steps, to you alone",
      matches: (w) => w === 'runbook' || w === 'runbooks',
      effect: 'read',
      parse(rest) {
        const [what, name, ...extra] = words(rest);
        if (extra.length > 0) throw badCommand(`Unexpected text "${extra.join(' ')}".`);
        if (what === 'list' && name === undefined) return { show: undefined };
        if (what === 'show' && name !== undefined) return { show: name };
        throw badCommand('Say `list`, or `show <name>`.');
      },
      async run(args) {
        if (args.show === undefined) return runbookList(deps.runbooks.runbooks(), await deps.runbooks.latestRuns());
        return runbookShow(deps.runbooks.runbook(args.show));
      },
    }),
    subcommand({
      usage: 'run <runbook> [--dry-run] | run report RUN-<n>',
      access: 'responders',
      summary:
        "run a runbook (after an approval, or one per step), or check it with --dry-run (read calls only); a run's report",
      matches: (w) => w === 'run',
      effect: 'write',
      parse: parseRun,
      effectOf: (args) => ('report' in args ? 'read' : 'write'),
      async run(args, ctx) {
        if ('report' in args) {
          await deps.recovery.requireResponder(ctx.userId, `read the report of ${runId(args.report)}`);
          const { run, steps } = await deps.runbooks.find(args.report);
          return runReport(reportMarkdown(run, steps, await auditOfRun(deps.db, run.number)));
        }
        const run = await deps.runbooks.request({
          runbook: args.runbook,
          dryRun: args.dryRun,
          actor: ctx.userId,
          channel: ctx.channelId,
          responseUrl: ctx.responseUrl,
        });
        const id = runId(run.number);
        const next = args.dryRun
          ? md`Dry run ${id} of ${run.runbook} started: it makes read calls only and reports each step here.`
          : run.state === 'awaiting_approval'
            ? md`${id} of ${run.runbook} requested. It needs approval: the run with Approve/Reject is posted here.`
            : md`${id} of ${run.runbook} requested. Each step asks for its approval as the run gets there.`;
        return {
          ...line(md`${next} ${code(`/dr run report ${id}`)} gives its report.`),
          run: { number: run.number, started: true },
        };
      },
    }),
  ];
}
