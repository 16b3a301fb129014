// Types of agentstream.js (docs/CLIENT.md), the gateway's wire
// (docs/GATEWAY.md "The wire") and the contract's updates
// (proto/agentstream/v1/update.proto, as common/update_json.h renders them).
// tests/e2e/web/agentstream_test.mjs keeps the update kinds here in step with
// the proto: one interface per `oneof kind` member, with each of its fields.

// ---------------------------------------------------------------------------
// The contract's updates

/** RunStatus, lower-case without its prefix. */
export type RunStatus =
    'unspecified'|'analyzing'|'delegating'|'synthesizing'|'complete'|'cancelled'|'failed';
/** Outcome, lower-case without its prefix. */
export type Outcome = 'unspecified'|'ok'|'failed'|'timed_out'|'cancelled'|'partial';
/** TimeoutAction, lower-case without its prefix. */
export type TimeoutAction = 'unspecified'|'continuing'|'abandoned';

/** A JSON value (google.protobuf.Struct / Value). */
export type JsonValue = null|boolean|number|string|JsonValue[]|{[key: string]: JsonValue};
export type JsonObject = {[key: string]: JsonValue};

/** Fields every update carries (the envelope). */
export interface UpdateEnvelope {
  request_id: string;
  /** 1-based, dense per run, assigned by the orchestrator. */
  seq: number;
  /** The specialist the update is about, where one applies. */
  specialist?: string;
  /** The replica that emitted it (host:port), where one applies. */
  instance?: string;
  /** The emitter's clock, nanoseconds since the Unix epoch (proto `emitted_at`). */
  emitted_at_ns: number;
}

export interface StatusUpdate extends UpdateEnvelope {
  type: 'status';
  status: RunStatus;
  message: string;
}

export interface SpecialistActivatedUpdate extends UpdateEnvelope {
  type: 'specialist_activated';
  task: string;
  icon: string;
  display_name: string;
}

export interface ProgressUpdate extends UpdateEnvelope {
  type: 'progress';
  /** 0..100. */
  progress: number;
  current_action: string;
}

export interface ThinkingUpdate extends UpdateEnvelope {
  type: 'thinking';
  /** A specialist's name or "Orchestrator". */
  agent: string;
  thought: string;
  visible: boolean;
}

export interface ToolCallUpdate extends UpdateEnvelope {
  type: 'tool_call';
  tool: string;
  /** For `data_query`: {sql, params}. */
  parameters: JsonObject;
}

export interface PartialResultUpdate extends UpdateEnvelope {
  type: 'partial_result';
  result: JsonObject;
}

export interface SynthesisUpdate extends UpdateEnvelope {
  type: 'synthesis';
  message: string;
  specialists_complete: string[];
  specialists_pending: string[];
}

export interface SpecialistCompleteUpdate extends UpdateEnvelope {
  type: 'specialist_complete';
  outcome: Outcome;
  duration_ms: number;
}

export interface CompleteUpdate extends UpdateEnvelope {
  type: 'complete';
  /** {answer, specialists: {name: result}, missing: [names]}. */
  result: JsonObject&{answer?: string; missing?: string[]; specialists?: JsonObject};
  outcome: Outcome;
}

export interface ErrorUpdate extends UpdateEnvelope {
  type: 'error';
  /** "unavailable", "internal", "gap", ... */
  code: string;
  message: string;
  retryable: boolean;
}

export interface TimeoutUpdate extends UpdateEnvelope {
  type: 'timeout';
  message: string;
  action: TimeoutAction;
}

/** One update of the run (a member of the proto's `oneof kind`). */
export type RunUpdate = StatusUpdate|SpecialistActivatedUpdate|ProgressUpdate|ThinkingUpdate|
    ToolCallUpdate|PartialResultUpdate|SynthesisUpdate|SpecialistCompleteUpdate|CompleteUpdate|
    ErrorUpdate|TimeoutUpdate;

export type UpdateType = RunUpdate['type'];

// ---------------------------------------------------------------------------
// The gateway's own events

/** First on every stream (`id: <rid>:0`, or `<rid>:N` on a resume after N). */
export interface ConnectedEvent {
  type: 'connected';
  status: 'connected'|'resumed';
  request_id: string;
  /** On a resume: the seq it follows. */
  after_seq?: number;
}

/** Last, only after a final outcome; never an id. */
export interface DoneEvent {
  type: 'done';
  status: 'complete'|'cancelled'|'failed';
  request_id: string;
}

/** The gateway's own `event: error` (no id, no seq). */
export interface GatewayErrorEvent {
  type: 'error';
  request_id: string;
  /** `slow_consumer` and retryable `unavailable`: the stream resumes; `gap`: ask again. */
  code: string;
  message: string;
  retryable: boolean;
  source: 'gateway';
}

/** With `heartbeat=event`: `event: heartbeat` (never an id). */
export interface HeartbeatEvent {
  type: 'heartbeat';
  request_id: string;
}

/** `event: batch` (batch_max / batch_ms): its id is the last seq inside. */
export interface BatchEvent {
  type: 'batch';
  request_id: string;
  updates: Array<RunUpdate|CompressedUpdate>;
}

/** compress=1: an update whose JSON is large, gzipped and base64'd; the envelope stays readable. */
export interface CompressedUpdate {
  type: UpdateType;
  seq: number;
  request_id?: string;
  compressed: true;
  encoding: 'gzip';
  /** base64 of the gzipped JSON of the whole update. */
  data: string;
}

/** What a consumer receives (after batches are split and payloads inflated). */
export type StreamUpdate = RunUpdate|ConnectedEvent|DoneEvent|GatewayErrorEvent;

/** Every kind, by its `type`, for typed handlers. */
export interface UpdateByType {
  status: StatusUpdate;
  specialist_activated: SpecialistActivatedUpdate;
  progress: ProgressUpdate;
  thinking: ThinkingUpdate;
  tool_call: ToolCallUpdate;
  partial_result: PartialResultUpdate;
  synthesis: SynthesisUpdate;
  specialist_complete: SpecialistCompleteUpdate;
  complete: CompleteUpdate;
  error: ErrorUpdate|GatewayErrorEvent;
  timeout: TimeoutUpdate;
  connected: ConnectedEvent;
  done: DoneEvent;
  heartbeat: HeartbeatEvent;
}

// ---------------------------------------------------------------------------
// The reducer's state (reducer.js)

export interface Thought {
  text: string;
  visible: boolean;
  seq: number|null;
}
export interface ToolCallEntry {
  tool: string;
  sql: string|null;
  params: JsonValue|null;
  parameters: JsonObject;
  seq: number|null;
}
export interface RunError {
  code: string;
  message: string;
  specialist: string|null;
  retryable: boolean;
  seq: number|null;
}
export interface RunTimeout {
  message: string;
  action: string;
  specialist: string|null;
  seq: number|null;
}
export interface SpecialistState {
  name: string;
  displayName: string;
  icon: string;
  task: string;
  activated: boolean;
  progress: number;
  currentAction: string;
  thoughts: Thought[];
  toolCalls: ToolCallEntry[];
  partials: Array<{key: string; titleField: string|null; seq: number|null; result: JsonObject}>;
  outcome: string|null;
  durationMs: number|null;
  errors: RunError[];
  timeouts: RunTimeout[];
  instance: string|null;
}
export interface RunState {
  question: string;
  requestId: string|null;
  connection: 'idle'|'connecting'|'open'|'reconnecting'|'closed'|'error';
  status: 'idle'|'analyzing'|'delegating'|'synthesizing'|'complete'|'cancelled'|'failed';
  statusMessage: string;
  phases: {[phase: string]: {seq: number|null; message: string}};
  orchestratorThoughts: Thought[];
  specialists: {[name: string]: SpecialistState};
  order: string[];
  /** name -> every partial_result of that specialist merged. */
  results: {[name: string]: JsonObject};
  synthesis: {message: string; complete: string[]; pending: string[]}|null;
  answer: string|null;
  finalResult: JsonObject|null;
  outcome: string|null;
  missing: string[];
  errors: RunError[];
  timeouts: RunTimeout[];
  done: {status: string}|null;
  stopped: {cancelled: boolean; note: string}|null;
  notice: {code: string; message: string}|null;
  retry: {attempt: number; delayMs: number}|null;
  resumes: number;
  gap: {message: string}|null;
  cancel: {state: string; note: string}|null;
  lastSeq: number;
  eventCount: number;
  log: Array<{seq: number|null; type: string; specialist: string|null; emittedAtNs: number|null; data: JsonObject}>;
  logDropped: number;
}

/** The client's own events the reducer also folds in. */
export type ClientEvent =|{type: 'reset'; question: string}|
    {type: 'transport_error'; fatal?: boolean; message?: string}|
    {type: 'retry_scheduled'; attempt: number; delayMs: number}|{type: 'cancel_requested'}|
    {type: 'cancel_result'; outcome: CancelOutcome; note: string}|
    {type: 'stopped'; cancelled: boolean; note: string};

export function initialState(): RunState;
export function reduce(state: RunState, update: StreamUpdate|ClientEvent|JsonObject): RunState;

// ---------------------------------------------------------------------------
// The library

export type StreamStatus = 'connecting'|'open'|'reconnecting'|'closed'|'failed';
export interface StatusDetail {
  attempt?: number;
  delayMs?: number;
  /**
   * Why it reconnects: 'transport' | 'network' | 'eof' | 'http' | 'watchdog' |
   * an error code; why it failed: 'unauthorized' (a 401, never retried).
   */
  reason?: string;
  httpStatus?: number|null;
  resumed?: boolean;
  done?: string;
  stopped?: boolean;
  message?: string;
  /** With reason 'unauthorized': the WWW-Authenticate challenge. */
  challenge?: AuthChallenge;
  /** With reason 'unauthorized': whether the refused request carried a token. */
  sentToken?: boolean;
}

export interface RetryPolicy {
  initialMs: number;
  maxMs: number;
  maxAttempts: number;
  /** 0.2: +-20 %. */
  jitter: number;
}

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
}

export type EventSourceLike = {
  new (url: string, init?: {withCredentials?: boolean}): {
    readonly readyState: number;
    addEventListener(type: string, fn: (event: {data?: string; lastEventId?: string}) => void): void;
    close(): void;
  };
};

export type Handlers = {[T in keyof UpdateByType]?: (update: UpdateByType[T]) => void};

export interface StreamOptions {
  /** Prefix of every URL ('' : relative to the page). */
  baseUrl?: string;
  /** 'POST' sends the question in a JSON body through fetch. */
  method?: 'GET'|'POST';
  /** 'auto': EventSource for GET when there is one; 'fetch': fetch always. */
  transport?: 'auto'|'eventsource'|'fetch';
  /**
   * Sent as `Authorization: Bearer <token>` on every request (streams,
   * resumes, cancel); a function is asked before each request ('' or null:
   * none). With a token, streams go through fetch. Never put in a URL.
   */
  token?: TokenSource;
  /** Force these specialists. */
  specialists?: string[];
  /** Passed to the specialists (the gateway's `options`). */
  runOptions?: JsonObject;
  onDisconnect?: 'grace'|'cancel'|'continue';
  /** Only these kinds (connected, done, error and timeout always come). */
  types?: UpdateType[];
  batchMax?: number;
  batchMs?: number;
  compress?: boolean;
  /** 'event' asks for heartbeat events (the default with EventSource and the watchdog on). */
  heartbeat?: 'event'|'comment';
  /** The gateway's --heartbeat-ms; the watchdog fires after 2.5 of them. Default 15000. */
  heartbeatMs?: number;
  /** Default true. */
  watchdog?: boolean;
  retry?: Partial<RetryPolicy>;
  /** A GET URL longer than this is sent as a POST. Default 8000. */
  maxGetUrlLength?: number;
  cancelTimeoutMs?: number;
  cancelGraceMs?: number;
  EventSource?: EventSourceLike;
  fetch?: typeof fetch;
  timers?: Timers;
  random?: () => number;
  on?: Handlers;
  onUpdate?: (update: StreamUpdate) => void;
  onState?: (state: RunState, update: StreamUpdate|ClientEvent) => void;
  onStatus?: (status: StreamStatus, detail: StatusDetail) => void;
  onError?: (error: unknown, detail: JsonObject) => void;
}

export interface AttachOptions extends Omit<StreamOptions, 'method'|'specialists'|'runOptions'|'onDisconnect'> {
  /** Follow from after this seq (0: from the start). */
  after?: number;
}

export type CancelOutcome = 'accepted'|'ended'|'unknown'|'unauthorized'|'failed';

/** The `token` option: a token, or a function returning the current one. */
export type TokenSource = string|null|(() => string | null | Promise<string|null>);

/** A `WWW-Authenticate: Bearer` challenge's parameters ('' when absent). */
export interface AuthChallenge {
  error: string;
  description: string;
}

/** A non-200 answer to fetchSpecialists(). */
export class HttpError extends Error {
  readonly status: number;
  /** 'unauthorized' for a 401, else 'http'. */
  readonly reason: 'unauthorized'|'http';
  readonly challenge: AuthChallenge;
  /** Whether the request carried a token. */
  readonly sentToken: boolean;
}

/** `GET api/specialists` with the bearer token; rejects with HttpError (or fetch's error). */
export function fetchSpecialists(options?: {baseUrl?: string; token?: TokenSource; fetch?: typeof fetch}):
    Promise<unknown>;

/** `WWW-Authenticate` -> {error, description}. */
export function parseChallenge(header: string|null|undefined): AuthChallenge;

/** What startRun() and attach() return (construct it through them). */
export class AgentStream {
  constructor(target: {question?: string; runId?: string; after?: number}, options?: StreamOptions);
  readonly state: RunState;
  readonly status: StreamStatus;
  readonly requestId: string|null;
  /** The highest seq delivered (the resume point). */
  readonly lastSeq: number;
  /** Updates dropped as repeats so far. */
  readonly duplicates: number;
  /** Reconnects made so far. */
  readonly reconnects: number;
  /** Resolves once the stream is closed or failed. */
  readonly finished: Promise<{status: 'closed'|'failed'; state: RunState; detail: StatusDetail}>;
  on<T extends keyof UpdateByType>(type: T, fn: (update: UpdateByType[T]) => void): () => void;
  onUpdate(fn: (update: StreamUpdate) => void): () => void;
  onState(fn: (state: RunState, update: StreamUpdate|ClientEvent) => void): () => void;
  onStatus(fn: (status: StreamStatus, detail: StatusDetail) => void): () => void;
  onError(fn: (error: unknown, detail: JsonObject) => void): () => void;
  close(note?: string): void;
  cancel(): Promise<{outcome: CancelOutcome; note: string; status: number|null}>;
}

export function startRun(question: string, options?: StreamOptions): AgentStream;
export function attach(runId: string, options?: AttachOptions): AgentStream;

export const UPDATE_TYPES: readonly UpdateType[];
export const ALWAYS_SENT_TYPES: readonly ['connected', 'done', 'error', 'timeout'];
export const DEFAULT_HEARTBEAT_MS: number;
export const WATCHDOG_INTERVALS: number;
export const RETRY_POLICY: Readonly<RetryPolicy>;
export const DEFAULT_OPTIONS: Readonly<StreamOptions>;

/** `<request_id>:<seq>` -> parts, or null. */
export function parseEventId(id: string|null|undefined): {requestId: string; seq: number}|null;

export interface SseEvent {
  type: string;
  data: string;
  lastEventId: string;
  id: string|null;
}
export class SseParser {
  constructor(callbacks?: {
    onEvent?: (event: SseEvent) => void;
    onComment?: (text: string) => void;
    onRetry?: (ms: number) => void;
  });
  push(text: string): void;
  end(): void;
}
export function parseSse(text: string):
    Array<({kind: 'event'}&SseEvent)|{kind: 'comment'; text: string}|{kind: 'retry'; ms: number}>;

export interface MockOptions {
  /** Play speed: 10 plays ten times faster. Default 1. */
  speed?: number;
  /** Between events of a recording without timestamps. Default 100. */
  intervalMs?: number;
  timers?: Timers;
  /** The i-th instance stops after cuts[i] events (a dropped connection). */
  cuts?: number[];
}
export class MockEventSource {
  static readonly CONNECTING: 0;
  static readonly OPEN: 1;
  static readonly CLOSED: 2;
  /** A class that plays `recording` (a stream's text as `curl -N` saves it). */
  static from(recording: string, options?: MockOptions): typeof MockEventSource&{
    /** Every instance, in creation order. */
    opened: MockEventSource[];
  };
  constructor(url: string, init?: MockOptions&{recording?: string; cut?: number; withCredentials?: boolean});
  readonly url: string;
  readonly readyState: 0|1|2;
  readonly withCredentials: boolean;
  onopen: ((event: {type: string}) => void)|null;
  onmessage: ((event: {type: string; data: string; lastEventId: string}) => void)|null;
  onerror: ((event: {type: string}) => void)|null;
  addEventListener(type: string, fn: (event: {type: string; data?: string; lastEventId?: string}) => void): void;
  removeEventListener(type: string, fn: (...args: unknown[]) => void): void;
  dispatchEvent(event: {type: string; data?: string; lastEventId?: string}): boolean;
  close(): void;
}
export function parseRecording(text: string): {
  events: Array<{type: string; data: string; id: string|null; seq: number|null; atMs: number|null}>;
  requestId: string|null;
  timed: boolean;
};
