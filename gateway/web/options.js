/**
 * The client's options and their defaults (docs/CLIENT.md describes each):
 * one place for every default, imported by agentstream.js.
 */
import {RETRY_POLICY} from './session.js';

/** The gateway's default --heartbeat-ms (docs/GATEWAY.md "Flags"). */
export const DEFAULT_HEARTBEAT_MS = 15000;

/** Silence for this many heartbeat intervals means a dead connection. */
export const WATCHDOG_INTERVALS = 2.5;

/** The defaults of every option (docs/CLIENT.md describes each). */
export const DEFAULT_OPTIONS = Object.freeze({
  baseUrl: '',
  method: 'GET',
  transport: 'auto',
  token: undefined,
  specialists: [],
  runOptions: undefined,
  onDisconnect: undefined,
  types: undefined,
  batchMax: undefined,
  batchMs: undefined,
  compress: false,
  heartbeat: undefined,
  heartbeatMs: DEFAULT_HEARTBEAT_MS,
  watchdog: true,
  retry: RETRY_POLICY,
  maxGetUrlLength: 8000,
  cancelTimeoutMs: 5000,
  cancelGraceMs: 15000,
  EventSource: undefined,
  fetch: undefined,
  timers: undefined,
  random: Math.random,
});
