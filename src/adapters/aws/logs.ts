import { CloudWatchLogsClient, FilterLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { boundedClientOptions } from './client.js';
import { classifyAwsError, type AwsClientLimits } from './aws.js';
import type { LogEvent, LogsPort } from './port.js';

// FilterLogEvents takes at most 10,000 per page. The page cap bounds one `filter` call: the API may answer
// pages with no events and a nextToken while it scans a large group, and a Slack reply cannot wait forever.
const MAX_PAGE_LIMIT = 10_000;
const MAX_PAGES = 50;

/**
 * No explicit endpoint or region: the SDK's chain applies (AWS_REGION, credentials,
 * AWS_ENDPOINT_URL_CLOUDWATCH_LOGS). Bounded: 3 attempts with a connect and a whole-request timeout
 * (longer than RDS/ECS: a filter over a busy group is slow to answer).
 */
export function createLogsClient(limits: AwsClientLimits = {}): CloudWatchLogsClient {
  return new CloudWatchLogsClient(boundedClientOptions(limits, 20_000));
}

export function createLogsPort(client: CloudWatchLogsClient = createLogsClient()): LogsPort {
  return {
    async filter(logGroup, query, signal) {
      const limit = Math.max(0, Math.floor(query.limit));
      const events: LogEvent[] = [];
      let nextToken: string | undefined;
      for (let page = 0; page < MAX_PAGES && events.length < limit; page++) {
        signal?.throwIfAborted();
        let out;
        try {
          out = await client.send(
            new FilterLogEventsCommand({
              logGroupName: logGroup,
              startTime: query.since.getTime(),
              ...(query.until ? { endTime: query.until.getTime() } : {}),
              ...(query.pattern ? { filterPattern: query.pattern } : {}),
              limit: Math.min(MAX_PAGE_LIMIT, limit - events.length),
              ...(nextToken ? { nextToken } : {}),
            }),
            signal ? { abortSignal: signal } : {},
          );
        } catch (err) {
          signal?.throwIfAborted();
          throw classifyAwsError('logs', 'FilterLogEvents', err);
        }
        for (const e of out.events ?? []) {
          if (events.length >= limit) break;
          events.push({ at: new Date(e.timestamp ?? 0), stream: e.logStreamName ?? '', message: e.message ?? '' });
        }
        if (!out.nextToken || out.nextToken === nextToken) break;
        nextToken = out.nextToken;
      }
      // Events from several streams need not arrive in time order; the sort is stable for equal times.
      return events.sort((a, b) => a.at.getTime() - b.at.getTime());
    },
  };
}
