// Follows a recovery job from the terminal through GET /api/v1/jobs/JOB-n: its plan, the approval it waits for, each
// step as it starts and ends, and the result. The server holds each request until the job changes, so following
// costs a request per change; it works whoever runs the job and whether or not Slack answers.
import type { JobView } from '../api/job-view.js';
import { formatStepTime } from '../../shared/format.js';
import type { JobState } from '../../domain/recovery/model.js';
import { ApiUnreachableError, type ApiClient } from './client.js';
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
  let version: string | undefined;
  for (;;) {
    let answer;
    try {
      answer = await client.job(
        job,
        version ? { version, waitSeconds: WAIT_SECONDS } : { waitSeconds: 0 },
        options.signal,
      );
    } catch (err) {
      if (options.signal?.aborted) {
        print(`Stopped following ${job}; it goes on (\`lifeline dr jobs\`).`);
        return undefined;
      }
      throw err;
    }
    const view = answer.body;
    if (!view.ok)
      throw new ApiUnreachableError(
        `Lifeline could not show ${job} (HTTP ${answer.status}): ${toTerminal(view.reply)}`,
      );
    story.tell(view);
    if (view.result) return view.state;
    version = view.version;
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
