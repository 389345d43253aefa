// Alerts in, without a database: Alertmanager webhooks and CloudWatch alarm events normalised (source, key, state,
// severity through severity_map, title, bounded labels and annotations, link), and the card that shows where an
// alert incident came from, escaped (alert text is hostile input).
import { describe, expect, it } from 'vitest';
import {
  cut,
  fromAlertmanager,
  fromCloudWatch,
  MAX_PAIRS,
  MAX_VALUE,
  type AlertmanagerWebhook,
  type AlertsConfig,
  type CloudWatchAlarmEvent,
} from '../../src/domain/alerts/alert.js';
import { incidentCard, threadNoteMessage } from '../../src/delivery/slack/incident-card.js';
import { TITLE_MAX } from '../../src/domain/incidents/service.js';
import { allTexts, exampleFile, makeIncident } from './fixtures.js';

const CONFIG: AlertsConfig = {
  token: 'alerts-token-0123456789',
  severity_map: { critical: 'sev1', warning: 'sev3' },
  cloudwatch_severity: 'sev2',
  auto_resolve: true,
  health_check_seconds: 30,
};

function webhook(overrides: Partial<AlertmanagerWebhook> = {}): AlertmanagerWebhook {
  return {
    version: '4',
    groupKey: '{}:{alertname="HighErrorRate"}',
    status: 'firing',
    receiver: 'lifeline',
    groupLabels: { alertname: 'HighErrorRate' },
    commonLabels: { alertname: 'HighErrorRate', severity: 'critical', service: 'checkout' },
    commonAnnotations: { summary: 'Checkout 5xx above 5%', runbook: 'https://runbooks/checkout' },
    externalURL: 'http://alertmanager:9093',
    alerts: [
      { status: 'firing', generatorURL: 'http://prometheus:9090/graph?g0.expr=rate%28x%29' },
      { status: 'firing', generatorURL: 'http://prometheus:9090/graph?g0.expr=other' },
    ],
    ...overrides,
  };
}

function alarm(state: 'ALARM' | 'OK' | 'INSUFFICIENT_DATA' = 'ALARM'): CloudWatchAlarmEvent {
  return {
    'detail-type': 'CloudWatch Alarm State Change',
    account: '123456789012',
    region: 'eu-west-1',
    resources: ['arn:aws:cloudwatch:eu-west-1:123456789012:alarm:api-5xx high'],
    detail: {
      alarmName: 'api-5xx high',
      state: { value: state, reason: 'Threshold Crossed: 1 datapoint [12.0] was greater than 5.0' },
      previousState: { value: 'OK' },
      configuration: { description: 'API returns 5xx' },
    },
  };
}

describe('Alertmanager webhook (version 4)', () => {
  it('a firing group: source alertmanager keyed by groupKey, severity through severity_map, title from summary, first generatorURL', () => {
    const alert = fromAlertmanager(webhook(), CONFIG);
    expect([alert.state, alert.severity, alert.title]).toEqual(['firing', 'sev1', 'Checkout 5xx above 5%']);
    expect(alert.source).toEqual({
      kind: 'alertmanager',
      key: '{}:{alertname="HighErrorRate"}',
      name: 'HighErrorRate',
      labels: { alertname: 'HighErrorRate', severity: 'critical', service: 'checkout' },
      annotations: { summary: 'Checkout 5xx above 5%', runbook: 'https://runbooks/checkout' },
      link: 'http://prometheus:9090/graph?g0.expr=rate%28x%29',
    });
    expect(alert.summary).toBe('Alertmanager firing: 2 firing (Checkout 5xx above 5%)');
  });

  it('an unmapped or missing severity label maps to no severity', () => {
    expect(fromAlertmanager(webhook({ commonLabels: { alertname: 'X', severity: 'info' } }), CONFIG).severity).toBe(
      undefined,
    );
    expect(fromAlertmanager(webhook({ commonLabels: { alertname: 'X' } }), CONFIG).severity).toBeUndefined();
    expect(fromAlertmanager(webhook({ commonLabels: { severity: 'warning' } }), CONFIG).severity).toBe('sev3');
  });

  it('without a summary the title is the alertname; a long summary is cut to the title limit', () => {
    expect(fromAlertmanager(webhook({ commonAnnotations: {} }), CONFIG).title).toBe('HighErrorRate');
    expect(fromAlertmanager(webhook({ commonAnnotations: { summary: '  \n ' } }), CONFIG).title).toBe('HighErrorRate');
    const long = fromAlertmanager(webhook({ commonAnnotations: { summary: 'é'.repeat(400) } }), CONFIG).title;
    expect([...long]).toHaveLength(TITLE_MAX);
    expect(long.endsWith('…')).toBe(true);
    const nameless = fromAlertmanager(webhook({ commonAnnotations: {}, commonLabels: {}, groupLabels: {} }), CONFIG);
    expect(nameless.title).toBe('Alertmanager alert');
  });

  it('resolved is resolved; a generatorURL that is not http(s) is no link', () => {
    const alert = fromAlertmanager(
      webhook({ status: 'resolved', alerts: [{ status: 'resolved', generatorURL: 'javascript:alert(1)' }] }),
      CONFIG,
    );
    expect(alert.state).toBe('resolved');
    expect(alert.source.link).toBeUndefined();
    expect(alert.summary).toContain('1 resolved');
  });

  it('labels and annotations are bounded: at most MAX_PAIRS each, values cut', () => {
    const many = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`label${i}`, 'v'.repeat(1000)]));
    const alert = fromAlertmanager(webhook({ commonLabels: many, commonAnnotations: many }), CONFIG);
    for (const pairs of [alert.source.labels, alert.source.annotations]) {
      expect(Object.keys(pairs)).toHaveLength(MAX_PAIRS);
      for (const value of Object.values(pairs)) expect([...value].length).toBeLessThanOrEqual(MAX_VALUE);
    }
  });
});

describe('CloudWatch Alarm State Change', () => {
  it('ALARM: source cloudwatch keyed by the alarm ARN, cloudwatch_severity, the alarm name as title, its console link', () => {
    const alert = fromCloudWatch(alarm(), CONFIG);
    expect([alert.state, alert.severity, alert.title]).toEqual(['firing', 'sev2', 'api-5xx high']);
    expect([alert.source.kind, alert.source.key]).toEqual([
      'cloudwatch',
      'arn:aws:cloudwatch:eu-west-1:123456789012:alarm:api-5xx high',
    ]);
    expect(alert.source.labels).toEqual({ alarm: 'api-5xx high', account: '123456789012', region: 'eu-west-1' });
    expect(alert.source.annotations).toEqual({
      reason: 'Threshold Crossed: 1 datapoint [12.0] was greater than 5.0',
      description: 'API returns 5xx',
      previous_state: 'OK',
    });
    expect(alert.source.link).toBe(
      'https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#alarmsV2:alarm/api-5xx%20high',
    );
  });

  it('OK is resolved, INSUFFICIENT_DATA its own state; the region comes from the ARN when the event has none', () => {
    expect(fromCloudWatch(alarm('OK'), CONFIG).state).toBe('resolved');
    expect(fromCloudWatch(alarm('INSUFFICIENT_DATA'), CONFIG).state).toBe('insufficient_data');
    const noRegion: CloudWatchAlarmEvent = { ...alarm(), region: undefined };
    expect(fromCloudWatch(noRegion, CONFIG).source.link).toContain('https://eu-west-1.console.aws.amazon.com/');
    expect(fromCloudWatch(alarm(), { ...CONFIG, cloudwatch_severity: 'sev4' }).severity).toBe('sev4');
  });
});

describe('cut', () => {
  it('counts code points and marks what it cut', () => {
    expect(cut('short', 10)).toBe('short');
    expect(cut('🔥'.repeat(5), 3)).toBe('🔥🔥…');
  });
});

describe('the card of an alert incident', () => {
  const hostile = fromAlertmanager(
    webhook({
      commonLabels: { alertname: 'Disk', severity: 'critical', team: '<!channel> <@U0CEO> <https://evil|click>' },
      commonAnnotations: { summary: 'Disk full', description: '<!here> & *bold*' },
      alerts: [{ status: 'firing', generatorURL: 'https://prom.example/graph?a=1&b=<2>' }],
    }),
    CONFIG,
  );
  const card = incidentCard(
    makeIncident({ declaredBy: 'lifeline', title: 'Disk full', source: hostile.source }),
    exampleFile(),
  );
  const text = allTexts(card).join('\n');

  it('says where it came from: source, group key, labels, annotations and the generatorURL', () => {
    const shown = ['*Source*: Alertmanager group Disk', '`{}:{alertname="HighErrorRate"}`', '*Labels*', '`team`'];
    for (const part of [...shown, '*Annotations*', 'Disk full', '*Declared by*\nlifeline'])
      expect(text).toContain(part);
  });

  it('escapes alert text: <!channel> in a label is not a ping, no mention, no link but the escaped generatorURL', () => {
    expect(text).not.toContain('<!channel>');
    expect(text).not.toContain('<!here>');
    expect(text).not.toContain('<@U0CEO>');
    expect(text).not.toContain('<https://evil');
    expect(text).toContain('&lt;!channel&gt; &lt;@U0CEO&gt;');
    expect(text).toContain('&lt;!here&gt; &amp; *bold*');
    // The URL has < and >: it is shown as escaped text, not as a link.
    expect(text).toContain('https://prom.example/graph?a=1&amp;b=&lt;2&gt;');
  });

  it('a clean generatorURL is a link, & escaped; a CloudWatch card names the alarm, its ARN and its console link', () => {
    const clean = fromAlertmanager(webhook(), CONFIG);
    const am = allTexts(incidentCard(makeIncident({ source: clean.source }), exampleFile())).join('\n');
    expect(am).toContain('<http://prometheus:9090/graph?g0.expr=rate%28x%29|the alert in Prometheus>');
    const cw = fromCloudWatch(alarm(), CONFIG);
    const cwText = allTexts(incidentCard(makeIncident({ source: cw.source }), exampleFile())).join('\n');
    expect(cwText).toContain('*Source*: CloudWatch alarm api-5xx high');
    expect(cwText).toContain('*Alarm*: `arn:aws:cloudwatch:eu-west-1:123456789012:alarm:api-5xx high`');
    expect(cwText).toContain('|the alarm in the AWS console>');
  });

  it('a card without a source has no source section', () => {
    expect(allTexts(incidentCard(makeIncident(), exampleFile())).join('\n')).not.toContain('*Source*');
  });

  it('the cleared note names the source, escaped', () => {
    const note = threadNoteMessage(makeIncident(), {
      kind: 'alert_cleared',
      source: hostile.source,
      summary: '<!channel>',
    });
    const noteText = allTexts(note).join('\n');
    expect(noteText).toContain('INC-7: Alertmanager group Disk cleared');
    expect(noteText).not.toContain('<!channel>');
  });
});
