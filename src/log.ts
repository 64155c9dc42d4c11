// The process-wide logger: winston, always on stderr, so stdout stays free for --json output. winston itself is loaded
// only when a message passes the level (a quiet CLI merge never loads it: about 40 ms of start-up saved).
import { createRequire } from 'node:module';
import type { Logger } from 'winston';

/** Log levels accepted by --log-level. */
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
/** One of LOG_LEVELS. */
export type LogLevel = (typeof LOG_LEVELS)[number];

const require = createRequire(import.meta.url);
const rank: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

let level: LogLevel = 'warn';
let json = false;
let winstonLogger: Logger | undefined;

/** The winston logger, made on first use with the current level and format. */
function winstonNow(): Logger {
  if (winstonLogger) return winstonLogger;
  const winston = require('winston') as typeof import('winston');
  const human = winston.format.printf(({ level: name, message }) => `volmerge ${name}: ${String(message)}`);
  const format = json ? winston.format.combine(winston.format.timestamp(), winston.format.json()) : human;
  winstonLogger = winston.createLogger({ level, transports: [new winston.transports.Console({ stderrLevels: [...LOG_LEVELS], format })] });
  return winstonLogger;
}

/** Fields logged with a message (JSON lines carry them; the human format shows only the message). */
export type LogFields = Record<string, unknown>;

/** Writes one message when it passes the level (and the logger is not silenced). */
function write(at: LogLevel, message: string, fields?: LogFields): void {
  if (log.silent || rank[at] > rank[level]) return;
  winstonNow().log(at, message, fields ?? {});
}

/** The shared logger; 'warn' until configured; silent (tests) drops every message. */
export const log = {
  silent: false,
  error: (message: string, fields?: LogFields): void => write('error', message, fields),
  warn: (message: string, fields?: LogFields): void => write('warn', message, fields),
  info: (message: string, fields?: LogFields): void => write('info', message, fields),
  debug: (message: string, fields?: LogFields): void => write('debug', message, fields),
};

/** Sets the level, and switches to JSON lines (for the agent) when asked. */
export function configureLog(newLevel: LogLevel, asJson = false): void {
  level = newLevel;
  json = asJson;
  // A logger made before keeps its transports: rebuild it with the new format on its next use.
  winstonLogger?.close();
  winstonLogger = undefined;
}
