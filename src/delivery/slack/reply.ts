// What a command or a click answers its sender with: the renderers build it, the commands return it, and the Bolt
// app and the API deliver it. It lives with the renderers so that they never need to reach into the commands.
import type { Block } from '../../adapters/slack/port.js';
import type { UserErrorCode } from '../../shared/errors.js';
import type { MrkdwnText } from './blocks.js';

/**
 * What the sender alone sees, built with blocks.ts, which escapes what it quotes; and what the command did in a form
 * the API passes on (so that no caller has to read meaning out of the words).
 */
export interface Reply {
  readonly text: MrkdwnText;
  readonly blocks?: readonly Block[];
  /** The recovery job the command created or acted on; `started` when it set the job going (a request, an approval). */
  readonly job?: { readonly number: number; readonly started: boolean };
  /** The runbook run the command requested or acted on; `started` when it set the run going. */
  readonly run?: { readonly number: number; readonly started: boolean };
  /** The incident the command declared or acted on. */
  readonly incident?: number;
  /** Set when the command did not do what was asked: refused (the user can fix it), or an error on Lifeline's side. */
  readonly failure?: { readonly kind: 'refused'; readonly code: UserErrorCode } | { readonly kind: 'error' };
}
