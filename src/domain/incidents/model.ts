import type { Severity } from '../../shared/config.js';

export interface CardRef {
  readonly channel: string;
  readonly ts: string;
}

/** The incident's Atlassian Statuspage incident, once one was created. */
export interface StatusPageRecord {
  readonly id: string;
  /** Its public link (Statuspage's shortlink), shown on the card. */
  readonly link: string | undefined;
  readonly status: 'investigating' | 'identified' | 'monitoring' | 'resolved';
}

export type AlertSourceKind = 'alertmanager' | 'cloudwatch' | 'health';

/** Where an alert-declared incident came from, as the card shows it (bounded, see src/domain/alerts/). */
export interface AlertSource {
  readonly kind: AlertSourceKind;
  /** The Alertmanager groupKey, the CloudWatch alarm ARN or the env of a health check: one open incident per key. */
  readonly key: string;
  /** The group's alertname, the alarm's name, the env. */
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly annotations: Readonly<Record<string, string>>;
  /** generatorURL, the alarm's console link, or the health_url. */
  readonly link: string | undefined;
}

export interface Incident {
  readonly number: number;
  readonly severity: Severity;
  readonly title: string;
  readonly declaredBy: string;
  readonly declaredAt: Date;
  readonly declaredIn: string;
  readonly card: CardRef | undefined;
  readonly acknowledgedBy: string | undefined;
  readonly acknowledgedAt: Date | undefined;
  readonly resolvedBy: string | undefined;
  readonly resolvedAt: Date | undefined;
  readonly resolutionNote: string | undefined;
  readonly ladderGeneration: number;
  readonly statusPage: StatusPageRecord | undefined;
  /** Set when an alert declared it. */
  readonly source: AlertSource | undefined;
  /** The incident's Slack channel, once it was created (incidents.channels). */
  readonly channel?: string | undefined;
}

export type IncidentState = 'open' | 'acknowledged' | 'resolved';

/** Where an incident came from, as the MTTA/MTTR metrics label it. */
export type IncidentOrigin = 'slash_command' | 'alert' | 'health_check';

/** No source: a person declared it; a health check's source is `health`; any other source is an alert. */
export function incidentOrigin(incident: Pick<Incident, 'source'>): IncidentOrigin {
  const kind: string | undefined = incident.source?.kind;
  if (kind === undefined) return 'slash_command';
  return kind === 'health' ? 'health_check' : 'alert';
}

export function incidentState(incident: Incident): IncidentState {
  if (incident.resolvedAt) return 'resolved';
  if (incident.acknowledgedAt) return 'acknowledged';
  return 'open';
}

export function incidentId(number: number): string {
  return `INC-${number}`;
}

/** `INC-42` (any case) → 42; anything else → undefined. */
export function parseIncidentId(text: string): number | undefined {
  const match = /^INC-([1-9][0-9]{0,8})$/i.exec(text);
  return match ? Number(match[1]) : undefined;
}

export type TimelineKind =
  | 'declared'
  | 'paged'
  | 'page_failed'
  | 'acknowledged'
  | 'update'
  | 'severity_changed'
  | 'ladder_started'
  | 'ladder_stopped'
  | 'resolved'
  | 'statuspage'
  | 'statuspage_failed'
  | 'alert_repeat'
  | 'alert_cleared'
  | 'alert_state'
  | 'channel'
  | 'channel_failed'
  | 'reminder';

export interface TimelineEvent {
  readonly at: Date;
  readonly actor: string;
  readonly kind: TimelineKind;
  readonly detail: string;
}

export interface PageRecord {
  readonly role: string;
  readonly stepIndex: number;
  readonly dueAt: Date;
  readonly pagedAt: Date;
}
