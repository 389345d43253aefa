// Follows a recovery job from the terminal: its plan, the approval it waits for, each step as it starts and ends,
// and the result. It reads PostgreSQL, the jobs' source of truth, so it works whoever runs the job and whether or
// not Slack answers.
import type { Db } from '../db/pool.js';
import { formatStepTime } from '../incidents/format.js';
import { jobId, type JobState, type RecoveryJob } from '../recovery/model.js';
import * as store from '../recovery/store.js';
import { toTerminal } from './terminal.js';

const FINAL: readonly JobState[] = ['succeeded', 'failed', 'cancelled', 'rejected', 'expired'];

export interface FollowOptions {
  readonly pollMs?: number;
  /** Stops following (the job goes on) when aborted: Ctrl-C. */
  readonly signal?: AbortSignal;
}

/** Prints the job's story until it ends; returns its final state, or undefined when following was stopped. */
export async function followJob(db: Db, number: number, print: (line: string) => void, options: FollowOptions = {}): Promise<JobState | undefined> {
  const pollMs = options.pollMs ?? 500;
  const said = new Set<string>();
  const say = (key: string, line: string): void => {
    if (said.has(key)) return;
    said.add(key);
    print(line);
  };
  for (;;) {
    const job = await store.getJob(db, number);
    if (!job) throw new Error(`there is no job ${jobId(number)}`);
    if (job.plan) say('plan', `${jobId(number)} plan:\n${indent(toTerminal(job.plan))}`);
    if (job.state === 'awaiting_approval') {
      const until = job.expiresAt ? ` until ${job.expiresAt.toISOString().slice(11, 16)} UTC` : '';
      say('approval', `${jobId(number)} waits for an approver${until}: \`lifeline approve ${jobId(number)}\`, or Approve in Slack.`);
    }
    if (job.decidedBy && job.state !== 'rejected') say('approved', `${jobId(number)} approved by @${job.decidedBy}.`);
    for (const step of await store.steps(db, number)) {
      say(`start-${step.index}`, `  ▶ ${step.name}`);
      if (step.state === 'running' || !step.finishedAt) continue;
      const took = formatStepTime(step.finishedAt.getTime() - step.startedAt.getTime());
      say(`end-${step.index}`, `  ${step.state === 'succeeded' ? '✓' : '✗'} ${step.name} (${took})${step.detail ? `: ${toTerminal(step.detail)}` : ''}`);
    }
    if (FINAL.includes(job.state)) {
      print(outcomeLine(job));
      return job.state;
    }
    if (options.signal?.aborted) return undefined;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, pollMs);
      options.signal?.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
    if (options.signal?.aborted) {
      print(`Stopped following ${jobId(number)}; it goes on (\`lifeline dr jobs\`).`);
      return undefined;
    }
  }
}

function outcomeLine(job: RecoveryJob): string {
  const took = job.startedAt && job.finishedAt ? ` in ${formatStepTime(job.finishedAt.getTime() - job.startedAt.getTime())}` : '';
  return `${jobId(job.number)} ${job.state}${took}${job.outcome ? `: ${toTerminal(job.outcome)}` : ''}`;
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
}
