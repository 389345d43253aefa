// The lifeline.yml every test uses: four roles, the plan's severities, a ladder of the test's choosing.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const USERS = {
  oncall: 'U0ONCALL',
  lead: 'U0LEAD',
  cto: 'U0CTO',
  ceo: 'U0CEO',
  declarer: 'U0DECLARER',
  other: 'U0OTHER',
} as const;

export interface LadderStep {
  readonly after_minutes: number;
  readonly notify: string;
}

/** oncall at once, engineering_lead after 1.2 s, cto after 2.4 s. */
export const SHORT_LADDER = [
  { after_minutes: 0, notify: 'oncall' },
  { after_minutes: 0.02, notify: 'engineering_lead' },
  { after_minutes: 0.04, notify: 'cto' },
] as const;

export interface TestConfigOptions {
  readonly steps?: readonly LadderStep[];
  readonly emergencyChannel?: string;
  readonly allowedChannels?: readonly string[];
  readonly backupsFolder?: string;
  /** Replaces the `environments:` section (YAML indented by two spaces, without the key itself). */
  readonly environmentsYaml?: string;
  readonly approvalsYaml?: string;
  /** The default env's `health_url` (none when unset). */
  readonly healthUrl?: string;
  /** Top-level YAML appended as it stands (e.g. a `cli_users:` map). */
  readonly extraYaml?: string;
}

let defaultStore: string | undefined;

/**
 * The default env's store, holding one backup taken now. The RPO watch pages on-call about an env whose store is
 * empty (as the README says), so tests about anything else need a store that is not overdue.
 */
function defaultBackupsFolder(): string {
  if (defaultStore) return defaultStore;
  const dir = mkdtempSync(join(tmpdir(), 'lifeline-test-backups-'));
  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace('T', '_').slice(0, 15);
  writeFileSync(join(dir, `staging_${stamp}.dump`), 'PGDMP');
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  defaultStore = dir;
  return dir;
}

/** YAML with `${PD_KEY_*}` left for the real parser to interpolate, as in production. */
export function testConfigYaml(options: TestConfigOptions = {}): string {
  const steps = options.steps ?? [
    { after_minutes: 0, notify: 'oncall' },
    { after_minutes: 0.05, notify: 'engineering_lead' },
    { after_minutes: 0.1, notify: 'cto' },
    { after_minutes: 0.15, notify: 'ceo' },
  ];
  const emergency = options.emergencyChannel ?? 'C0EMERGENCY';
  const allowed = options.allowedChannels ?? [emergency];
  return `
slack:
  emergency_channel: ${emergency}
  allowed_channels: [${allowed.join(', ')}]
roles:
  oncall:           { slack_users: [${USERS.oncall}], pagerduty_routing_key: "\${PD_KEY_ONCALL}" }
  engineering_lead: { slack_users: [${USERS.lead}],   pagerduty_routing_key: "\${PD_KEY_LEAD}" }
  cto:              { slack_users: [${USERS.cto}],    pagerduty_routing_key: "\${PD_KEY_CTO}" }
  ceo:              { slack_users: [${USERS.ceo}],    pagerduty_routing_key: "\${PD_KEY_CEO}" }
escalation:
${steps.map((s) => `  - { after_minutes: ${s.after_minutes}, notify: ${s.notify} }`).join('\n')}
severities:
  sev1: { page: true,  respond_minutes: 0 }
  sev2: { page: true,  respond_minutes: 15 }
  sev3: { page: false, respond_minutes: 60 }
  sev4: { page: false, respond_minutes: 1440 }
approvals:
${options.approvalsYaml ?? '  approver_roles: [engineering_lead, cto]\n  expire_minutes: 30\n  allow_self_approval: false'}
environments:
${
  options.environmentsYaml ??
  `  staging:
    database: { url: "postgres://127.0.0.1:5432/staging", verify: [SELECT 1] }
    backups: { store: "file://${options.backupsFolder ?? defaultBackupsFolder()}", prefix: staging, retention_days: 7, rpo_minutes: 1440 }${
      options.healthUrl ? `\n    health_url: ${JSON.stringify(options.healthUrl)}` : ''
    }`
}
${options.extraYaml ?? ''}
`;
}
