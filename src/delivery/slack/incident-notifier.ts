import type { ChatPort } from '../../adapters/slack/port.js';
import type { FileConfig } from '../../shared/config.js';
import type { IncidentNotifier } from '../../domain/incidents/notifier.js';
import { incidentCard, threadNoteMessage } from './incident-card.js';

export function createSlackIncidentNotifier(chat: ChatPort, file: FileConfig): IncidentNotifier {
  return {
    announce: (incident) => chat.post(file.slack.emergency_channel, incidentCard(incident, file)),
    async refresh(incident) {
      if (incident.card) await chat.update(incident.card, incidentCard(incident, file));
    },
    async threadNote(incident, note) {
      // Without a card (its post failed) the note still reaches the channel, just not threaded.
      const channel = incident.card?.channel ?? file.slack.emergency_channel;
      await chat.post(channel, threadNoteMessage(incident, note), incident.card?.ts);
    },
  };
}
