// Who and what the sandbox pretends exists: the Slack workspace's people and channels, the sample application's
// AWS resources, and the lifeline.yml that ties them to Lifeline.

export interface Person {
  readonly id: string;
  readonly name: string;
  /** What the page shows beside the name. */
  readonly title: string;
  /** The Lifeline role they hold (roles.<role>.slack_users), if any. */
  readonly role: string | undefined;
}

export interface Channel {
  readonly id: string;
  readonly name: string;
}

export const BOT: Person = { id: 'U0LIFELINE', name: 'Lifeline', title: 'app', role: undefined };

/** In escalation order; the last one holds no role, to show what a click by anyone else gets. */
export const PEOPLE: readonly Person[] = [
  { id: 'U0ONCALL', name: 'Olivia Okafor', title: 'on-call engineer', role: 'oncall' },
  { id: 'U0LEAD', name: 'Lars Lindqvist', title: 'engineering lead', role: 'engineering_lead' },
  { id: 'U0CTO', name: 'Chen Tao', title: 'CTO', role: 'cto' },
  { id: 'U0CEO', name: 'Carmen Estrada', title: 'CEO', role: 'ceo' },
  { id: 'U0DEV', name: 'Dev Patel', title: 'developer, no Lifeline role', role: undefined },
];

export const EMERGENCY: Channel = { id: 'C0EMERGENCY', name: 'devops-emergency' };
/** Not in allowed_channels: commands there are refused, as in a real workspace. */
const GENERAL: Channel = { id: 'C0GENERAL', name: 'general' };
export const CHANNELS: readonly Channel[] = [EMERGENCY, GENERAL];

export const APPROVER_ROLES = ['engineering_lead', 'cto'] as const;

/** The sample application's resources in the simulated AWS. */
export const SAMPLE_AWS = {
  rdsInstance: 'sandbox-shop-db',
  cluster: 'sandbox-shop',
  services: ['shop-web', 'shop-api', 'shop-worker'],
  logGroup: '/ecs/sandbox/shop',
} as const;

/**
 * The region failover's resources: the DR region's ECS cluster (scaled to nothing until a failover), the instance the
 * runbook restores there, the public DNS record that decides which region serves the API, and the application's
 * database secret (the database-failure runbook points it at a restored instance).
 */
export const SAMPLE_DR = {
  primaryRegion: 'us-east-1',
  region: 'us-west-2',
  cluster: 'sandbox-shop-dr',
  service: 'shop-api',
  instance: `${SAMPLE_AWS.rdsInstance}-dr`,
  zoneId: 'Z0SANDBOXSHOP',
  zone: 'sandbox-shop.example',
  record: 'api.sandbox-shop.example',
  primaryTarget: 'api-primary.sandbox-shop.example',
  drTarget: 'api-dr.sandbox-shop.example',
  secretId: 'production/sandbox-shop/database',
} as const;

/** The simulated Vercel's project: the shop's frontend, with a few READY production deployments to roll back to. */
export const SAMPLE_VERCEL = { project: 'sandbox-shop-web', deployments: 3 } as const;

const ENV_NAME = 'production';

/** The simulated Atlassian Statuspage: its page and the component that shows the production environment. */
export const STATUS_PAGE = { pageId: 'sandboxshop', component: 'cmpshopweb', componentName: 'Shop (production)' };

/** The sample Alertmanager alert the page's button sends: critical, which alerts.severity_map makes a SEV1. */
export const SAMPLE_ALERT = {
  alertname: 'CheckoutErrorRate',
  severity: 'critical',
  summary: 'Checkout error rate above 5%',
  description: 'More than 5% of POST /checkout requests answered 5xx for 5 minutes.',
} as const;

/** Incident channels are archived this long after resolve: shortened (90 s), like the ladder, to see it happen. */
export const ARCHIVE_AFTER_HOURS = 0.025;

export interface LifelineYamlOptions {
  /** The sample database's backups folder (file:// store). */
  readonly backupsDir: string;
  /** The backups' file name prefix. */
  readonly backupPrefix: string;
  /** The sandbox page's health endpoint for the sample application. */
  readonly healthUrl: string;
  /** The sample API's health as reached through its DNS record (the region failover's http_check). */
  readonly apiHealthUrl: string;
}

/**
 * A real lifeline.yml: the same parser and checks as any other. Database URL and routing keys come from Lifeline's
 * environment through `${...}`, as the README recommends for secrets.
 */
export function lifelineYaml(options: LifelineYamlOptions): string {
  const roles = PEOPLE.filter((p) => p.role !== undefined)
    .map((p) => `  ${p.role}: { slack_users: [${p.id}], pagerduty_routing_key: "\${${routingKeyVariable(p.role!)}}" }`)
    .join('\n');
  return `# Written by the Lifeline sandbox (npm run sandbox) for its local stand-ins of Slack, PagerDuty, Statuspage, AWS and
# Vercel.
slack:
  emergency_channel: ${EMERGENCY.id}
  allowed_channels: [${EMERGENCY.id}]
roles:
${roles}
# Minutes, shortened so the ladder climbs while you watch.
escalation:
  - { after_minutes: 0, notify: oncall }
  - { after_minutes: 0.5, notify: engineering_lead }
  - { after_minutes: 1, notify: cto }
  - { after_minutes: 2, notify: ceo }
severities:
  sev1: { page: true,  respond_minutes: 0 }
  sev2: { page: true,  respond_minutes: 15 }
  sev3: { page: false, respond_minutes: 60 }
  sev4: { page: false, respond_minutes: 1440 }
approvals:
  approver_roles: [${APPROVER_ROLES.join(', ')}]
  expire_minutes: 30
  allow_self_approval: false
environments:
  ${ENV_NAME}:
    database:
      url: "\${PRODUCTION_DATABASE_URL}"
      rds_instance: ${SAMPLE_AWS.rdsInstance}
      verify:
        - SELECT COUNT(*) FROM users
        - SELECT COUNT(*) FROM orders
        - SELECT MAX(created_at) FROM orders
    backups:
      store: ${JSON.stringify(`file://${options.backupsDir}`)}
      prefix: ${options.backupPrefix}
      retention_days: 7
      rpo_minutes: 360
      schedule: "0 */6 * * *"
      drill_schedule: "off"
    ecs:
      cluster: ${SAMPLE_AWS.cluster}
      services: [${SAMPLE_AWS.services.join(', ')}]
      log_group: ${SAMPLE_AWS.logGroup}
      max_count: 10
    health_url: ${JSON.stringify(options.healthUrl)}
    require_approval: [restore, scale, redeploy]
incidents:
  channels: { enabled: true, prefix: inc, archive_after_hours: ${ARCHIVE_AFTER_HOURS} }
statuspage:
  page_id: ${STATUS_PAGE.pageId}
  api_key: "\${STATUSPAGE_API_KEY}"
  components: { ${ENV_NAME}: ${STATUS_PAGE.component} }
  auto_for: [sev1]
alerts:
  token: "\${ALERTS_TOKEN}"
  severity_map: { critical: sev1, warning: sev3 }
${runbooksYaml(options)}`;
}

/** The plan's runbooks (as in lifeline.example.yml), against the simulated AWS and Vercel and the sandbox's URLs. */
function runbooksYaml({ healthUrl, apiHealthUrl }: LifelineYamlOptions): string {
  const health = JSON.stringify(healthUrl);
  const dr = SAMPLE_DR;
  return `runbooks:
  frontend-rollback:
    title: Roll the frontend back to the previous production deployment
    steps:
      - vercel_rollback: { project: ${SAMPLE_VERCEL.project} }
      - http_check: { url: ${health}, expect_status: 200, within_minutes: 2 }
  region-failover:
    title: Fail over to the DR region (${dr.region})
    approval: each_step
    steps:
      - confirm: "terraform workspace select dr && terraform apply -var-file=environments/dr.tfvars"
      - id: dr_db
        rds_restore_snapshot:
          { from_region: ${dr.primaryRegion}, source_instance: ${SAMPLE_AWS.rdsInstance}, region: ${dr.region}, target_instance: ${dr.instance} }
      - ecs_scale: { region: ${dr.region}, cluster: ${dr.cluster}, service: ${dr.service}, count: 3 }
      - dns_switch: { zone_id: ${dr.zoneId}, record: ${dr.record}, type: CNAME, value: ${dr.drTarget}, ttl: 60 }
      - http_check: { url: ${JSON.stringify(apiHealthUrl)}, expect_status: 200, within_minutes: 2 }
      - statuspage: { status: monitoring, message: "Service restored from the DR region" }
  ecs-service-recovery:
    title: Redeploy the API service and check it answers
    steps:
      - ecs_redeploy: { cluster: ${SAMPLE_AWS.cluster}, service: shop-api }
      - http_check: { url: ${health}, expect_status: 200, within_minutes: 2 }
  database-failure:
    title: Restore the database from its newest snapshot as a new instance and point the application at it
    steps:
      - id: new_db
        rds_restore_snapshot:
          { source_instance: ${SAMPLE_AWS.rdsInstance}, region: ${dr.primaryRegion}, target_instance: ${SAMPLE_AWS.rdsInstance}-restored }
      - secret_update:
          { region: ${dr.primaryRegion}, secret_id: ${dr.secretId}, key: DATABASE_HOST, value: "{{steps.new_db.endpoint}}" }
      - vercel_env:
          { project: ${SAMPLE_VERCEL.project}, key: DATABASE_HOST, value: "{{steps.new_db.endpoint}}", target: production }
      - ecs_redeploy: { cluster: ${SAMPLE_AWS.cluster}, service: shop-api }
      - http_check: { url: ${health}, expect_status: 200, within_minutes: 2 }
`;
}

export function routingKeyVariable(role: string): string {
  return `PD_KEY_${role.toUpperCase()}`;
}
