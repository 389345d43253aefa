// Alerts from monitoring, normalised: what Alertmanager (webhook version 4) and CloudWatch (an EventBridge "CloudWatch
// Alarm State Change" event) say, reduced to one shape the service acts on. Alert text is hostile input: everything
// kept is bounded here (count and length), and shown escaped by whoever renders it.
import type { FileConfig, Severity } from '../../shared/config.js';
import type { AlertSource } from '../incidents/model.js';
import { TITLE_MAX } from '../incidents/service.js';

export type AlertsConfig = NonNullable<FileConfig['alerts']>;

/** Alertmanager's webhook body (version 4), the parts Lifeline reads. */
export interface AlertmanagerWebhook {
  readonly version: '4';
  readonly groupKey: string;
  readonly status: 'firing' | 'resolved';
  readonly receiver?: string | undefined;
  readonly groupLabels?: Readonly<Record<string, string>> | undefined;
  readonly commonLabels: Readonly<Record<string, string>>;
  readonly commonAnnotations: Readonly<Record<string, string>>;
  readonly externalURL?: string | undefined;
  readonly truncatedAlerts?: number | undefined;
  readonly alerts: readonly { readonly status: 'firing' | 'resolved'; readonly generatorURL?: string | undefined }[];
}

export type CloudWatchState = 'ALARM' | 'OK' | 'INSUFFICIENT_DATA';

/** An EventBridge "CloudWatch Alarm State Change" event, the parts Lifeline reads. */
export interface CloudWatchAlarmEvent {
  readonly 'detail-type': 'CloudWatch Alarm State Change';
  readonly account?: string | undefined;
  readonly region?: string | undefined;
  readonly resources: readonly string[];
  readonly detail: {
    readonly alarmName: string;
    readonly state: { readonly value: CloudWatchState; readonly reason?: string | undefined };
    readonly previousState?: { readonly value?: string | undefined } | undefined;
    readonly configuration?: { readonly description?: string | undefined } | undefined;
  };
}

/** One alert, whatever sent it. */
export interface Alert {
  readonly source: AlertSource;
  readonly state: 'firing' | 'resolved' | 'insufficient_data';
  /** Undefined: the alert maps to no severity (Alertmanager's severity label is not in severity_map). */
  readonly severity: Severity | undefined;
  /** At most TITLE_MAX characters. */
  readonly title: string;
  /** One line for the timeline: what this delivery said. */
  readonly summary: string;
}

/** At most this many labels and annotations are kept, keys and values cut to these lengths. */
export const MAX_PAIRS = 10;
export const MAX_KEY = 60;
export const MAX_VALUE = 200;

export function fromAlertmanager(body: AlertmanagerWebhook, config: AlertsConfig): Alert {
  const labels = body.commonLabels;
  const severityLabel = labels.severity;
  const severity = severityLabel === undefined ? undefined : config.severity_map[severityLabel];
  const name = labels.alertname ?? body.groupLabels?.alertname ?? 'Alertmanager alert';
  const title = cut(firstText(body.commonAnnotations.summary, name, 'Alertmanager alert'), TITLE_MAX);
  const firing = body.alerts.filter((a) => a.status === 'firing').length + (body.truncatedAlerts ?? 0);
  const link = body.alerts.map((a) => a.generatorURL).find((url) => url !== undefined && isWebLink(url));
  const count = body.status === 'firing' ? `${firing} firing` : `${body.alerts.length} resolved`;
  return {
    source: {
      kind: 'alertmanager',
      key: body.groupKey,
      name: cut(name, MAX_VALUE),
      labels: bounded(labels),
      annotations: bounded(body.commonAnnotations),
      link,
    },
    state: body.status,
    severity,
    title,
    summary: cut(`Alertmanager ${body.status}: ${count} (${title})`, 500),
  };
}

export function fromCloudWatch(event: CloudWatchAlarmEvent, config: AlertsConfig): Alert {
  const arn = event.resources[0]!;
  const { alarmName, state } = event.detail;
  const region = event.region ?? /^arn:[^:]+:cloudwatch:([^:]+):/.exec(arn)?.[1];
  const account = event.account ?? /^arn:[^:]+:cloudwatch:[^:]*:([^:]+):/.exec(arn)?.[1];
  const link =
    region && /^[a-z0-9-]+$/.test(region)
      ? `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#alarmsV2:alarm/${encodeURIComponent(alarmName)}`
      : undefined;
  const labels = defined({ alarm: alarmName, account, region });
  const annotations = defined({
    reason: state.reason,
    description: event.detail.configuration?.description,
    previous_state: event.detail.previousState?.value,
  });
  const title = cut(firstText(alarmName, 'CloudWatch alarm'), TITLE_MAX);
  return {
    source: {
      kind: 'cloudwatch',
      key: arn,
      name: cut(alarmName, MAX_VALUE),
      labels: bounded(labels),
      annotations: bounded(annotations),
      link,
    },
    state: state.value === 'ALARM' ? 'firing' : state.value === 'OK' ? 'resolved' : 'insufficient_data',
    severity: config.cloudwatch_severity,
    title,
    summary: cut(`CloudWatch alarm ${state.value}${state.reason ? `: ${state.reason}` : ''}`, 500),
  };
}

/** What the alert's source is called in words: "Alertmanager group HighLatency", "Health check of production". */
export function sourceName(source: Pick<AlertSource, 'kind' | 'name'>): string {
  return `${SOURCE_WORDS[source.kind]} ${source.name}`;
}

const SOURCE_WORDS: Readonly<Record<AlertSource['kind'], string>> = {
  alertmanager: 'Alertmanager group',
  cloudwatch: 'CloudWatch alarm',
  health: 'Health check of',
};

/** Text cut to at most `max` characters (code points, as titles are counted), marked with … when cut. */
export function cut(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

function firstText(...candidates: (string | undefined)[]): string {
  return candidates.map((c) => c?.replace(/\s+/g, ' ').trim()).find((c) => c !== undefined && c !== '') ?? '';
}

function bounded(pairs: Readonly<Record<string, string>>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(pairs)
      .slice(0, MAX_PAIRS)
      .map(([k, v]) => [cut(k, MAX_KEY), cut(v, MAX_VALUE)]),
  );
}

function defined(pairs: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(pairs).filter((p): p is [string, string] => p[1] !== undefined));
}

function isWebLink(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'https:' || url.protocol === 'http:';
  } catch {
    return false;
  }
}
