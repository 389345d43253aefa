// The page's "monitoring": one sample Prometheus alert, sent to Lifeline's POST /alerts/alertmanager exactly as
// Alertmanager sends it (webhook version 4, Authorization: Bearer <alerts.token>), firing or resolved.
import { SAMPLE_ALERT } from './world.js';

const SEND_TIMEOUT_MS = 10_000;
/** One group, as Alertmanager keys it: a second firing of it goes on the same incident's timeline. */
const GROUP_KEY = `{}/{severity="${SAMPLE_ALERT.severity}"}:{alertname="${SAMPLE_ALERT.alertname}"}`;

export type AlertStatus = 'firing' | 'resolved';

/** What the page shows of the last alert sent. */
export interface SentAlert {
  readonly status: AlertStatus;
  readonly at: number;
  /** Lifeline's HTTP status, or undefined when it did not answer. */
  readonly httpStatus: number | undefined;
  /** Lifeline's answer: `declared`, `repeat`, `resolved`, `ignored`... or why it failed. */
  readonly outcome: string;
  readonly incident: string | undefined;
}

/** Alertmanager's webhook body for the sample alert; `startsAt` is when it first fired. */
export function sampleWebhook(status: AlertStatus, startsAt: Date, now: Date): Record<string, unknown> {
  const labels = { alertname: SAMPLE_ALERT.alertname, severity: SAMPLE_ALERT.severity };
  return {
    version: '4',
    groupKey: GROUP_KEY,
    truncatedAlerts: 0,
    status,
    receiver: 'lifeline',
    groupLabels: { alertname: SAMPLE_ALERT.alertname },
    commonLabels: { ...labels, service: 'shop-api', env: 'production' },
    commonAnnotations: { summary: SAMPLE_ALERT.summary, description: SAMPLE_ALERT.description },
    // Addresses of a Prometheus that does not exist: the card shows them as the real ones would be.
    externalURL: 'http://alertmanager.sandbox.invalid:9093',
    alerts: [
      {
        status,
        labels: { ...labels, service: 'shop-api', env: 'production', instance: 'shop-api-1' },
        annotations: { summary: SAMPLE_ALERT.summary },
        startsAt: startsAt.toISOString(),
        endsAt: status === 'resolved' ? now.toISOString() : '0001-01-01T00:00:00Z',
        generatorURL: 'http://prometheus.sandbox.invalid:9090/graph?g0.expr=checkout_error_ratio+%3E+0.05',
        fingerprint: 'c0ffee5a4d1e0001',
      },
    ],
  };
}

export class SampleAlert {
  last: SentAlert | undefined;
  private firingSince: Date | undefined;

  constructor(
    /** Lifeline's POST /alerts/alertmanager. */
    private readonly url: string,
    private readonly token: string,
    private readonly onChange: () => void,
  ) {}

  /** Sends the alert firing (again) or resolved, and keeps Lifeline's answer for the page. */
  async send(status: AlertStatus): Promise<SentAlert> {
    const now = new Date();
    if (status === 'firing') this.firingSince ??= now;
    const body = sampleWebhook(status, this.firingSince ?? now, now);
    if (status === 'resolved') this.firingSince = undefined;
    let sent: SentAlert;
    try {
      const response = await fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${this.token}` },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
      });
      const answer = (await response.json().catch(() => ({}))) as Record<string, unknown>;
      const outcome = response.ok ? answer.outcome : (answer.reply ?? `HTTP ${response.status}`);
      sent = {
        status,
        at: now.getTime(),
        httpStatus: response.status,
        outcome: String(outcome ?? ''),
        incident: typeof answer.incident === 'string' ? answer.incident : undefined,
      };
    } catch (err) {
      sent = { status, at: now.getTime(), httpStatus: undefined, outcome: (err as Error).message, incident: undefined };
    }
    this.last = sent;
    this.onChange();
    return sent;
  }
}
