// Block Kit for /dr: plans with Approve/Reject, live progress, results, listings.
import type { Block, ChatMessage } from '../adapters/chat.js';
import type { LogEvent } from '../adapters/aws.js';
import type { AuditEntry } from '../audit/store.js';
import type { Reply } from '../commands/registry.js';
import { formatDuration, formatUtc, formatUtcSeconds } from '../incidents/format.js';
import { describeJob, jobId, type RecoveryJob, type StepRecord } from '../recovery/model.js';
import type { JobSummary } from '../recovery/ports.js';
import type { DrillRecord } from '../backups/catalogue.js';
import type { BackupCatalogue, BackupListing, EnvStatus } from '../recovery/queries.js';
import { escapeMrkdwn, mention, sections } from './blocks.js';

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
  const who = approvers.length > 0 ? approvers.map(mention).join(', ') : '_(nobody is configured to approve)_';
  const decided = job.decidedBy ? ` by ${mention(job.decidedBy)}${job.decidedAt ? ` at ${formatUtc(job.decidedAt)}` : ''}` : '';
  const decision =
    job.state === 'awaiting_approval'
      ? `Needs approval by one of ${who} (not the requester)${job.expiresAt ? `, until ${formatUtc(job.expiresAt)}` : ''}.`
      : job.state === 'rejected'
        ? `${STATE_LABEL.rejected}${decided}.`
        : job.decidedBy
          ? `Approved${decided}; ${job.state === 'queued' ? 'queued' : STATE_LABEL[job.state]}.`
          : STATE_LABEL[job.state];
  const text = `*${id}: ${escapeMrkdwn(describeJob(job.env, job.params))}*, requested by ${mention(job.requestedBy)}\n${escapeMrkdwn(job.plan ?? '')}\n${decision}`;
  const blocks: Block[] = [...sections(text)];
  if (job.state === 'awaiting_approval') {
    blocks.push({
      type: 'actions',
      block_id: `job_decision_${job.number}`,
      elements: [
        { type: 'button', action_id: APPROVE_ACTION, style: 'danger', value: String(job.number), text: { type: 'plain_text', text: 'Approve' } },
        { type: 'button', action_id: REJECT_ACTION, value: String(job.number), text: { type: 'plain_text', text: 'Reject' } },
      ],
    });
  }
  return { text: `${id}: ${describeJob(job.env, job.params)} (${job.state.replace('_', ' ')})`, blocks };
}

function stepLine(step: StepRecord): string {
  const took = step.finishedAt ? ` (${formatDuration(step.finishedAt.getTime() - step.startedAt.getTime())})` : '';
  const icon = step.state === 'succeeded' ? ':white_check_mark:' : step.state === 'failed' ? ':x:' : ':gear:';
  return `${icon} ${escapeMrkdwn(step.name)}: started ${formatUtcSeconds(step.startedAt)}${step.finishedAt ? `, ended ${formatUtcSeconds(step.finishedAt)}${took}` : ''}${step.detail ? `: ${escapeMrkdwn(step.detail)}` : ''}`;
}

export function progressMessage(job: RecoveryJob, steps: readonly StepRecord[], running: string | undefined): ChatMessage {
  const head = `*${jobId(job.number)}: ${escapeMrkdwn(describeJob(job.env, job.params))}*: ${STATE_LABEL[job.state]}`;
  const lines = [head, ...steps.map(stepLine), ...(running && job.state === 'running' ? [`_now: ${escapeMrkdwn(running)}_`] : [])];
  const text = lines.join('\n');
  return { text: `${jobId(job.number)} ${job.state}`, blocks: sections(text) };
}

export function resultMessage(job: RecoveryJob, steps: readonly StepRecord[], summary: JobSummary): ChatMessage {
  const icon = summary.succeeded
    ? summary.incomplete
      ? ':warning:'
      : ':white_check_mark:'
    : job.state === 'cancelled'
      ? ':no_entry_sign:'
      : ':x:';
  const timings = steps.map((s) => `• ${escapeMrkdwn(s.name)}: ${s.finishedAt ? formatDuration(s.finishedAt.getTime() - s.startedAt.getTime()) : 'did not finish'}`);
  const text = [
    `${icon} *${jobId(job.number)} ${outcomeWord(summary)}: ${escapeMrkdwn(summary.headline)}*`,
    `Took ${formatDuration(summary.totalMs)} in all.`,
    ...(summary.verified.length > 0 ? ['*Verified*', ...summary.verified.map((v) => `• ${escapeMrkdwn(v)}`)] : []),
    ...(timings.length > 0 ? ['*Steps*', ...timings] : []),
  ].join('\n');
  return { text: `${jobId(job.number)} ${outcomeWord(summary)}: ${summary.headline}`, blocks: sections(text) };
}

/**
 * A scheduled backup or drill, posted on its own in the emergency channel: success in one quiet line; failure
 * loudly (@here), with the step that failed and why, and the other steps' times.
 */
export function scheduledResultMessage(job: RecoveryJob, steps: readonly StepRecord[], summary: JobSummary): ChatMessage {
  if (summary.succeeded) {
    const icon = summary.incomplete ? ':warning:' : ':white_check_mark:';
    const drill = job.params.kind === 'drill' && summary.verified.length > 0;
    const objectives = drill ? ` ${summary.verified.slice(0, 2).join('; ')}.` : '';
    const line = `${icon} ${jobId(job.number)} ${summary.headline}${objectives}`;
    return { text: line };
  }
  const text = [
    `:rotating_light: <!here> *${jobId(job.number)} failed: ${escapeMrkdwn(describeJob(job.env, job.params))}*`,
    escapeMrkdwn(summary.headline),
    ...steps.map((s) => `• ${escapeMrkdwn(s.name)}: ${s.state}${s.finishedAt ? ` (${formatDuration(s.finishedAt.getTime() - s.startedAt.getTime())})` : ''}`),
  ].join('\n');
  return { text: `${jobId(job.number)} failed: ${summary.headline}`, blocks: sections(text) };
}

/** The contract's two words: a cancelled job did not succeed, so it failed (its headline says it was cancelled). */
function outcomeWord(summary: JobSummary): string {
  return summary.succeeded ? 'succeeded' : 'failed';
}

export function renderJobs(jobs: readonly RecoveryJob[]): Reply {
  if (jobs.length === 0) return { text: 'No recovery job is running or waiting.' };
  const text = jobs
    .map((j) => `• *${jobId(j.number)}* ${escapeMrkdwn(describeJob(j.env, j.params))}: ${STATE_LABEL[j.state]}, requested by ${mention(j.requestedBy)} ${formatDuration(Date.now() - j.createdAt.getTime())} ago`)
    .join('\n');
  return { text, blocks: sections(text) };
}

export function renderAudit(entries: readonly AuditEntry[], env: string | undefined): Reply {
  if (entries.length === 0) return { text: `The audit trail${env ? ` of ${env}` : ''} is empty.` };
  const lines = entries.map(
    (e) => `${formatUtcSeconds(e.at)}  ${e.job ? `${jobId(e.job)} ` : ''}${e.env ? `[${e.env}] ` : ''}${mention(e.actor)} ${e.action}${e.detail ? `: ${escapeMrkdwn(e.detail.split('\n')[0] ?? '')}` : ''}`,
  );
  const text = [`*Audit trail${env ? ` of ${env}` : ''}*, newest first:`, ...lines].join('\n');
  return { text, blocks: sections(text) };
}

function size(bytes: number): string {
  if (bytes >= 1 << 30) return `${(bytes / (1 << 30)).toFixed(1)} GB`;
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toFixed(1)} MB`;
  return `${(bytes / 1024).toFixed(1)} KB`;
}

const FUTURE_TAG = ' _(time in the future, never latest)_';

/** "passed", or "passed, 2 checks skipped": a pass with a skipped check is not a full pass. */
function drillVerdict(drill: DrillRecord, failed: string): string {
  if (!drill.passed) return failed;
  const n = drill.skippedChecks.length;
  if (n === 0) return 'passed';
  return `passed, ${n} check${n === 1 ? '' : 's'} skipped (${drill.skippedChecks.map((c) => c.check).join(', ')})`;
}

export function renderBackupListing(listing: BackupListing): Reply {
  const now = Date.now();
  const lines = [`*Backups of ${listing.env}* in ${escapeMrkdwn(listing.location)}, newest first (RPO ${formatDuration(listing.rpoMinutes * 60_000)}):`];
  if (listing.backups.length === 0) lines.push('_No backups._');
  for (const b of listing.backups) {
    const age = formatDuration(now - b.takenAt.getTime());
    const tag = `${b.safetyCopy ? ' _(safety copy taken before a restore)_' : ''}${b.inFuture ? FUTURE_TAG : ''}`;
    const when = b.inFuture ? '' : `, ${age} old, ${b.withinRpo ? 'inside RPO' : '*outside RPO*'}`;
    lines.push(`• \`${b.name}\` ${formatUtc(b.takenAt)}, ${size(b.size)}${when}${tag}`);
  }
  if (listing.snapshots) {
    lines.push('*RDS snapshots*');
    if (listing.snapshots.length === 0) lines.push('_No snapshots._');
    for (const s of listing.snapshots) lines.push(`• \`${s.id}\` ${s.type}, ${s.status}${s.createdAt ? `, ${formatUtc(s.createdAt)}` : ''}`);
  }
  if (listing.snapshotError) lines.push(`_RDS snapshots could not be listed: ${escapeMrkdwn(listing.snapshotError)}_`);
  const text = lines.join('\n');
  return { text, blocks: sections(text) };
}

export function renderBackupCatalogue(c: BackupCatalogue): Reply {
  const now = Date.now();
  const last = c.lastDrill;
  const lastIcon = !last?.passed ? ':x: ' : last.skippedChecks.length > 0 ? ':warning: ' : ':white_check_mark: ';
  const restored = last?.restoreMs !== undefined ? `, restore ${formatDuration(last.restoreMs)}` : '';
  const lines = [
    `*Backups of ${c.env}* in ${escapeMrkdwn(c.location)}, newest first (RPO ${formatDuration(c.rpoMinutes * 60_000)}, kept ${c.retentionDays} days):`,
    last
      ? `Last drill: ${lastIcon}${drillVerdict(last, '*failed*')} ` +
        `${formatDuration(now - last.finishedAt.getTime())} ago with \`${last.backupName}\`${restored}.`
      : 'Last drill: _none yet_ (`/dr drill ' + c.env + '` runs one).',
  ];
  if (c.backups.length === 0) lines.push('_No backups._');
  for (const b of c.backups) {
    const age = b.inFuture ? 'time in the future' : `${formatDuration(now - b.takenAt.getTime())} old`;
    const checksum = b.catalogue
      ? b.catalogue.checkedAt
        ? `sha256 ${b.catalogue.sha256.slice(0, 12)} checked`
        : `sha256 ${b.catalogue.sha256.slice(0, 12)} *not checked*`
      : b.hasSidecar
        ? 'checksum file, not in the catalogue'
        : 'no checksum (not taken by Lifeline)';
    const drill = b.lastDrill
      ? `, drill ${drillVerdict(b.lastDrill, '*failed*')} ${formatUtc(b.lastDrill.finishedAt)}`
      : '';
    const tag = `${b.safetyCopy ? ' _(safety copy)_' : ''}${b.inFuture ? FUTURE_TAG : ''}`;
    const rpo = b.withinRpo || b.inFuture ? '' : ', outside RPO';
    lines.push(`• \`${b.name}\` ${age}, ${size(b.size)}, ${checksum}${drill}${rpo}${tag}`);
  }
  const text = lines.join('\n');
  return { text, blocks: sections(text) };
}

export function renderStatus(statuses: readonly EnvStatus[]): Reply {
  const lines: string[] = [];
  for (const s of statuses) {
    lines.push(`*${s.env}*`);
    if (s.rds) lines.push(`• RDS ${s.rds.instance}: ${'error' in s.rds ? `could not be read (${escapeMrkdwn(s.rds.error)})` : s.rds.status}`);
    if (s.backupError) lines.push(`• Backups: could not be listed (${escapeMrkdwn(s.backupError)})`);
    else if (!s.newestBackup) lines.push(`• Backups: *none* (RPO ${formatDuration(s.rpoMinutes * 60_000)} breached)`);
    else {
      lines.push(
        `• Newest backup \`${s.newestBackup.name}\`: ${formatDuration(s.newestBackup.ageMs)} old, ${s.newestBackup.breached ? `:warning: *RPO breached* (${formatDuration(s.rpoMinutes * 60_000)})` : `inside RPO (${formatDuration(s.rpoMinutes * 60_000)})`}`,
      );
    }
    for (const svc of s.services) {
      lines.push('error' in svc ? `• ECS ${svc.name}: could not be read (${escapeMrkdwn(svc.error)})` : `• ECS ${svc.name}: running ${svc.service.running}/${svc.service.desired} desired, ${svc.service.deployments.length} deployment(s)`);
    }
    if (s.health) {
      const r = s.health.result;
      lines.push(`• ${escapeMrkdwn(s.health.url)}: ${r.status !== undefined ? `HTTP ${r.status}` : `no answer (${escapeMrkdwn(r.error ?? 'error')})`} in ${r.latencyMs} ms`);
    }
  }
  const text = lines.join('\n');
  return { text, blocks: sections(text) };
}

/** Log lines as code blocks of whole lines, each block within Slack's 3000-character section limit. */
export function logMessages(events: readonly LogEvent[], limit = 2_900): ChatMessage[] {
  const lines = events.map((e) => `${e.at.toISOString().slice(0, 19).replace('T', ' ')} ${e.message.replace(/```/g, "'''").trimEnd()}`);
  const chunks: string[][] = [];
  let current: string[] = [];
  let length = 0;
  for (const raw of lines) {
    const line = raw.length > limit ? `${raw.slice(0, limit - 1)}…` : raw;
    if (length + line.length + 1 > limit && current.length > 0) {
      chunks.push(current);
      current = [];
      length = 0;
    }
    current.push(line);
    length += line.length + 1;
  }
  if (current.length > 0) chunks.push(current);
  return chunks.map((chunk) => {
    const text = `\`\`\`\n${chunk.join('\n')}\n\`\`\``;
    return { text, blocks: [{ type: 'section', text: { type: 'mrkdwn', text } }] };
  });
}
