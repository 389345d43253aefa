// http_check: GETs the URL until it answers `expect_status`, for up to `within_minutes`. Passing it means the service
// is back: the run's RTO ends at the last one that passes.
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { formatDuration } from '../../../../shared/format.js';
import { defineStepKind, templated } from '../../step-kind.js';

/** One GET with a hard timeout: the status, or why there was none. */
export interface HttpCheckDeps {
  readonly probe: (url: string, timeoutMs: number) => Promise<{ status: number | undefined; error?: string }>;
}

/** One GET may take this long; a slower answer counts as none. */
const PROBE_TIMEOUT_MS = 10_000;

const url = z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' });

export const httpCheckKind = defineStepKind<HttpCheckDeps & { readonly pollMs: number }>()({
  id: 'http_check',
  params: z.strictObject({
    url: templated(url),
    expect_status: z.number().int().min(100).max(599).default(200),
    within_minutes: z.number().positive().max(120).default(5),
  }),
  state: z.object({}),
  outputs: ['status'],
  provesRecovery: true,
  // Its own deadline is within_minutes; the last GET may take its timeout on top.
  deadlineMs: (params) => params.within_minutes * 60_000 + PROBE_TIMEOUT_MS + 5_000,
  describe: (params) =>
    `GET ${params.url} until it answers ${params.expect_status} (up to ${params.within_minutes} min)`,
  async plan(ctx, deps) {
    const does = `would GET ${ctx.params.url} until it answers ${ctx.params.expect_status}, for up to ${formatDuration(ctx.params.within_minutes * 60_000)}`;
    if (!URL.canParse(ctx.params.url)) return { does, missing: [] };
    const answer = await deps.probe(ctx.params.url, PROBE_TIMEOUT_MS);
    if (answer.status === undefined) {
      return { does, missing: [`${ctx.params.url} does not answer (${answer.error ?? 'no answer'})`] };
    }
    return { does: `${does}; it answers ${answer.status} now`, missing: [] };
  },
  // Only reads: the check does the work.
  run: async () => undefined,
  async check(ctx, deps) {
    const { url: target, expect_status: expected, within_minutes: minutes } = ctx.params;
    const until = Date.now() + minutes * 60_000;
    let last: string;
    for (let tries = 1; ; tries++) {
      ctx.signal.throwIfAborted();
      const answer = await deps.probe(target, PROBE_TIMEOUT_MS);
      if (answer.status === expected) {
        return {
          detail: `${target} answered ${expected} (after ${tries} GET${tries === 1 ? '' : 's'})`,
          outputs: { status: String(expected) },
        };
      }
      last = answer.status === undefined ? `no answer (${answer.error ?? 'error'})` : `${answer.status}`;
      ctx.note(`${target} answered ${last}, expecting ${expected}`);
      if (Date.now() + deps.pollMs > until) break;
      await sleep(deps.pollMs, undefined, { signal: ctx.signal });
    }
    throw new Error(`${target} did not answer ${expected} within ${formatDuration(minutes * 60_000)} (last: ${last})`);
  },
});
