// Replies to /incident list and /incident status (seen by the sender alone).
import type { FileConfig } from '../../shared/config.js';
import type { Reply } from './reply.js';
import { againstTarget, formatDuration, formatTarget, formatUtc } from '../../shared/format.js';
import { incidentId, incidentState, type Incident } from '../../domain/incidents/model.js';
import type { IncidentDetails } from '../../domain/incidents/service.js';
import { joinMd, line, md, mention, message, type Mrkdwn } from './blocks.js';
import { statusPageLine } from './incident-card.js';

export function renderIncidentList(
  { incidents: open, total }: { incidents: readonly Incident[]; total: number },
  file: Pick<FileConfig, 'severities'>,
): Reply {
  if (total === 0) return line(md`No incidents are open.`);
  const now = Date.now();
  const lines = open.map((i) => {
    const target = file.severities[i.severity].respond_minutes;
    const waiting = md`*not acknowledged* (target ${formatTarget(target)})`;
    const state = i.acknowledgedAt ? acknowledged('acknowledged', i, target) : waiting;
    const open = formatDuration(now - i.declaredAt.getTime());
    return md`• *${incidentId(i.number)}* ${i.severity.toUpperCase()} ${i.title}: open ${open}, ${state}`;
  });
  const shown = total > open.length ? ` (the newest ${open.length} shown)` : '';
  return message(md`${total} open incident${total === 1 ? '' : 's'}${shown}:\n${joinMd(lines, '\n')}`);
}

/** "acknowledged by @x after 4 min 10 s, target 15 min: met"; an immediate target gets no verdict. */
function acknowledged(word: 'acknowledged' | 'Acknowledged', incident: Incident, targetMinutes: number): Mrkdwn {
  const took = incident.acknowledgedAt ? incident.acknowledgedAt.getTime() - incident.declaredAt.getTime() : 0;
  return md`${word} by ${mention(incident.acknowledgedBy ?? '')} after ${againstTarget(took, targetMinutes)}`;
}

export function renderIncidentStatus(details: IncidentDetails, file: Pick<FileConfig, 'severities'>): Reply {
  const { incident, timeline, pages } = details;
  const state = incidentState(incident);
  const head = md`*${incidentId(incident.number)}* ${incident.severity.toUpperCase()} ${incident.title}`;
  const respond = file.severities[incident.severity].respond_minutes;
  const within = respond === 0 ? 'respond immediately' : `respond within ${formatTarget(respond)}`;
  const paged = pages.map((p) => `${p.role} at ${formatUtc(p.pagedAt)}`).join(', ');
  const facts = [
    md`State: ${state}; declared ${formatUtc(incident.declaredAt)} by ${mention(incident.declaredBy)}; ${within}`,
    ...(incident.acknowledgedAt ? [acknowledged('Acknowledged', incident, respond)] : []),
    pages.length === 0 ? md`Paged: nobody yet` : md`Paged: ${paged}`,
    ...(incident.statusPage ? [md`Status page: ${statusPageLine(incident.statusPage)}`] : []),
  ];
  const recent = timeline
    .slice(-10)
    .map((e) => md`${formatUtc(e.at)}  ${mention(e.actor)}  ${e.kind}${e.detail ? `: ${e.detail}` : ''}`);
  return message(joinMd([head, ...facts, md`*Latest timeline*`, ...recent], '\n'));
}
