// The channel calls of the real Slack client against the Slack stand-in, which answers them with Slack's rules:
// what is taken, what is refused (and with which error), and which refusals the client takes as done.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSlackChat } from '../../src/adapters/slack/client.js';
import { SlackRefusal, type SlackPort } from '../../src/adapters/slack/port.js';
import { SlackStandIn } from '../../src/adapters/slack/stand-in.js';
import { md, message } from '../../src/delivery/slack/blocks.js';
import { createLogger } from '../../src/shared/log.js';

const TOKEN = 'xoxb-channels-test';

let slack: SlackStandIn;
let client: SlackPort;

beforeAll(async () => {
  slack = await new SlackStandIn({ botToken: TOKEN, workspace: { members: new Set(['U0A', 'U0B']) } }).start();
  client = createSlackChat({ token: TOKEN, apiUrl: slack.apiUrl, log: createLogger('silent', []), retries: 0 });
});

afterAll(async () => {
  await slack.stop();
});

async function refusal(work: Promise<unknown>): Promise<string> {
  const err = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(SlackRefusal);
  return (err as SlackRefusal).code;
}

describe('Slack channel calls', () => {
  it("refuses names outside Slack's rules and a taken name, creating nothing", async () => {
    expect(await refusal(client.createChannel('x'.repeat(81)))).toBe('invalid_name_maxlength');
    expect(await refusal(client.createChannel('Inc-1-Upper'))).toBe('invalid_name_specials');
    expect(await refusal(client.createChannel('inc-1 space'))).toBe('invalid_name_specials');
    expect(await refusal(client.createChannel('inc-1-café'))).toBe('invalid_name_specials');
    expect(slack.created.size).toBe(0);
    const id = await client.createChannel(`inc-1-${'x'.repeat(74)}`);
    expect(slack.created.get(id)?.name).toHaveLength(80);
    expect(await refusal(client.createChannel(`inc-1-${'x'.repeat(74)}`))).toBe('name_taken');
    expect(slack.created.size).toBe(1);
  });

  it('invites (already_in_channel taken as done), sets the topic, pins once, archives once', async () => {
    const channel = await client.createChannel('inc-2-calls');
    await client.invite(channel, ['U0A', 'U0B']);
    await client.invite(channel, ['U0A']);
    expect(slack.calls.filter((c) => c.method === 'conversations.invite').at(-1)?.result?.error).toBe(
      'already_in_channel',
    );
    expect(await refusal(client.invite(channel, ['U0NOBODY']))).toBe('user_not_found');
    await client.setTopic(channel, 'SEV1 | investigating | calls');
    const posted = await client.post(channel, message(md`card`));
    await client.pin(posted);
    await client.pin(posted);
    const made = slack.created.get(channel)!;
    expect([...made.members]).toEqual(['U0A', 'U0B']);
    expect(made.topic).toBe('SEV1 | investigating | calls');
    expect([...made.pins]).toEqual([posted.ts]);

    await client.archive(channel);
    await client.archive(channel);
    expect(slack.calls.filter((c) => c.method === 'conversations.archive').map((c) => c.result?.error)).toEqual([
      undefined,
      'already_archived',
    ]);
    expect(await refusal(client.setTopic(channel, 'late'))).toBe('is_archived');
    expect(await refusal(client.invite('C0NOPE', ['U0A']))).toBe('channel_not_found');
  });
});
