// `volmerge clear-stale --job ID`: removes a stale job's journal (its base is gone, or another volume has its place) and
// the marks it left on volumes that are gone; a journal that is not stale is refused with nothing changed.
import type { Argv, ArgumentsCamelCase } from 'yargs';
import { defaultStateDir } from '../config.js';
import { asVolmergeError } from '../errors.js';
import { configureLog, LOG_LEVELS, type LogLevel } from '../log.js';
import type { ClearedJob } from '../jobs/clear-stale.js';

/** Options of `volmerge clear-stale`. */
export interface ClearStaleArgs {
  job: string;
  base?: string;
  json: boolean;
  stateDir: string;
  logLevel: LogLevel;
}

/** Declares the options of `volmerge clear-stale`. */
export function clearStaleBuilder(yargs: Argv): Argv<ClearStaleArgs> {
  return yargs
    .option('job', { type: 'string', demandOption: true, describe: 'The stale job, as volmerge status names it (a job id, or a shared VG\'s job LV)' })
    .option('base', { type: 'string', describe: 'The base the job named, for a job kept in a shared VG (/dev/VG/LV)' })
    .option('json', { type: 'boolean', default: false, describe: 'Print one JSON object (schemas/clear-stale.schema.json)' })
    .option('state-dir', { type: 'string', default: defaultStateDir(), describe: 'Folder of job journals (VOLMERGE_STATE_DIR)' })
    .option('log-level', { choices: LOG_LEVELS, default: 'warn' as LogLevel, describe: 'Logs go to stderr' })
    .example('$0 clear-stale --job cli-4242-1764630000000', 'Remove the journal that volmerge status calls stale') as unknown as Argv<ClearStaleArgs>;
}

/** What was cleared, a few lines for a person. */
export function describeCleared(cleared: ClearedJob): string {
  const lines = [`cleared job ${cleared.jobId} (${cleared.where}): ${cleared.reason}`];
  if (cleared.finishedEarlierRun) lines.push('  (an earlier run had moved the journal away before it was cut short; this run finished it)');
  lines.push(`  marks taken off: ${cleared.marks.length > 0 ? cleared.marks.join(', ') : 'none'}`);
  for (const kept of cleared.kept) lines.push(`  mark kept: ${kept}`);
  return lines.join('\n');
}

/**
 * Runs `volmerge clear-stale`: 0 cleared, 1 refused or failed. The first Ctrl-C (or SIGTERM) stops it before the
 * journal is moved away (nothing changed); from that point on it finishes. A second one leaves at once: the same
 * command finishes what is left.
 */
export async function clearStaleHandler(args: ArgumentsCamelCase<ClearStaleArgs>): Promise<number> {
  configureLog(args.logLevel);
  const { clearStaleJob } = await import('../jobs/clear-stale.js');
  const interrupted = new AbortController();
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted.signal.aborted) {
      console.error(`volmerge: ${signal} again: leaving now; run the same command once more to finish what is left`);
      process.exit(1);
    }
    console.error(`volmerge: ${signal}: stopping before anything is cleared (or finishing, if the journal is already moved away)`);
    interrupted.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const cleared = await clearStaleJob({ job: args.job, stateDir: args.stateDir, signal: interrupted.signal, ...(args.base ? { base: args.base } : {}) });
    console.log(args.json ? JSON.stringify({ status: 'cleared', ...cleared }) : describeCleared(cleared));
    return 0;
  } catch (thrown) {
    const error = asVolmergeError(thrown);
    if (args.json) console.log(JSON.stringify({ status: 'failed', error: { code: error.code, message: error.message } }));
    console.error(`volmerge: ${error.message}`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
