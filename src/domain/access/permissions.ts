// Who may do what. The services call these, so every way in (Slack commands and buttons, the
// CLI, the HTTP API) obeys one rule, whatever the caller checked before.
import type { FileConfig } from '../../shared/config.js';
import { UserError } from '../../shared/errors.js';

/** Who acts when Lifeline itself does (schedules, alerts): every actor is a Slack user id or this. */
export const SYSTEM_ACTOR = 'lifeline';

/** `permissions.responder_roles`, or every role under `roles` when the section is left out. */
export function responderRoles(file: FileConfig): readonly string[] {
  return file.permissions?.responder_roles ?? Object.keys(file.roles);
}

/** Lifeline itself (schedules, alerts) acts as a responder: its jobs were set up by whoever wrote the config. */
export function isResponder(file: FileConfig, user: string): boolean {
  if (user === SYSTEM_ACTOR) return true;
  return responderRoles(file).some((role) => file.roles[role]?.slack_users.includes(user) ?? false);
}

/** The refusal a non-responder gets: it names what is needed, so they know whom to ask. */
export function notPermitted(file: FileConfig, action: string): UserError {
  return new UserError('not_permitted', `Only responders (${responderRoles(file).join(', ')}) may ${action}.`);
}

export function requireResponder(file: FileConfig, user: string, action: string): void {
  if (!isResponder(file, user)) throw notPermitted(file, action);
}
