// Types of useAgentStream.js, the React hook of the agentstream client
// library (docs/CLIENT.md, "React hook"). The run's state, updates and
// stream options are the library's (../agentstream.d.ts).

import type {CancelOutcome, RunState, StreamOptions, StreamUpdate} from '../agentstream';

/** The hook's status. */
export type HookStatus =
    'idle'|'connecting'|'streaming'|'reconnecting'|'done'|'error'|'cancelled';

export interface UseAgentStreamOptions extends StreamOptions {
  /** How many updates `updates` keeps, the oldest dropped (default 500). */
  maxUpdates?: number;
  /** Follow this run instead of starting one (the first argument is then ignored). */
  runId?: string;
  /** With a run id: follow after this seq (0, the default: from the start). */
  after?: number;
  /** A new value starts the same question (or run) again. */
  restartKey?: string|number;
}

/** The first argument: a question, a run to follow, or nothing (idle). */
export type QuestionOrRun = string|{runId: string; after?: number}|null|undefined;

export interface AgentStreamHook {
  /** The library reducer's state (a new object on every change). */
  state: RunState;
  status: HookStatus;
  /** The last `maxUpdates` updates delivered, in order (no heartbeats). */
  updates: readonly StreamUpdate[];
  /** How many updates were dropped from `updates` to keep it bounded. */
  updatesDropped: number;
  /** The run's id once known. */
  requestId: string|null;
  /** DELETE /api/runs/{id} (the stream then brings the cancelled ending). */
  cancel(): Promise<{outcome: CancelOutcome; note: string; status: number|null}>;
  /** Stops following the run (the run goes on for its grace period). */
  close(): void;
}

export function useAgentStream(questionOrRunId: QuestionOrRun,
                               options?: UseAgentStreamOptions): AgentStreamHook;

export const HOOK_DEFAULTS: Readonly<{maxUpdates: number}>;
export const HOOK_STATUSES: readonly HookStatus[];
