// The one PagerDuty call Lifeline makes, in its own words; the client turns it into an Events API v2 request.

export type PagerAction = 'trigger' | 'acknowledge' | 'resolve';
export type PagerSeverity = 'critical' | 'error' | 'warning' | 'info';

export interface PagerEvent {
  readonly routingKey: string;
  readonly action: PagerAction;
  readonly dedupKey: string;
  /** Required for trigger; ignored by PagerDuty for acknowledge/resolve. */
  readonly payload?: {
    readonly summary: string;
    readonly source: string;
    readonly severity: PagerSeverity;
    readonly customDetails?: Readonly<Record<string, string | number>>;
  };
}

/** The one PagerDuty call Lifeline makes: Events API v2 enqueue. */
export interface PagerPort {
  send(event: PagerEvent): Promise<void>;
}
