// The process-wide winston logger: always on stderr, so stdout stays free for --json output.
import winston from 'winston';

/** Log levels accepted by --log-level. */
export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
/** One of LOG_LEVELS. */
export type LogLevel = (typeof LOG_LEVELS)[number];

const humanFormat = winston.format.printf(({ level, message }) => `volmerge ${level}: ${String(message)}`);

/** The shared logger; silent at 'warn' until configured. */
export const log = winston.createLogger({
  level: 'warn',
  transports: [new winston.transports.Console({ stderrLevels: [...LOG_LEVELS], format: humanFormat })],
});

/** Sets the level, and switches to JSON lines (for the agent) when asked. */
export function configureLog(level: LogLevel, json = false): void {
  log.level = level;
  const format = json ? winston.format.combine(winston.format.timestamp(), winston.format.json()) : humanFormat;
  for (const transport of log.transports) transport.format = format;
}
