// Follows a recovery job (GET /api/v1/jobs/JOB-n) or a runbook run (GET /api/v1/runs/RUN-n) from the terminal: its
// plan, the approval it waits for, each step as it starts and ends, and the result. The server holds each request until the job changes, so following
// costs a request per change; it works whoever runs the job and whether or not Slack answers.
import type { JobView } from '../api/job-view.js';
import type { RunView } from '../api/run-view.js';
import type { RunState } from '../../domain/runbooks/model.js';
import { formatStepTime } from '../../shared/format.js';
import type { JobState } from '../../domain/recovery/model.js';
import { ApiUnreachableError, type ApiAnswer, type ApiClient, type ApiRefusal } from './client.js';
import { toTerminal } from './terminal.js';

/** How long the server may hold one request waiting for a change. */
const WAIT_SECONDS = 20;

export interface FollowOptions {
  /** Stops following (the job goes on) when aborted: Ctrl-C. */
  readonly signal?: AbortSignal;
}

/** Prints the job's story until it ends; returns its final state, or undefined when following was stopped. */
export async function followJob(
  client: ApiClient,
  job: string,
  print: (line: string) => void,
  options: FollowOptions = {},
): Promise<JobState | undefined> {
  const story = new JobStory(print);
  const last = await follow(job, (wait) => client.job(job, wait, options.signal), {
    tell: (view) => story.tell(view),
    done: (view) => view.result !== null,
    version: (view) => view.version,
    stopped: `Stopped following ${job}; it goes on (\`lifeline dr jobs\`).`,
    print,
    options,
  });
  return last?.state;
}

/**
 * Asks for the view, then for each change of it (the server holds the request until then), telling each, until
 * `done`; undefined when following was stopped.
 */
async function follow<V extends { readonly ok: true }>(
  id: string,
  fetch: (wait: { version?: string; waitSeconds: number }) => Promise<ApiAnswer<V | ApiRefusal>>,
  how: {
    tell: (view: V) => void;
    done: (view: V) => boolean;
    version: (view: V) => string;
    stopped: string;
    print: (line: string) => void;
    options: FollowOptions;
  },
): Promise<V | undefined> {
  let version: string | undefined;
  for (;;) {
    let answer;
    try {
      answer = await fetch(version ? { version, waitSeconds: WAIT_SECONDS } : { waitSeconds: 0 });
    } catch (err) {
      if (how.options.signal?.aborted) {
        how.print(how.stopped);
        return undefined;
      }
      throw err;
    }
    const view = answer.body;
    if (!view.ok) {
      throw new ApiUnreachableError(`Lifeline could not show ${id} (HTTP ${answer.status}): ${toTerminal(view.reply)}`);
    }
    how.tell(view);
    if (how.done(view)) return view;
    version = how.version(view);
  }
}

/** Says each part of a job's story once, in order, however many times the same state is seen. */
class JobStory {
  private readonly said = new Set<string>();

  constructor(private readonly print: (line: string) => void) {}

  tell(view: JobView): void {
    const id = view.job;
    if (view.plan) this.say('plan', `${id} plan:\n${indent(toTerminal(view.plan))}`);
    if (view.state === 'awaiting_approval') {
      const until = view.expires_at ? ` until ${view.expires_at.slice(11, 16)} UTC` : '';
      this.say('approval', `${id} waits for an approver${until}: \`lifeline approve ${id}\`, or Approve in Slack.`);
    }
    if (view.decided_by && view.state !== 'rejected') this.say('approved', `${id} approved by @${view.decided_by}.`);
    for (const step of view.steps) {
      this.say(`start-${step.index}`, `  ▶ ${step.name}`);
      if (step.state === 'running' || !step.finished_at) continue;
      const took = formatStepTime(Date.parse(step.finished_at) - Date.parse(step.started_at));
      this.say(
        `end-${step.index}`,
        `  ${step.state === 'succeeded' ? '✓' : '✗'} ${step.name} (${took})${detail(step.detail)}`,
      );
    }
    if (view.result) {
      const took = view.result.duration_ms === null ? '' : ` in ${formatStepTime(view.result.duration_ms)}`;
      this.say('result', `${id} ${view.state}${took}: ${toTerminal(view.result.outcome)}`);
    }
  }

  private say(key: string, line: string): void {
    if (this.said.has(key)) return;
    this.said.add(key);
    this.print(line);
  }
}

function detail(text: string): string {
  return text ? `: ${toTerminal(text)}` : '';
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `  ${line}`)
    .join('\n');
}

/**
 * Prints a runbook run's story until it ends, or until it stops at a failed step (it then waits for a person:
 * `lifeline run retry|skip|abort`); returns the state it was left in, or undefined when following was stopped.
 */
export async function followRun(
  client: ApiClient,
  run: string,
  print: (line: string) => void,
  options: FollowOptions = {},
): Promise<RunState | undefined> {
  const story = new RunStory(print);
  const last = await follow(run, (wait) => client.run(run, wait, options.signal), {
    tell: (view) => story.tell(view),
    done: (view) => view.result !== null || view.state === 'stopped',
    version: (view) => view.version_tag,
    stopped: `Stopped following ${run}; it goes on.`,
    print,
    options,
  });
  return last?.state;
}

class RunStory {
  private readonly said = new Set<string>();

  constructor(private readonly print: (line: string) => void) {}

  tell(view: RunView): void {
    const id = view.run;
    if (view.state === 'awaiting_approval') {
      const step = view.steps.find((s) => s.state === 'awaiting_approval');
      const what = step ? `step ${step.id}` : 'the run';
      this.say(
        `approval-${step?.index ?? 'run'}`,
        `${id} waits for an approval of ${what}: \`lifeline approve ${id}\`.`,
      );
    }
    for (const approval of view.approvals) {
      const what = approval.step === null ? 'the run' : `step ${view.steps[approval.step]?.id ?? approval.step + 1}`;
      this.say(`approved-${approval.step ?? 'run'}`, `${id}: @${approval.by} approved ${what}.`);
    }
    for (const step of view.steps) {
      if (step.state === 'pending' || step.state === 'awaiting_approval') continue;
      const attempt = `${step.index}-${step.attempts}`;
      if (step.state === 'awaiting_done') {
        this.say(`done-${attempt}`, `  ✋ ${step.id}: ${step.detail || 'by hand'}; then \`lifeline run done ${id}\`.`);
        continue;
      }
      this.say(
        `start-${attempt}`,
        `  ▶ ${step.id} (${step.kind})${step.attempts > 1 ? ` attempt ${step.attempts}` : ''}`,
      );
      if (!step.finished_at || step.state === 'running') continue;
      const took = step.started_at
        ? ` (${formatStepTime(Date.parse(step.finished_at) - Date.parse(step.started_at))})`
        : '';
      const mark = step.state === 'succeeded' ? '✓' : step.state === 'skipped' ? '»' : '✗';
      const missing = step.missing.map((m) => `\n      missing: ${m}`).join('');
      this.say(
        `end-${attempt}-${step.state}`,
        `  ${mark} ${step.id}${took}${step.detail ? `: ${step.detail}` : ''}${missing}`,
      );
    }
    if (view.state === 'stopped') {
      this.say(
        `stopped-${view.version_tag}`,
        `${id} stopped at a failed step: \`lifeline run retry|skip|abort ${id}\`.`,
      );
    }
    if (view.result) {
      const rto = view.result.rto_ms === null ? '' : `; RTO ${formatStepTime(view.result.rto_ms)}`;
      this.say('result', `${id} ${view.state}: ${toTerminal(view.result.outcome)}${rto}`);
    }
  }

  private say(key: string, line: string): void {
    if (this.said.has(key)) return;
    this.said.add(key);
    this.print(line);
  }
}
