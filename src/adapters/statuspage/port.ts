// The two Atlassian Statuspage calls Lifeline makes, in its own words; the client turns them into REST requests.

export const STATUSPAGE_STATUSES = ['investigating', 'identified', 'monitoring', 'resolved'] as const;
export type StatuspageStatus = (typeof STATUSPAGE_STATUSES)[number];

export const COMPONENT_STATUSES = [
  'operational',
  'degraded_performance',
  'partial_outage',
  'major_outage',
  'under_maintenance',
] as const;
export type ComponentStatus = (typeof COMPONENT_STATUSES)[number];

/** A status page incident as Statuspage answers it: its id, its public link and its status. */
export interface StatuspageIncident {
  readonly id: string;
  readonly shortlink: string | undefined;
  readonly status: StatuspageStatus;
}

export interface NewStatuspageIncident {
  readonly name: string;
  readonly status: StatuspageStatus;
  readonly body: string;
  /** Component id → the status to set it to. */
  readonly components: Readonly<Record<string, ComponentStatus>>;
}

export interface StatuspageChange {
  readonly status: StatuspageStatus;
  readonly body: string;
  /** Left out: the components stay as they are. */
  readonly components?: Readonly<Record<string, ComponentStatus>>;
}

/**
 * The calls Lifeline makes on its one page. A call that may succeed later (network, timeout, 429, 5xx) throws a
 * TransientError; a refusal (401, 404, 422) a PermanentError.
 */
export interface StatuspagePort {
  createIncident(incident: NewStatuspageIncident): Promise<StatuspageIncident>;
  updateIncident(id: string, change: StatuspageChange): Promise<StatuspageIncident>;
}
