// `/incident`: declare, acknowledge, update, change severity, resolve, list, status, post-mortem, help.
import { SEVERITIES, type FileConfig, type Severity } from '../../shared/config.js';
import { incidentId, parseIncidentId } from '../../domain/incidents/model.js';
import {
  characterCount,
  TITLE_MAX,
  type IncidentReference,
  type IncidentService,
} from '../../domain/incidents/service.js';
import { STATUS_BODY_MAX, type StatusPageService } from '../../domain/incidents/statuspage.js';
import { STATUSPAGE_STATUSES, type StatuspageStatus } from '../../adapters/statuspage/port.js';
import { bold, channelLink, codeBlock, escapeMrkdwn, line, md } from '../slack/blocks.js';
import { UserError } from '../../shared/errors.js';
import { renderPostmortem } from '../slack/incident-postmortem.js';
import { renderIncidentList, renderIncidentStatus } from '../slack/incident-replies.js';
import {
  badCommand,
  helpText,
  subcommand,
  words,
  type CommandContext,
  type SlashCommand,
  type Subcommand,
} from './registry.js';

function isSeverity(word: string): word is Severity {
  return (SEVERITIES as readonly string[]).includes(word);
}

/** Splits an optional leading `INC-n` from the rest of the text. */
export function splitIncidentId(rest: string): { number?: number; rest: string } {
  const [first = ''] = words(rest);
  const number = parseIncidentId(first);
  if (number !== undefined) return { number, rest: rest.trim().slice(first.length).trim() };
  if (/^inc-/i.test(first)) throw badCommand(`"${first}" is not an incident ID (they look like INC-42).`);
  return { rest: rest.trim() };
}

function reference(number: number | undefined, ctx: CommandContext): IncidentReference {
  return { number, threadTs: ctx.threadTs, channel: ctx.channelId };
}

function onlyIncidentId(rest: string): { number?: number } {
  const split = splitIncidentId(rest);
  if (split.rest !== '') throw badCommand(`Unexpected text "${split.rest}".`);
  return split.number === undefined ? {} : { number: split.number };
}

export function parseTitle(rest: string): string {
  const title = rest.trim();
  if (title === '') throw badCommand('The incident needs a title.');
  const length = characterCount(title);
  if (length > TITLE_MAX) throw badCommand(`The title is ${length} characters; the limit is ${TITLE_MAX}.`);
  return title;
}

/** What the /incident table works with; read only inside `parse` and `run` (see DrDeps), never while it is built. */
export interface IncidentDeps {
  readonly incidents: IncidentService;
  readonly file: FileConfig;
  /** Absent where the status page cannot be reached (help tables); the service refuses when none is configured. */
  readonly statusPage?: StatusPageService;
}

function declareEntry(deps: IncidentDeps): Subcommand<unknown> {
  return subcommand({
    usage: 'sev1|sev2|sev3|sev4 <title>',
    access: 'anyone',
    effect: 'write',
    summary: 'declare an incident, post its card and start paging (SEV1, SEV2)',
    matches: (w) => /^sev[0-9]+$/.test(w),
    parse(rest, word) {
      if (!isSeverity(word)) throw badCommand(`Unknown severity "${word}": use sev1, sev2, sev3 or sev4.`);
      return { severity: word, title: parseTitle(rest) };
    },
    async run(args, ctx) {
      const declared = { ...args, actor: ctx.userId, channel: ctx.channelId, at: ctx.receivedAt };
      const { incident, cardError } = await deps.incidents.declare(declared);
      const where = incident.card
        ? md`its card is in ${channelLink(incident.card.channel)}`
        : md`its card could not be posted (${escapeMrkdwn(cardError ?? '')})`;
      const paging = deps.file.severities[args.severity].page ? ' Paging has started.' : '';
      const severity = args.severity.toUpperCase();
      return {
        ...line(md`Declared *${incidentId(incident.number)}* (${severity}); ${where}.${paging}`),
        incident: incident.number,
      };
    },
  });
}

/** ack, update: answering the page, and saying how it goes. */
function responseEntries(deps: IncidentDeps): Subcommand<unknown>[] {
  return [
    subcommand({
      usage: 'ack [ID]',
      access: 'responders',
      effect: 'write',
      summary: 'acknowledge: stops the escalation ladder',
      matches: (w) => w === 'ack' || w === 'acknowledge',
      parse: onlyIncidentId,
      async run(args, ctx) {
        const incident = await deps.incidents.acknowledge(reference(args.number, ctx), ctx.userId);
        const said = md`You acknowledged *${incidentId(incident.number)}*; escalation has stopped.`;
        return { ...line(said), incident: incident.number };
      },
    }),
    subcommand({
      usage: 'update [ID] <text>',
      access: 'anyone',
      effect: 'write',
      summary: 'add a status update to the timeline and the thread',
      matches: (w) => w === 'update',
      parse(rest) {
        const split = splitIncidentId(rest);
        if (split.rest === '') throw badCommand('The update needs some text.');
        if (split.rest.length > 2_900)
          throw badCommand(`The update is ${split.rest.length} characters; the limit is 2900.`);
        return split;
      },
      async run(args, ctx) {
        const incident = await deps.incidents.update(reference(args.number, ctx), ctx.userId, args.rest);
        return { ...line(md`Update added to *${incidentId(incident.number)}*.`), incident: incident.number };
      },
    }),
  ];
}

/** severity, resolve: the incident's course, and its end. */
function courseEntries(deps: IncidentDeps): Subcommand<unknown>[] {
  return [
    subcommand({
      usage: 'severity [ID] sev1..sev4',
      access: 'responders',
      effect: 'write',
      summary: 'change severity; raising to a paging severity starts the ladder',
      matches: (w) => w === 'severity' || w === 'sev',
      parse(rest) {
        const split = splitIncidentId(rest);
        const severity = split.rest.toLowerCase();
        if (severity === '') throw badCommand('Say which severity.');
        if (!isSeverity(severity)) throw badCommand(`Unknown severity "${split.rest}": use sev1, sev2, sev3 or sev4.`);
        return { number: split.number, severity };
      },
      async run(args, ctx) {
        const changed = await deps.incidents.changeSeverity(reference(args.number, ctx), ctx.userId, args.severity);
        const { incident, ladder } = changed;
        const note = { started: ' Paging has started.', stopped: ' Paging has stopped.', unchanged: '' }[ladder];
        const said = md`*${incidentId(incident.number)}* is now ${incident.severity.toUpperCase()}.${note}`;
        return { ...line(said), incident: incident.number };
      },
    }),
    subcommand({
      usage: 'resolve [ID] [note]',
      access: 'responders',
      effect: 'write',
      summary: 'resolve: stops escalation and resolves every page',
      matches: (w) => w === 'resolve',
      parse(rest) {
        const split = splitIncidentId(rest);
        if (split.rest.length > 2_900)
          throw badCommand(`The note is ${split.rest.length} characters; the limit is 2900.`);
        return split;
      },
      async run(args, ctx) {
        const note = args.rest === '' ? undefined : args.rest;
        const incident = await deps.incidents.resolve(reference(args.number, ctx), ctx.userId, note);
        return { ...line(md`You resolved *${incidentId(incident.number)}*.`), incident: incident.number };
      },
    }),
  ];
}

function isStatuspageStatus(word: string): word is StatuspageStatus {
  return (STATUSPAGE_STATUSES as readonly string[]).includes(word);
}

/** statuspage: what the public reads. Responders only: it is a public statement. */
function statusPageEntry(deps: IncidentDeps): Subcommand<unknown> {
  return subcommand({
    usage: `statuspage [ID] ${STATUSPAGE_STATUSES.join('|')} <message>`,
    access: 'responders',
    accessNote: 'responders only: it is a public statement',
    effect: 'write',
    summary: 'create or update the status page incident, with the message as its public text',
    matches: (w) => w === 'statuspage',
    parse(rest) {
      const split = splitIncidentId(rest);
      const [word = ''] = words(split.rest);
      const status = word.toLowerCase();
      if (status === '') throw badCommand(`Say the status: ${STATUSPAGE_STATUSES.join(', ')}.`);
      if (!isStatuspageStatus(status)) {
        throw badCommand(`Unknown status "${word}": use ${STATUSPAGE_STATUSES.join(', ')}.`);
      }
      const body = split.rest.slice(word.length).trim();
      if (body === '') throw badCommand('The status page update needs a message: it is what the public reads.');
      if (body.length > STATUS_BODY_MAX) {
        throw badCommand(`The message is ${body.length} characters; the limit is ${STATUS_BODY_MAX}.`);
      }
      return { number: split.number, status, body };
    },
    async run(args, ctx) {
      if (!deps.statusPage) throw new UserError('not_available', 'The status page is not available here.');
      const incident = await deps.statusPage.post(reference(args.number, ctx), ctx.userId, args.status, args.body);
      const id = incidentId(incident.number);
      const said = md`Status page ${bold(args.status)} for *${id}* is on its way; the result appears in its thread.`;
      return { ...line(said), incident: incident.number };
    },
  });
}

/** list, status, postmortem: reading incidents. */
function readingEntries(deps: IncidentDeps): Subcommand<unknown>[] {
  return [
    subcommand({
      usage: 'list',
      access: 'anyone',
      effect: 'read',
      summary: 'open incidents',
      matches: (w) => w === 'list',
      parse: (rest) => {
        if (rest !== '') throw badCommand(`Unexpected text "${rest}".`);
        return {};
      },
      run: async () => renderIncidentList(await deps.incidents.listOpen(), deps.file),
    }),
    subcommand({
      usage: 'status [ID]',
      access: 'anyone',
      effect: 'read',
      summary: 'one incident: state, who was paged, the latest timeline',
      matches: (w) => w === 'status',
      parse: onlyIncidentId,
      async run(args, ctx) {
        const details = await deps.incidents.details(reference(args.number, ctx));
        return { ...renderIncidentStatus(details, deps.file), incident: details.incident.number };
      },
    }),
    subcommand({
      usage: 'postmortem ID',
      access: 'anyone',
      effect: 'read',
      summary: 'a Markdown post-mortem draft with the timeline',
      matches: (w) => w === 'postmortem',
      parse(rest) {
        const { number } = onlyIncidentId(rest);
        if (number === undefined) throw badCommand('Name the incident, for example `INC-42`.');
        return { number };
      },
      async run(args) {
        const markdown = renderPostmortem(await deps.incidents.details({ number: args.number }), deps.file);
        const said = md`Post-mortem draft for ${incidentId(args.number)}:\n${codeBlock(markdown.split('\n'))}`;
        return { ...line(said), incident: args.number };
      },
    }),
  ];
}

export function incidentCommand(deps: IncidentDeps): SlashCommand {
  const command: SlashCommand = {
    name: '/incident',
    summary: 'declare and run incidents. `ID` (INC-42) may be left out when exactly one incident is open.',
    entries: [
      declareEntry(deps),
      ...responseEntries(deps),
      ...courseEntries(deps),
      statusPageEntry(deps),
      ...readingEntries(deps),
      subcommand({
        usage: 'help',
        access: 'anyone',
        effect: 'local',
        summary: 'this list',
        matches: (w) => w === 'help',
        parse: () => ({}),
        run: async () => line(md`${helpText(command)}`),
      }),
    ],
  };
  return command;
}
