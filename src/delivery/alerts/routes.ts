// POST /alerts/alertmanager and POST /alerts/cloudwatch on PORT: the bearer alerts.token (compared in constant time),
// a JSON body of at most 1 MB, the payload checked with zod, then the alert service. Every refusal (401, 404, 413,
// 415, 400) is answered before anything changes.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import { fromAlertmanager, fromCloudWatch, type Alert, type AlertsConfig } from '../../domain/alerts/alert.js';
import type { AlertResult, AlertService } from '../../domain/alerts/service.js';
import { incidentId } from '../../domain/incidents/model.js';
import type { Logger } from '../../shared/log.js';
import type { Metrics } from '../../shared/metrics.js';
import { closeAfter, readJsonBody, sendJson } from '../http/body.js';
import { hasBearer, type Route } from '../http/health.js';

export const ALERT_BODY_LIMIT = { maxBytes: 1024 * 1024, overflow: 'stop' } as const;

const text = z.string();
const pairs = z.record(z.string(), z.string());

const alertmanagerSchema = z.object({
  version: z.literal('4', { error: 'must be "4" (Alertmanager webhook version 4)' }),
  groupKey: text.min(1, 'must not be empty'),
  status: z.enum(['firing', 'resolved']),
  receiver: text.optional(),
  groupLabels: pairs.optional(),
  commonLabels: pairs,
  commonAnnotations: pairs,
  externalURL: text.optional(),
  truncatedAlerts: z.number().int().nonnegative().optional(),
  alerts: z.array(
    z.object({
      status: z.enum(['firing', 'resolved']),
      labels: pairs.optional(),
      annotations: pairs.optional(),
      generatorURL: text.optional(),
    }),
  ),
});

const cloudWatchSchema = z.object({
  'detail-type': z.literal('CloudWatch Alarm State Change', {
    error: 'must be "CloudWatch Alarm State Change"',
  }),
  account: text.optional(),
  region: text.optional(),
  resources: z.array(text.min(1)).min(1, 'must name the alarm ARN'),
  detail: z.object({
    alarmName: text.min(1, 'must not be empty'),
    state: z.object({ value: z.enum(['ALARM', 'OK', 'INSUFFICIENT_DATA']), reason: text.optional() }),
    previousState: z.object({ value: text.optional() }).optional(),
    configuration: z.object({ description: text.optional() }).optional(),
  }),
});

type SourceName = 'alertmanager' | 'cloudwatch';

export interface AlertRoutesDeps {
  /** Undefined when the config has no `alerts:` section: both endpoints answer 404. */
  readonly alerts: { readonly config: AlertsConfig; readonly service: Pick<AlertService, 'receive'> } | undefined;
  readonly metrics: Metrics;
  readonly log: Logger;
}

export function alertRoutes(deps: AlertRoutesDeps): Route[] {
  const route = (source: SourceName, parse: (body: unknown, config: AlertsConfig) => Parsed): Route => ({
    path: `/alerts/${source}`,
    method: ['POST'],
    handler: (req, res) => {
      const at = new Date();
      void receive(deps, source, parse, req, res, at).catch((err: Error) => {
        deps.log.error({ err: err.message, source }, 'alert could not be handled');
        deps.metrics.alertsReceived.inc({ source, outcome: 'error' });
        // 5xx: Alertmanager and EventBridge send it again.
        sendJson(res, 500, { ok: false, reply: 'Lifeline hit an unexpected error; it is logged.', code: 'error' });
      });
    },
  });
  return [
    route('alertmanager', (body, config) =>
      parsed(alertmanagerSchema.safeParse(body), (b) => fromAlertmanager(b, config)),
    ),
    route('cloudwatch', (body, config) => parsed(cloudWatchSchema.safeParse(body), (b) => fromCloudWatch(b, config))),
  ];
}

type Parsed = { readonly ok: true; readonly alert: Alert } | { readonly ok: false; readonly problem: string };

function parsed<T>(result: z.ZodSafeParseResult<T>, normalise: (body: T) => Alert): Parsed {
  if (result.success) return { ok: true, alert: normalise(result.data) };
  const problems = result.error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : 'body'}: ${i.message}`);
  return { ok: false, problem: problems.join('; ') };
}

async function receive(
  deps: AlertRoutesDeps,
  source: SourceName,
  parse: (body: unknown, config: AlertsConfig) => Parsed,
  req: IncomingMessage,
  res: ServerResponse,
  at: Date,
): Promise<void> {
  const refuse = (status: number, body: object, reason: string) => {
    deps.metrics.alertsReceived.inc({ source, outcome: 'refused' });
    deps.log.info({ source, status, reason }, 'alert refused');
    sendJson(res, status, body);
  };
  if (!deps.alerts) {
    closeAfter(res);
    return refuse(
      404,
      { ok: false, reply: 'Alerts are not set up: the config has no alerts: section.', code: 'not_found' },
      'not configured',
    );
  }
  if (!hasBearer(req, deps.alerts.config.token)) {
    // Never the token: only that it was missing or wrong. The body is not read.
    closeAfter(res);
    res.setHeader(
      'www-authenticate',
      `Bearer realm="lifeline alerts"${req.headers.authorization ? ', error="invalid_token"' : ''}`,
    );
    return refuse(
      401,
      { ok: false, reply: 'Send Authorization: Bearer <alerts.token>.', code: 'unauthorized' },
      req.headers.authorization ? 'wrong token' : 'no token',
    );
  }
  const body = await readJsonBody(req, ALERT_BODY_LIMIT);
  if (!body.ok) {
    if (body.status !== 400) closeAfter(res);
    return refuse(body.status, body.answer, `HTTP ${body.status}`);
  }
  const result = parse(body.value, deps.alerts.config);
  if (!result.ok) {
    return refuse(
      400,
      {
        ok: false,
        reply: `Not a ${source === 'alertmanager' ? 'Alertmanager webhook (version 4)' : 'CloudWatch Alarm State Change event'}: ${result.problem}`,
        code: 'bad_request',
      },
      result.problem,
    );
  }
  const outcome: AlertResult = await deps.alerts.service.receive(result.alert, at);
  deps.metrics.alertsReceived.inc({ source, outcome: outcome.outcome });
  sendJson(res, 200, {
    ok: true,
    outcome: outcome.outcome,
    ...(outcome.incident !== undefined ? { incident: incidentId(outcome.incident) } : {}),
    ...(outcome.reason !== undefined ? { reason: outcome.reason } : {}),
  });
}
