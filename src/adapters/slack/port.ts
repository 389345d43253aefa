// The Slack calls Lifeline makes, and the message shapes they carry: what the rest of Lifeline sees of Slack.
import type { KnownBlock } from '@slack/web-api';

declare const MRKDWN_TEXT: unique symbol;
/**
 * Text that is safe to hand to Slack as mrkdwn. Only src/delivery/slack/blocks.ts builds it; the brand lives with
 * the port because ChatMessage carries it.
 */
export type MrkdwnText = string & { readonly [MRKDWN_TEXT]: true };

export type Block = KnownBlock;

export interface ChatMessage {
  /** Fallback for notifications and screen readers, always set; Slack parses it as mrkdwn too. */
  readonly text: MrkdwnText;
  readonly blocks?: readonly Block[];
}

export interface PostedMessage {
  readonly channel: string;
  readonly ts: string;
}

/** The Slack calls Lifeline makes, and nothing more. */
export interface ChatPort {
  post(channel: string, message: ChatMessage, threadTs?: string): Promise<PostedMessage>;
  update(at: PostedMessage, message: ChatMessage): Promise<void>;
  postEphemeral(channel: string, user: string, message: ChatMessage): Promise<void>;
  /** A reply to the sender alone at a command's response_url (valid 30 minutes, 5 uses). */
  respond(responseUrl: string, message: ChatMessage): Promise<void>;
}

/** Slack's answers that the channel calls turn into errors, by their `error` code (`name_taken`...). */
export class SlackRefusal extends Error {
  constructor(
    readonly method: string,
    readonly code: string,
  ) {
    super(`Slack ${method} refused: ${code}`);
    this.name = 'SlackRefusal';
  }
}

/** The channel calls incident channels make (conversations.*, pins.add). Refusals throw SlackRefusal. */
export interface ChannelPort {
  /** conversations.create (public): the new channel's id. */
  createChannel(name: string): Promise<string>;
  /** conversations.invite; users already in the channel are not an error. */
  invite(channel: string, users: readonly string[]): Promise<void>;
  setTopic(channel: string, topic: string): Promise<void>;
  /** conversations.archive; a channel already archived is not an error. */
  archive(channel: string): Promise<void>;
  /** pins.add; a message already pinned is not an error. */
  pin(at: PostedMessage): Promise<void>;
}

export type SlackPort = ChatPort & ChannelPort;
