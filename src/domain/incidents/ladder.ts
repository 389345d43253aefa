import type { EscalationStep, FileConfig, Severity } from '../../shared/config.js';

export interface PlannedStep {
  readonly stepIndex: number;
  readonly role: string;
  readonly afterMs: number;
}

/** The steps to schedule for an incident of this severity, relative to the moment its ladder starts. */
export function planLadder(file: Pick<FileConfig, 'escalation' | 'severities'>, severity: Severity): PlannedStep[] {
  if (!file.severities[severity].page) return [];
  return file.escalation.map((step: EscalationStep, stepIndex) => ({
    stepIndex,
    role: step.notify,
    afterMs: Math.round(step.after_minutes * 60_000),
  }));
}

export function pages(file: Pick<FileConfig, 'severities'>, severity: Severity): boolean {
  return file.severities[severity].page;
}

/** PagerDuty groups events by this key: one alert per incident and role, stable across restarts and replicas. */
export function dedupKey(incidentNumber: number, role: string): string {
  return `lifeline-INC-${incidentNumber}-${role}`;
}
