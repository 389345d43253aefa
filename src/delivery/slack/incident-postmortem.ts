// The post-mortem draft `/incident postmortem` answers with: Markdown for the team's document, shown in a code block.
import type { FileConfig } from '../../shared/config.js';
import { againstTarget, formatDuration, formatTarget, formatUtcSeconds } from '../../shared/format.js';
import { incidentId, type Incident, type TimelineEvent } from '../../domain/incidents/model.js';
import type { IncidentDetails } from '../../domain/incidents/service.js';

const KIND_LABEL: Record<string, string> = {
  declared: 'Declared',
  paged: 'Paged',
  page_failed: 'Page failed',
  acknowledged: 'Acknowledged',
  update: 'Update',
  severity_changed: 'Severity changed',
  ladder_started: 'Escalation started',
  ladder_stopped: 'Escalation stopped',
  resolved: 'Resolved',
  statuspage: 'Status page',
  statuspage_failed: 'Status page call failed',
  alert_repeat: 'Alert repeated',
  alert_cleared: 'Alert cleared',
  alert_state: 'Alert state',
  reminder: 'Update reminder',
};

/** A Markdown draft for the post-mortem: the facts Lifeline recorded, and headings for what only people know. */
export function renderPostmortem(details: IncidentDetails, file: Pick<FileConfig, 'severities'>): string {
  const { incident, timeline, pages } = details;
  const id = incidentId(incident.number);
  const target = file.severities[incident.severity].respond_minutes;
  const ackLine = incident.acknowledgedAt
    ? `${againstTarget(incident.acknowledgedAt.getTime() - incident.declaredAt.getTime(), target)}; ` +
      `acknowledged by ${incident.acknowledgedBy}`
    : `not acknowledged (target ${formatTarget(target)})`;
  const resolveLine = incident.resolvedAt
    ? `${formatDuration(incident.resolvedAt.getTime() - incident.declaredAt.getTime())} (by ${incident.resolvedBy})`
    : 'not resolved yet';
  const lines = [
    `# Post-mortem draft: ${id} ${oneLine(incident.title)}`,
    '',
    '## Summary',
    '',
    `- **Severity:** ${incident.severity.toUpperCase()}`,
    `- **Declared:** ${formatUtcSeconds(incident.declaredAt)} by ${incident.declaredBy}`,
    `- **Time to acknowledge:** ${ackLine}`,
    `- **Time to resolve:** ${resolveLine}`,
    ...(incident.resolutionNote ? [`- **Resolution note:** ${oneLine(incident.resolutionNote)}`] : []),
    '',
    '## Detection and communication',
    '',
    `- **Detected by:** ${detectedBy(incident)}`,
    `- **Incident channel:** ${incident.channel ?? 'none'}`,
    `- **Status page:** ${statusPageLine(incident)}`,
    ...eventList(timeline, 'statuspage', 'Status page updates'),
    ...eventList(timeline, 'statuspage_failed', 'Status page calls that failed'),
    ...eventList(timeline, 'reminder', 'Update reminders'),
    '',
    '## Who was paged',
    '',
    ...(pages.length === 0
      ? ['Nobody was paged.']
      : pages.map(
          (p) =>
            `- ${p.role}: ${formatUtcSeconds(p.pagedAt)} (step ${p.stepIndex + 1}, due ${formatUtcSeconds(p.dueAt)})`,
        )),
    '',
    '## Timeline (UTC)',
    '',
    '| time | who | what | detail |',
    '| --- | --- | --- | --- |',
    ...timeline.map(
      (e) => `| ${formatUtcSeconds(e.at)} | ${cell(e.actor)} | ${KIND_LABEL[e.kind] ?? e.kind} | ${cell(e.detail)} |`,
    ),
    '',
    '## Impact',
    '',
    '_Who and what was affected, for how long._',
    '',
    '## Root cause',
    '',
    '_What happened, and why._',
    '',
    '## What went well / what did not',
    '',
    '## Action items',
    '',
    '- [ ] _action_ (owner, due date)',
    '',
  ];
  return lines.join('\n');
}

function detectedBy(incident: Incident): string {
  const { source } = incident;
  if (!source) return `a person: /incident ${incident.severity} by ${incident.declaredBy}`;
  const labels = Object.entries(source.labels).map(([k, v]) => `${k}=${oneLine(v)}`);
  const what =
    source.kind === 'health'
      ? `the health check of ${source.name}`
      : `${source.kind === 'alertmanager' ? 'Alertmanager alert' : 'CloudWatch alarm'} ${oneLine(source.name)}`;
  return [what, labels.length > 0 ? ` (${labels.join(', ')})` : '', source.link ? `, ${source.link}` : ''].join('');
}

function statusPageLine(incident: Incident): string {
  const page = incident.statusPage;
  if (!page) return 'none';
  return `incident ${page.id}${page.link ? ` (${page.link})` : ''}, last status ${page.status}`;
}

/** The events of one kind as a sub-list under its own label, with a count; nothing when there were none. */
function eventList(timeline: readonly TimelineEvent[], kind: TimelineEvent['kind'], label: string): string[] {
  const events = timeline.filter((e) => e.kind === kind);
  if (events.length === 0) return [];
  return [
    `- **${label}:** ${events.length}`,
    ...events.map((e) => `  - ${formatUtcSeconds(e.at)}: ${oneLine(e.detail)}`),
  ];
}

function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ');
}

function cell(text: string): string {
  return oneLine(text).replace(/\|/g, '\\|');
}
