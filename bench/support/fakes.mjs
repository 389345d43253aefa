// The benchmarks' Slack and PagerDuty: the stand-ins the tests and the sandbox use too (built into dist/ by
// `npm run build`), with the read-outs the benchmarks take.
import { PagerDutyStandIn } from '../../dist/adapters/pagerduty/stand-in.js';
import { SlackStandIn } from '../../dist/adapters/slack/stand-in.js';
import { onCleanup } from './cleanup.mjs';

export { PagerDutyStandIn as FakePagerDuty };

export class FakeSlack {
  #slack = new SlackStandIn();

  async start() {
    await this.#slack.start();
    return this;
  }

  stop() {
    return this.#slack.stop();
  }

  get apiUrl() {
    return this.#slack.apiUrl;
  }

  newResponseUrl() {
    return this.#slack.newResponseUrl();
  }

  /** Posts to response URLs: { id, body, text, at }. */
  get responses() {
    return this.#slack.responses;
  }

  /** The chat.postMessage calls Slack took, as { channel, text, thread_ts, ts, blocks, at }. */
  get posts() {
    return this.#slack.delivered().map((c) => ({
      channel: c.body.channel,
      text: String(c.body.text ?? ''),
      thread_ts: c.body.thread_ts,
      ts: c.result.ts,
      blocks: c.body.blocks,
      at: c.at,
    }));
  }

  /** Calls per Web API method. */
  get methodCounts() {
    const counts = {};
    for (const call of this.#slack.calls) counts[call.method] = (counts[call.method] ?? 0) + 1;
    return counts;
  }
}

/** Fake Slack and fake PagerDuty, started; both are stopped at cleanup. */
export async function startFakes() {
  const slack = await new FakeSlack().start();
  onCleanup('stop fake Slack', () => slack.stop());
  const pagerduty = await new PagerDutyStandIn().start();
  onCleanup('stop fake PagerDuty', () => pagerduty.stop());
  return { slack, pagerduty };
}
