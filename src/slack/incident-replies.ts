// Replies to /incident list and /incident status (seen by the sender alone).
import type { FileConfig } from '../config.js';
import type { Reply } from '../commands/registry.js';
import { formatDuration, formatTarget, formatUtc } from '../incidents/format.js';
import { incidentId, incidentState, type Incident } from '../incidents/model.js';
import type { IncidentDetails } from '../incidents/service.js';
import { escapeMrkdwn, mention, sections } from './blocks.js';

export function renderIncidentList(
  { incidents: open, total }: { incidents: readonly Incident[]; total: number },
  file: Pick<FileConfig, 'severities'>,
): Reply {
  if (total === 0) return { text: 'No incidents are open.' };
  const now = Date.now();
  const lines = open.map((i) => {
    const state = incidentState(i) === 'acknowledged' ? `acknowledged by ${mention(i.acknowledgedBy ?? '')}` : '*not acknowledged*';
    return `• *${incidentId(i.number)}* ${i.severity.toUpperCase()} ${escapeMrkdwn(i.title)}: open ${formatDuration(now - i.declaredAt.getTime())}, ${state} (target ${formatTarget(file.severities[i.severity].respond_minutes)})`;
  });
  const shown = total > open.length ? ` (the newest ${open.length} shown)` : '';
  const text = `${total} open incident${total === 1 ? '' : 's'}${shown}:\n${lines.join('\n')}`;
  return { text, blocks: sections(text) };
}

export function renderIncidentStatus(details: IncidentDetails, file: Pick<FileConfig, 'severities'>): Reply {
  const { incident, timeline, pages } = details;
  const state = incidentState(incident);
  const head = `*${incidentId(incident.number)}* ${incident.severity.toUpperCase()} ${escapeMrkdwn(incident.title)}`;
  const facts = [
    `State: ${state}; declared ${formatUtc(incident.declaredAt)} by ${mention(incident.declaredBy)}; respond within ${formatTarget(file.severities[incident.severity].respond_minutes)}`,
    pages.length === 0 ? 'Paged: nobody yet' : `Paged: ${pages.map((p) => `${p.role} at ${formatUtc(p.pagedAt)}`).join(', ')}`,
  ];
  const recent = timeline.slice(-10).map((e) => `${formatUtc(e.at)}  ${mention(e.actor)}  ${e.kind}${e.detail ? `: ${escapeMrkdwn(e.detail)}` : ''}`);
  const text = [head, ...facts, '*Latest timeline*', ...recent].join('\n');
  return { text, blocks: sections(text) };
}
