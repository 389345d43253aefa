// Block Kit for /dr: plans with Approve/Reject, live progress, results, listings.
import type { Block, ChatMessage } from '../../adapters/slack/port.js';
import type { LogEvent } from '../../adapters/aws/port.js';
import type { AuditEntry } from '../../domain/audit/store.js';
import type { Reply } from './reply.js';
import { formatDuration, formatSize, formatStepTime, formatUtc, formatUtcSeconds } from '../../shared/format.js';
import { describeJob, jobId, type RecoveryJob, type StepRecord } from '../../domain/recovery/model.js';
import type { JobSummary } from '../../domain/recovery/notifier.js';
import type { DrillRecord } from '../../domain/backups/catalogue.js';
import { runId } from '../../domain/runbooks/model.js';
import type { BackupCatalogue, BackupListing, EnvStatus } from '../../domain/recovery/queries.js';
import {
  bold,
  code,
  codeBlock,
  HERE,
  italic,
  joinMd,
  escapeMrkdwn,
  line,
  md,
  mention,
  message,
  saidText,
  section,
  sections,
  type Mrkdwn,
} from './blocks.js';

export const APPROVE_ACTION = 'job_approve';
export const REJECT_ACTION = 'job_reject';

const STATE_LABEL: Record<RecoveryJob['state'], string> = {
  planning: ':hourglass: planning',
  awaiting_approval: ':raised_hand: waiting for approval',
  queued: ':arrow_forward: approved, queued',
  running: ':gear: running',
  succeeded: ':white_check_mark: succeeded',
  failed: ':x: failed',
  cancelled: ':no_entry_sign: cancelled',
  rejected: ':no_entry: rejected',
  expired: ':hourglass_flowing_sand: approval expired',
};

export function planMessage(job: RecoveryJob, approvers: readonly string[]): ChatMessage {
  const id = jobId(job.number);
  const at = job.decidedAt ? ` at ${formatUtc(job.decidedAt)}` : '';
  const decided = job.decidedBy ? md` by ${mention(job.decidedBy)}${at}` : md``;
  const decision =
    job.state === 'awaiting_approval'
      ? approvalLine(approvers, job.expiresAt)
      : job.state === 'rejected'
        ? md`${STATE_LABEL.rejected}${decided}.`
        : job.decidedBy
          ? md`Approved${decided}; ${job.state === 'queued' ? 'queued' : STATE_LABEL[job.state]}.`
          : md`${STATE_LABEL[job.state]}`;
  const what = describeJob(job.env, job.params);
  const head = md`${bold(md`${id}: ${what}`)}, requested by ${mention(job.requestedBy)}`;
  const text = md`${head}\n${escapeMrkdwn(job.plan ?? '')}\n${decision}`;
  const blocks: Block[] = [...sections(text)];
  if (job.state === 'awaiting_approval') {
    blocks.push({
      type: 'actions',
      block_id: `job_decision_${job.number}`,
      elements: [
        {
          type: 'button',
          action_id: APPROVE_ACTION,
          style: 'danger',
          value: String(job.number),
          text: { type: 'plain_text', text: 'Approve' },
        },
        {
          type: 'button',
          action_id: REJECT_ACTION,
          value: String(job.number),
          text: { type: 'plain_text', text: 'Reject' },
        },
      ],
    });
  }
  return { text: md`${id}: ${what} (${job.state.replace('_', ' ')})`.text, blocks };
}

/**
 * `approvers` are the people who may approve this job: without the requester, unless allow_self_approval. Naming
 * the requester there would promise an approval the service refuses.
 */
function approvalLine(approvers: readonly string[], expiresAt: Date | undefined): Mrkdwn {
  const until = expiresAt ? formatUtc(expiresAt) : undefined;
  if (approvers.length === 0) {
    const expiry = until ? `; the request expires at ${until}` : '';
    const roles = code('approvals.approver_roles');
    return md`Nobody can approve it: no other approver is configured (add one to ${roles})${expiry}.`;
  }
  const who = approvers.length === 1 ? mention(approvers[0]!) : md`one of ${joinMd(approvers.map(mention), ', ')}`;
  return md`Needs approval by ${who}${until ? `, until ${until}` : ''}.`;
}

function stepTime(step: StepRecord): string {
  return step.finishedAt ? formatStepTime(step.finishedAt.getTime() - step.startedAt.getTime()) : '';
}

function stepLine(step: StepRecord): Mrkdwn {
  const took = step.finishedAt ? ` (${stepTime(step)})` : '';
  const icon = step.state === 'succeeded' ? ':white_check_mark:' : step.state === 'failed' ? ':x:' : ':gear:';
  const ended = step.finishedAt ? `, ended ${formatUtcSeconds(step.finishedAt)}${took}` : '';
  const detail = step.detail.length > 0 ? md`: ${saidText(step.detail)}` : md``;
  return md`${icon} ${escapeMrkdwn(step.name)}: started ${formatUtcSeconds(step.startedAt)}${ended}${detail}`;
}

export function progressMessage(
  job: RecoveryJob,
  steps: readonly StepRecord[],
  running: string | undefined,
): ChatMessage {
  const head = md`${bold(md`${jobId(job.number)}: ${describeJob(job.env, job.params)}`)}: ${STATE_LABEL[job.state]}`;
  const now = running && job.state === 'running' ? [italic(md`now: ${escapeMrkdwn(running)}`)] : [];
  return message(joinMd([head, ...steps.map(stepLine), ...now], '\n'), md`${jobId(job.number)} ${job.state}`);
}

export function resultMessage(job: RecoveryJob, steps: readonly StepRecord[], summary: JobSummary): ChatMessage {
  const icon = summary.succeeded
    ? summary.incomplete
      ? ':warning:'
      : ':white_check_mark:'
    : job.state === 'cancelled'
      ? ':no_entry_sign:'
      : ':x:';
  const timings = steps.map((s) => md`• ${escapeMrkdwn(s.name)}: ${s.finishedAt ? stepTime(s) : 'did not finish'}`);
  const verified = summary.verified.map((v) => md`• ${escapeMrkdwn(v)}`);
  const text = joinMd(
    [
      md`${icon} ${bold(md`${jobId(job.number)} ${outcomeWord(summary)}: ${saidText(summary.headline)}`)}`,
      md`Took ${formatStepTime(summary.totalMs)} in all.`,
      ...(summary.verified.length > 0 ? [md`*Verified*`, ...verified] : []),
      ...(timings.length > 0 ? [md`*Steps*`, ...timings] : []),
    ],
    '\n',
  );
  return message(text, md`${jobId(job.number)} ${outcomeWord(summary)}: ${saidText(summary.headline)}`);
}

/**
 * A scheduled backup or drill, posted on its own in the emergency channel: success in one quiet line; failure
 * loudly (@here), with the step that failed and why, and the other steps' times.
 */
export function scheduledResultMessage(
  job: RecoveryJob,
  steps: readonly StepRecord[],
  summary: JobSummary,
): ChatMessage {
  if (summary.succeeded) {
    const icon = summary.incomplete ? ':warning:' : ':white_check_mark:';
    const drilled = job.params.kind === 'drill' && summary.verified.length > 0;
    const checks = drilled ? md` ${escapeMrkdwn(summary.verified.slice(0, 2).join('; '))}.` : md``;
    return line(md`${icon} ${jobId(job.number)} ${saidText(summary.headline)}${checks}`);
  }
  const text = joinMd(
    [
      md`:rotating_light: ${HERE} ${bold(md`${jobId(job.number)} failed: ${describeJob(job.env, job.params)}`)}`,
      saidText(summary.headline),
      ...steps.map((s) => md`• ${escapeMrkdwn(s.name)}: ${s.state}${s.finishedAt ? ` (${stepTime(s)})` : ''}`),
    ],
    '\n',
  );
  return message(text, md`${jobId(job.number)} failed: ${saidText(summary.headline)}`);
}

/**
 * Two words only, as the API promises: a cancelled job did not succeed, so it failed (its headline says it was
 * cancelled).
 */
function outcomeWord(summary: JobSummary): string {
  return summary.succeeded ? 'succeeded' : 'failed';
}

export function renderJobs(jobs: readonly RecoveryJob[]): Reply {
  if (jobs.length === 0) return line(md`No recovery job is running or waiting.`);
  const lines = jobs.map((j) => {
    const ago = formatDuration(Date.now() - j.createdAt.getTime());
    const requested = md`requested by ${mention(j.requestedBy)} ${ago} ago`;
    return md`• *${jobId(j.number)}* ${describeJob(j.env, j.params)}: ${STATE_LABEL[j.state]}, ${requested}`;
  });
  return message(joinMd(lines, '\n'));
}

export function renderAudit(entries: readonly AuditEntry[], env: string | undefined): Reply {
  const of = env ? ` of ${env}` : '';
  if (entries.length === 0) return line(md`The audit trail${of} is empty.`);
  const lines = entries.map((e) => {
    const detail = e.detail ? md`: ${escapeMrkdwn(e.detail.split('\n')[0] ?? '')}` : md``;
    const where = `${e.job ? `${jobId(e.job)} ` : ''}${e.run ? `${runId(e.run)} ` : ''}${e.env ? `[${e.env}] ` : ''}`;
    return md`${formatUtcSeconds(e.at)}  ${where}${mention(e.actor)} ${e.action}${detail}`;
  });
  return message(joinMd([md`*Audit trail${of}*, newest first:`, ...lines], '\n'));
}

/** "passed", or "passed, 2 checks skipped (…)": a pass with a skipped check is not a full pass. */
function drillVerdict(drill: DrillRecord): Mrkdwn {
  if (!drill.passed) return bold('failed');
  const n = drill.skippedChecks.length;
  if (n === 0) return md`passed`;
  const which = drill.skippedChecks.map((c) => c.check).join(', ');
  return md`passed, ${n} check${n === 1 ? '' : 's'} skipped (${which})`;
}

export function renderBackupListing(listing: BackupListing): Reply {
  const now = Date.now();
  const rpo = formatDuration(listing.rpoMinutes * 60_000);
  const lines = [md`*Backups of ${listing.env}* in ${listing.location}, newest first (RPO ${rpo}):`];
  if (listing.backups.length === 0) lines.push(italic('No backups.'));
  for (const b of listing.backups) {
    const age = formatDuration(now - b.takenAt.getTime());
    const safety = b.safetyCopy ? md` ${italic('(safety copy taken before a restore)')}` : md``;
    const future = b.inFuture ? md` ${italic('(time in the future, never latest)')}` : md``;
    const verdict = b.withinRpo ? md`inside RPO` : bold('outside RPO');
    const when = b.inFuture ? md`` : md`, ${age} old, ${verdict}`;
    lines.push(md`• ${code(b.name)} ${formatUtc(b.takenAt)}, ${formatSize(b.size)}${when}${safety}${future}`);
  }
  if (listing.snapshots) {
    lines.push(md`*RDS snapshots*`);
    if (listing.snapshots.length === 0) lines.push(italic('No snapshots.'));
    for (const s of listing.snapshots) {
      lines.push(md`• ${code(s.id)} ${s.type}, ${s.status}${s.createdAt ? `, ${formatUtc(s.createdAt)}` : ''}`);
    }
  }
  if (listing.snapshotError) lines.push(italic(md`RDS snapshots could not be listed: ${listing.snapshotError}`));
  return message(joinMd(lines, '\n'));
}

export function renderBackupCatalogue(c: BackupCatalogue): Reply {
  const now = Date.now();
  const drill = c.lastDrill;
  const rpo = formatDuration(c.rpoMinutes * 60_000);
  const noDrill = md`Last drill: ${italic('none yet')} (${code(`/dr drill ${c.env}`)} runs one).`;
  const lastDrill = drill ? lastDrillLine(drill, now) : noDrill;
  const kept = `RPO ${rpo}, kept ${c.retentionDays} days`;
  const lines = [md`*Backups of ${c.env}* in ${c.location}, newest first (${kept}):`, lastDrill];
  if (c.backups.length === 0) lines.push(italic('No backups.'));
  for (const b of c.backups) {
    const age = b.inFuture ? 'time in the future' : `${formatDuration(now - b.takenAt.getTime())} old`;
    const checksum = b.catalogue
      ? b.catalogue.checkedAt
        ? md`sha256 ${b.catalogue.sha256.slice(0, 12)} checked`
        : md`sha256 ${b.catalogue.sha256.slice(0, 12)} *not checked*`
      : b.hasSidecar
        ? md`checksum file, not in the catalogue`
        : md`no checksum (not taken by Lifeline)`;
    const last = b.lastDrill;
    const drilled = last ? md`, drill ${drillVerdict(last)} ${formatUtc(last.finishedAt)}` : md``;
    const safety = b.safetyCopy ? md` ${italic('(safety copy)')}` : md``;
    const future = b.inFuture ? md` ${italic('(time in the future, never latest)')}` : md``;
    const rpoNote = b.withinRpo || b.inFuture ? '' : ', outside RPO';
    lines.push(md`• ${code(b.name)} ${age}, ${formatSize(b.size)}, ${checksum}${drilled}${rpoNote}${safety}${future}`);
  }
  return message(joinMd(lines, '\n'));
}

function lastDrillLine(drill: NonNullable<BackupCatalogue['lastDrill']>, now: number): Mrkdwn {
  const icon = !drill.passed ? ':x:' : drill.skippedChecks.length > 0 ? ':warning:' : ':white_check_mark:';
  const restore = drill.restoreMs !== undefined ? `, restore ${formatDuration(drill.restoreMs)}` : '';
  const ago = formatDuration(now - drill.finishedAt.getTime());
  return md`Last drill: ${icon} ${drillVerdict(drill)} ${ago} ago with ${code(drill.backupName)}${restore}.`;
}

export function renderStatus(statuses: readonly EnvStatus[]): Reply {
  const lines: Mrkdwn[] = [];
  for (const s of statuses) {
    const rpo = formatDuration(s.rpoMinutes * 60_000);
    lines.push(bold(s.env));
    if (s.rds) {
      const rds = 'error' in s.rds ? `could not be read (${s.rds.error})` : s.rds.status;
      lines.push(md`• RDS ${s.rds.instance}: ${rds}`);
    }
    if (s.backupError) lines.push(md`• Backups: could not be listed (${s.backupError})`);
    else if (!s.newestBackup) lines.push(md`• Backups: *none* (RPO ${rpo} breached)`);
    else {
      const age = formatDuration(s.newestBackup.ageMs);
      const verdict = s.newestBackup.breached ? md`:warning: *RPO breached* (${rpo})` : md`inside RPO (${rpo})`;
      lines.push(md`• Newest backup ${code(s.newestBackup.name)}: ${age} old, ${verdict}`);
    }
    for (const svc of s.services) {
      if ('error' in svc) {
        lines.push(md`• ECS ${svc.name}: could not be read (${svc.error})`);
        continue;
      }
      const { running, desired, deployments } = svc.service;
      lines.push(md`• ECS ${svc.name}: running ${running}/${desired} desired, ${deployments.length} deployment(s)`);
    }
    if (s.health) {
      const r = s.health.result;
      const answer = r.status !== undefined ? `HTTP ${r.status}` : `no answer (${r.error ?? 'error'})`;
      lines.push(md`• ${s.health.url}: ${answer} in ${r.latencyMs} ms`);
    }
  }
  return message(joinMd(lines, '\n'));
}

/** What a /dr logs reply was asked for. */
export interface LogsAsked {
  readonly env: string;
  readonly service: string;
  readonly sinceMs: number;
  readonly filter: string | undefined;
}

/**
 * A logs reply goes to the asker's response_url, never through chat.postMessage in the channel: the channel's
 * budget of about one message a second stays with the incident's own posts. Slack takes at most 5 messages at one
 * response_url in 30 minutes, so the lines fill at most 4 and the 5th, when lines were left out, says how many and
 * how to narrow the search.
 */
export const LOG_REPLY_MESSAGES = 4;
/** Block text per message: Slack refuses more with msg_blocks_too_long from about 13,000 characters (bolt-js #2509). */
const LOG_MESSAGE_CHARS = 12_000;
/** One code block per section; Slack's section limit is 3,000 characters. */
const LOG_SECTION_CHARS = 2_900;
/** The three backticks and the line break at each end of a code block. */
const FENCES = 8;

export function logReplies(events: readonly LogEvent[], asked: LogsAsked): ChatMessage[] {
  const filter = asked.filter !== undefined ? `, filter "${asked.filter}"` : '';
  const what = `${asked.env} ${asked.service}, last ${Math.round(asked.sinceMs / 60_000)} min${filter}`;
  if (events.length === 0) return [line(md`No log lines for ${what}.`)];
  const lines = events.map((e) => fitLine(`${formatUtcSeconds(e.at).replace(' UTC', '')} ${e.message.trimEnd()}`));
  const total = `${events.length} line${events.length === 1 ? '' : 's'}`;
  const header = (shown: number) =>
    md`:scroll: Logs of ${what}: ${total}${shown < events.length ? `, the newest ${shown} shown` : ''}`;
  // Room for the header is kept in every message: which one it lands in is known only at the end.
  const messages = newestThatFit(lines, LOG_MESSAGE_CHARS - header(0).text.length - 20);
  const shown = messages.reduce((n, blocks) => n + blocks.reduce((k, block) => k + block.length, 0), 0);
  const replies: ChatMessage[] = messages.map((blocks, i) => {
    const body = blocks.map((block) => section(codeBlock(block)));
    return {
      text: md`Logs of ${what} (${i + 1} of ${messages.length})`.text,
      blocks: i === 0 ? [section(header(shown)), ...body] : body,
    };
  });
  const left = events.length - shown;
  if (left === 0) return replies;
  const since = md`${code('--since 5m')} (a shorter window)`;
  const narrow = md`narrow it with ${since} or ${code('--filter TEXT')} (only lines with TEXT)`;
  const were = left === 1 ? 'line was' : 'lines were';
  const note = md`:scissors: ${left} older ${were} left out: the newest ${shown} fill ${LOG_REPLY_MESSAGES} messages.`;
  return [...replies, line(md`${note} To see the rest, ${narrow}.`)];
}

/** A line longer than a whole section is cut, so that every line shown sits in one code block. */
function fitLine(text: string): string {
  const room = LOG_SECTION_CHARS - FENCES - 1;
  if (escapedLength(text) <= room) return text;
  let used = 0;
  let end = 0;
  for (const char of text) {
    const width = escapedLength(char);
    if (used + width > room - 1) break;
    used += width;
    end += char.length;
  }
  return `${text.slice(0, end)}…`;
}

/** What text takes in a code block: &, < and > become entities (a ``` becomes ''', the same length). */
function escapedLength(text: string): number {
  return text.length + 4 * (text.match(/&/g)?.length ?? 0) + 3 * (text.match(/[<>]/g)?.length ?? 0);
}

/**
 * Packs lines into code blocks of whole lines and the blocks into at most LOG_REPLY_MESSAGES messages, from the
 * newest line back (during an incident the latest lines matter most); the result is in time order.
 */
function newestThatFit(lines: readonly string[], messageChars: number): string[][][] {
  const blocks: string[][] = [];
  let block: string[] = [];
  let length = FENCES;
  for (let i = lines.length - 1; i >= 0; i--) {
    const cost = escapedLength(lines[i]!) + 1;
    if (length + cost > LOG_SECTION_CHARS && block.length > 0) {
      blocks.push(block);
      block = [];
      length = FENCES;
    }
    block.unshift(lines[i]!);
    length += cost;
  }
  if (block.length > 0) blocks.push(block);
  const messages: string[][][] = [];
  let current: string[][] = [];
  let used = 0;
  for (const next of blocks) {
    const cost = codeBlock(next).text.length;
    if (used + cost > messageChars && current.length > 0) {
      messages.push(current);
      current = [];
      used = 0;
      if (messages.length === LOG_REPLY_MESSAGES) break;
    }
    current.unshift(next);
    used += cost;
  }
  if (current.length > 0) messages.push(current);
  return messages.reverse();
}
