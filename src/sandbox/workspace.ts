// What a person does in the sandbox's Slack: type a message or a slash command, click a button. Commands and clicks
// go to Lifeline the way Slack's platform sends them (src/sandbox/deliver.ts); plain messages only land in the channel.
import { blockActionsBody, deliver, slashCommandBody } from './deliver.js';
import { isObject, type SandboxSlack } from './slack.js';
import { CHANNELS, PEOPLE, type Channel } from './world.js';

/** The commands Lifeline's Slack app declares (manifest.yml). */
const COMMANDS = ['/incident', '/dr'];

export interface WorkspaceOptions {
  readonly slack: SandboxSlack;
  /** Lifeline's Request URL: POST /slack/events. */
  readonly eventsUrl: string;
  readonly signingSecret: string;
}

export type Outcome = { readonly ok: true } | { readonly ok: false; readonly error: string };

export class Workspace {
  constructor(private readonly options: WorkspaceOptions) {}

  /** Where Slack sends Lifeline's commands and clicks (its Request URL). */
  get requestUrl(): string {
    return this.options.eventsUrl;
  }

  /** A line typed by `userId` in a channel (or a thread): a slash command when it starts with /. */
  async type(userId: string, channelId: string, typed: string, threadTs: string | undefined): Promise<Outcome> {
    const user = PEOPLE.find((p) => p.id === userId);
    const channel = this.channel(channelId);
    if (!user || !channel) return { ok: false, error: 'unknown user or channel' };
    if (channel.archived) return { ok: false, error: `#${channel.name} is archived: nothing can be posted there` };
    const text = typed.trim();
    if (text === '') return { ok: false, error: 'type a message or a command' };
    const { slack } = this.options;
    if (!text.startsWith('/')) {
      slack.say(user.id, channel.id, text, threadTs);
      return { ok: true };
    }
    const [, command = '', args = ''] = /^(\S+)\s*([\s\S]*)$/.exec(text) ?? [];
    if (!COMMANDS.includes(command)) {
      return {
        ok: false,
        error: `${command} is not a valid command. The sandbox's Lifeline answers ${COMMANDS.join(' and ')}.`,
      };
    }
    // Slack sends slash commands from a thread without the thread: the reply comes in the channel.
    slack.echoCommand(user.id, channel.id, text);
    const responseUrl = slack.newResponseUrl({ user: user.id, channel: channel.id });
    const delivery = await deliver(
      this.options.eventsUrl,
      this.options.signingSecret,
      slashCommandBody({ command, text: args, user, channel, responseUrl }),
    );
    if (delivery.error) {
      slack.ephemeral(user.id, channel.id, `${command} failed with the error "${delivery.error}"`, undefined);
      return { ok: true };
    }
    this.showAcknowledgement(user.id, channel.id, delivery.body);
    return { ok: true };
  }

  /** A click on the button at blocks[blockIndex].elements[elementIndex] of a message, as `userId`. */
  async click(
    userId: string,
    channelId: string,
    ts: string,
    blockIndex: number,
    elementIndex: number,
  ): Promise<Outcome> {
    const user = PEOPLE.find((p) => p.id === userId);
    const channel = this.channel(channelId);
    if (!user || !channel) return { ok: false, error: 'unknown user or channel' };
    const { slack } = this.options;
    const message = slack.find(channel.id, ts);
    if (!message || (message.visibleTo !== undefined && message.visibleTo !== user.id))
      return { ok: false, error: 'that message is gone' };
    const block = message.blocks?.[blockIndex];
    const button =
      isObject(block) && Array.isArray(block.elements) ? (block.elements as unknown[])[elementIndex] : undefined;
    if (!isObject(block) || !isObject(button) || button.type !== 'button')
      return { ok: false, error: 'that button is gone (the message changed)' };
    // Slack gives a block without a block_id one of its own; a stable one does here.
    const blockId = typeof block.block_id === 'string' ? block.block_id : `block-${blockIndex}`;
    const responseUrl = slack.newResponseUrl({ user: user.id, channel: channel.id, clicked: message });
    const delivery = await deliver(
      this.options.eventsUrl,
      this.options.signingSecret,
      blockActionsBody({ user, channel, message, blockId, button, responseUrl }),
    );
    if (delivery.error) {
      slack.ephemeral(
        user.id,
        channel.id,
        `The click did not reach Lifeline in time ("${delivery.error}"): nothing happened.`,
        undefined,
        message.threadTs,
      );
    }
    return { ok: true };
  }

  /** The workspace's own channels, and those Lifeline created (incident channels), with whether they are archived. */
  private channel(id: string): (Channel & { readonly archived: boolean }) | undefined {
    const made = this.options.slack.created.get(id);
    if (made) return { id: made.id, name: made.name, archived: made.archived };
    const fixed = CHANNELS.find((c) => c.id === id);
    return fixed && { ...fixed, archived: false };
  }

  /** A reply carried in the acknowledgement itself (help, refusals): Slack shows it to the sender alone. */
  private showAcknowledgement(userId: string, channelId: string, body: string): void {
    if (body.trim() === '') return;
    let reply: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(body);
      reply = isObject(parsed) ? parsed : { text: body };
    } catch {
      reply = { text: body };
    }
    this.options.slack.ephemeral(userId, channelId, String(reply.text ?? ''), reply.blocks);
  }
}
