// Block Kit for incidents: the card in emergency_channel and the notes in its thread.
import type { ChatMessage, Block } from '../../adapters/slack/port.js';
import type { FileConfig } from '../../shared/config.js';
import { againstTarget, formatDuration, formatTarget, formatUtc } from '../../shared/format.js';
import { incidentId, incidentState, type AlertSource, type Incident } from '../../domain/incidents/model.js';
import { sourceName } from '../../domain/alerts/alert.js';
import type { ThreadNote } from '../../domain/incidents/notifier.js';
import {
  bold,
  channelLink,
  code,
  italic,
  joinMd,
  md,
  mention,
  message,
  section,
  sections,
  webLink,
  type Mrkdwn,
} from './blocks.js';

export const ACK_ACTION = 'incident_acknowledge';
export const RESOLVE_ACTION = 'incident_resolve';

const STATE_EMOJI = { open: ':rotating_light:', acknowledged: ':eyes:', resolved: ':white_check_mark:' } as const;

export function incidentCard(incident: Incident, file: Pick<FileConfig, 'severities' | 'escalation'>): ChatMessage {
  const id = incidentId(incident.number);
  const state = incidentState(incident);
  const severity = incident.severity.toUpperCase();
  const target = file.severities[incident.severity];
  const fields = [
    md`*Declared by*\n${mention(incident.declaredBy)}`,
    md`*Declared at*\n${formatUtc(incident.declaredAt)}`,
    md`*Respond within*\n${formatTarget(target.respond_minutes)}`,
    md`*Status*\n${statusLine(incident, target.respond_minutes)}`,
  ];
  if (incident.statusPage) fields.push(md`*Status page*\n${statusPageLine(incident.statusPage)}`);
  if (incident.channel) fields.push(md`*Channel*\n${channelLink(incident.channel)}`);
  const blocks: Block[] = [
    { type: 'header', text: { type: 'plain_text', text: `${severity} · ${id}`, emoji: true } },
    section(md`${STATE_EMOJI[state]} ${bold(incident.title)}`),
    { type: 'section', fields: fields.map((field) => ({ type: 'mrkdwn' as const, text: field.text })) },
  ];
  if (incident.source) blocks.push(...sections(sourceText(incident.source)));
  if (incident.resolutionNote) blocks.push(...sections(md`*Resolution*\n${incident.resolutionNote}`));
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: ladderLine(incident, file).text }] });
  if (state !== 'resolved') blocks.push(buttons(incident.number, state === 'open'));
  return { text: md`${severity} ${id}: ${incident.title} (${state})`.text, blocks };
}

/** Where an alert incident came from: the source, its group or alarm, labels, annotations and the link back. */
function sourceText(source: AlertSource): Mrkdwn {
  const keyName = { alertmanager: 'Group key', cloudwatch: 'Alarm', health: 'Env' }[source.kind];
  const pairs = (entries: Readonly<Record<string, string>>) =>
    joinMd(
      Object.entries(entries).map(([k, v]) => md`• ${code(k)} ${v}`),
      '\n',
    );
  const lines = [md`*Source*: ${sourceName(source)}`, md`*${keyName}*: ${code(source.key)}`];
  if (Object.keys(source.labels).length > 0) lines.push(md`*Labels*\n${pairs(source.labels)}`);
  if (Object.keys(source.annotations).length > 0) lines.push(md`*Annotations*\n${pairs(source.annotations)}`);
  if (source.link) {
    const label = {
      alertmanager: 'the alert in Prometheus',
      cloudwatch: 'the alarm in the AWS console',
      health: 'the health URL',
    }[source.kind];
    lines.push(md`*Link*: ${webLink(source.link, label)}`);
  }
  return joinMd(lines, '\n');
}

function statusLine(incident: Incident, respondMinutes: number): Mrkdwn {
  if (incident.resolvedAt) {
    const took = formatDuration(incident.resolvedAt.getTime() - incident.declaredAt.getTime());
    return md`Resolved by ${mention(incident.resolvedBy ?? '')} after ${took}`;
  }
  if (incident.acknowledgedAt) {
    const took = incident.acknowledgedAt.getTime() - incident.declaredAt.getTime();
    return md`Acknowledged by ${mention(incident.acknowledgedBy ?? '')} after ${againstTarget(took, respondMinutes)}`;
  }
  return md`Open, not acknowledged`;
}

/** The status page incident's link and status, as the card and `/incident status` show it. */
export function statusPageLine(page: NonNullable<Incident['statusPage']>): Mrkdwn {
  return page.link ? md`${webLink(page.link, page.link)} (${page.status})` : md`${page.status}`;
}

function ladderLine(incident: Incident, file: Pick<FileConfig, 'severities' | 'escalation'>): Mrkdwn {
  if (!file.severities[incident.severity].page) return md`${incident.severity.toUpperCase()} does not page.`;
  const ladder = file.escalation.map((s) => `${s.notify} at ${+s.after_minutes.toFixed(2)} min`).join(' → ');
  if (incidentState(incident) === 'open') return md`Escalation until acknowledged: ${ladder}`;
  return md`Escalation stopped. Ladder: ${ladder}`;
}

function buttons(number: number, canAcknowledge: boolean): Block {
  const value = String(number);
  return {
    type: 'actions',
    block_id: `incident_actions_${number}`,
    elements: [
      ...(canAcknowledge
        ? [
            {
              type: 'button' as const,
              action_id: ACK_ACTION,
              style: 'primary' as const,
              value,
              text: { type: 'plain_text' as const, text: 'Acknowledge' },
            },
          ]
        : []),
      {
        type: 'button',
        action_id: RESOLVE_ACTION,
        value,
        text: { type: 'plain_text', text: 'Resolve' },
        confirm: {
          title: { type: 'plain_text', text: `Resolve ${incidentId(number)}?` },
          text: { type: 'plain_text', text: 'This stops escalation and resolves every page sent for it.' },
          confirm: { type: 'plain_text', text: 'Resolve' },
          deny: { type: 'plain_text', text: 'Cancel' },
        },
      },
    ],
  };
}

export function threadNoteMessage(incident: Incident, note: ThreadNote): ChatMessage {
  const id = incidentId(incident.number);
  switch (note.kind) {
    case 'paged': {
      const nobody = italic('(no Slack users configured)');
      const people = note.users.length > 0 ? joinMd(note.users.map(mention), ' ') : nobody;
      const after = `${formatDuration(note.afterMinutes * 60_000)} without acknowledgement`;
      const when = note.afterMinutes === 0 ? 'at declaration' : after;
      const step = `step ${note.stepNumber} of ${note.totalSteps}, ${when}`;
      return message(md`:pager: ${id}: paging ${bold(note.role)} (${step}): ${people}`);
    }
    case 'update':
      return message(md`:memo: ${id} update from ${mention(note.actor)}:\n${note.text}`);
    case 'severity': {
      const ladder = { started: ' Escalation ladder started.', stopped: ' Escalation ladder stopped.', unchanged: '' }[
        note.ladder
      ];
      const change = `${note.from.toUpperCase()} → ${note.to.toUpperCase()}.${ladder}`;
      return message(md`:arrows_counterclockwise: ${id} severity changed by ${mention(note.actor)}: ${change}`);
    }
    case 'statuspage': {
      const what = note.created ? 'status page incident created' : 'status page updated';
      const where = note.link ? md`: ${webLink(note.link, note.link)}` : md``;
      const after =
        note.failures > 0 ? ` (after ${note.failures} failed ${note.failures === 1 ? 'try' : 'tries'})` : '';
      return message(md`:globe_with_meridians: ${id}: ${what}, ${bold(note.status)}${after}${where}`);
    }
    case 'statuspage_failed': {
      const next = note.retrying ? 'Lifeline keeps retrying.' : 'Lifeline has given up on it.';
      const said = md`:warning: ${id}: the status page call (${note.status}) failed: ${note.error}. ${next}`;
      return message(said);
    }
    case 'channel_failed':
      return message(md`:warning: ${id}: no incident channel: ${note.error}. Paging and this thread go on as usual.`);
    case 'reminder': {
      const nobody = italic('(nobody to mention)');
      const people = note.users.length > 0 ? joinMd(note.users.map(mention), ' ') : nobody;
      const since = note.sinceDeclaration ? 'since it was declared' : 'since the latest one';
      const quiet = `no update for ${formatDuration(note.sinceUpdateMs)} (${since})`;
      return message(md`:alarm_clock: ${id}: ${quiet}. ${people}, please post one with ${code('/incident update')}.`);
    }
    case 'alert_cleared': {
      const cleared = `${sourceName(note.source)} cleared (${note.summary})`;
      return message(
        md`:large_green_circle: ${id}: ${cleared}. alerts.auto_resolve is off: resolve it when satisfied.`,
      );
    }
  }
}
