// The command tables with nothing behind them, for help where Lifeline is not (the `lifeline` CLI with no settings).
// Building a table reads none of its dependencies; only parsing and running do. Help and the other `local` entries
// need neither, so anything else reaching a dependency here is a bug, and it says so.
import type { Db } from '../../shared/db/pool.js';
import type { FileConfig } from '../../shared/config.js';
import type { IncidentService } from '../../domain/incidents/service.js';
import type { RecoveryService } from '../../domain/recovery/service.js';
import type { RunbookService } from '../../domain/runbooks/service.js';
import { drCommand, type DrDeps, type TokenIssuer } from './dr.js';
import { incidentCommand } from './incident.js';
import type { SlashCommand } from './registry.js';

function unavailable(what: string): never {
  throw new Error(`${what} is not available here: these command tables are for help only`);
}

export function helpTables(): { readonly incident: SlashCommand; readonly dr: SlashCommand } {
  const incident = incidentCommand({
    get incidents(): IncidentService {
      return unavailable('the incident service');
    },
    get file(): FileConfig {
      return unavailable('the config');
    },
  });
  const dr = drCommand({
    get db(): Db {
      return unavailable('the database');
    },
    get file(): FileConfig {
      return unavailable('the config');
    },
    get recovery(): RecoveryService {
      return unavailable('the recovery service');
    },
    get query(): DrDeps['query'] {
      return unavailable('the lookups');
    },
    get tokens(): TokenIssuer {
      return unavailable('the API tokens');
    },
    get runbooks(): RunbookService {
      return unavailable('the runbooks');
    },
  });
  return { incident, dr };
}
