// The sandbox's Slack: the Slack stand-in over the sandbox's workspace (its people and channels), plus what the
// people on the page do: type a message, type a slash command, and see a reply carried in an acknowledgement.
import {
  SlackStandIn,
  wireMessage as wire,
  type SlackMessage,
  type SlackWorkspace,
} from '../adapters/slack/stand-in.js';
import { BOT, CHANNELS, PEOPLE } from './world.js';

export type { SlackMessage };
export { isObject } from '../adapters/slack/stand-in.js';

export const TEAM_ID = 'T0SANDBOX';

const WORKSPACE: SlackWorkspace = {
  teamId: TEAM_ID,
  teamName: 'Lifeline sandbox',
  url: 'https://lifeline-sandbox.slack.invalid/',
  botUserId: BOT.id,
  botId: 'B0LIFELINE',
  appId: 'A0LIFELINE',
  channels: new Set(CHANNELS.map((c) => c.id)),
  members: new Set(PEOPLE.map((p) => p.id)),
};

export interface SandboxSlackOptions {
  readonly botToken: string;
  /** Base URL Lifeline reaches the sandbox's server at; the stand-in answers below /slack/. */
  readonly baseUrl: string;
  readonly onChange: () => void;
}

export class SandboxSlack extends SlackStandIn {
  constructor(options: SandboxSlackOptions) {
    const { botToken, baseUrl, onChange } = options;
    super({ botToken, baseUrl: `${baseUrl}/slack`, onChange, workspace: WORKSPACE });
  }

  /** A person's own message (typed in the page). */
  say(user: string, channel: string, text: string, threadTs: string | undefined): SlackMessage {
    const typed = escapeText(text);
    const visibleTo = undefined;
    const message = this.add({ channel, threadTs, user, text: typed, blocks: undefined, visibleTo, command: false });
    this.changed();
    return message;
  }

  /** The slash command as typed, shown to its sender only (Slack shows nothing; the page keeps the story readable). */
  echoCommand(user: string, channel: string, text: string): void {
    const typed = escapeText(text);
    this.add({ channel, threadTs: undefined, user, text: typed, blocks: undefined, visibleTo: user, command: true });
    this.changed();
  }

  /** An ephemeral message from the app, as Slack shows a reply carried in a request's acknowledgement. */
  ephemeral(user: string, channel: string, text: string, blocks: unknown, threadTs?: string): void {
    this.add({ channel, threadTs, user: BOT.id, text, blocks, visibleTo: user, command: false });
    this.changed();
  }
}

/** The message as Slack's API returns it (and puts in a block_actions payload). */
export function wireMessage(message: SlackMessage): Record<string, unknown> {
  return wire(message, WORKSPACE);
}

/** What a person types reaches Slack with &, < and > as entities. */
function escapeText(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
