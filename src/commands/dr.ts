// `/dr`: declared in the Slack manifest so the app is created once, but recovery jobs are not in this release.
// Answering honestly beats Slack's generic "dispatch_failed" error mid-incident.
import { UserError } from '../errors.js';
import { subcommand, type SlashCommand } from './registry.js';

export function drCommand(): SlashCommand {
  return {
    name: '/dr',
    summary: 'disaster recovery jobs (not in this release)',
    entries: [
      subcommand({
        usage: 'restore|scale|redeploy|logs|status|backup|backups|drill|jobs|cancel|audit|help …',
        summary: 'not available in this release of Lifeline',
        matches: () => true,
        effect: 'local',
        parse: () => ({}),
        run: async () => {
          throw new UserError(
            'not_available',
            'Recovery commands (`/dr`) are not available in this release of Lifeline yet; nothing was started. Run the plan\'s runbook by hand for now.',
          );
        },
      }),
    ],
  };
}
