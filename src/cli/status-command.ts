// `volmerge status --base PATH`: is this chain being merged, left unfinished by a crash, or in need of a person?
import type { Argv, ArgumentsCamelCase } from 'yargs';
import { defaultStateDir } from '../config.js';
import { asVolmergeError } from '../errors.js';
import { configureLog, LOG_LEVELS, type LogLevel } from '../log.js';
import type { ChainStatus } from '../jobs/status.js';

/** Options of `volmerge status`. */
export interface StatusArgs {
  base: string;
  json: boolean;
  stateDir: string;
  logLevel: LogLevel;
}

/** Declares the options of `volmerge status`. */
export function statusBuilder(yargs: Argv): Argv<StatusArgs> {
  return yargs
    .option('base', { type: 'string', demandOption: true, describe: 'The base volume of the chain' })
    .option('json', { type: 'boolean', default: false, describe: 'Print one JSON object (schemas/status.schema.json)' })
    .option('state-dir', { type: 'string', default: defaultStateDir(), describe: 'Folder of job journals (VOLMERGE_STATE_DIR)' })
    .option('log-level', { choices: LOG_LEVELS, default: 'warn' as LogLevel, describe: 'Logs go to stderr' })
    .example('$0 status --base /dev/vg0/base', 'Is a merge into this LV running, unfinished or stuck?') as unknown as Argv<StatusArgs>;
}

/** The status as a few lines for a person. */
export function describeStatus(status: ChainStatus): string {
  const headline = {
    idle: 'idle',
    merging: 'being merged',
    unfinished: 'an unfinished merge (a crash or a failure stopped it part-way)',
    'needs-attention': 'NEEDS ATTENTION',
  }[status.state];
  const lines = [`base ${status.base}: ${headline}`];
  const mark = status.mark;
  const markText = mark ? `mid-merge by job ${mark.jobId}${mark.since ? ` since ${mark.since}` : ''} (${mark.where})` : 'none';
  lines.push(`  mark:   ${mark?.stale !== undefined ? `STALE, passed over: ${markText}: ${mark.stale}` : markText}`);
  lines.push(`  lock:   ${status.lock ? `held by pid ${status.lock.pid}, job ${status.lock.jobId}, since ${status.lock.since}` : 'free'}`);
  if (status.job) {
    const live = status.job.kind === 'live' ? `, live through ${status.job.qmp ?? 'its VM'}` : '';
    lines.push(`  job:    ${status.job.jobId} (${status.job.state}, attempt ${status.job.attempt}${live}), top ${status.job.top}`);
    lines.push(`  steps:  ${status.job.steps.map((s) => `${s.name} ${s.status}`).join(', ')}`);
    if (status.job.error) lines.push(`  error:  ${status.job.error.code}: ${status.job.error.message}`);
  }
  if (status.problem) lines.push(`  problem: ${status.problem}`);
  lines.push(...describeStale(status.stale));
  lines.push(`  next:   ${status.advice}`);
  return lines.join('\n');
}

/** Stale journals, a few lines each: never used, and the command that clears each. */
export function describeStale(stale: ChainStatus['stale']): string[] {
  return stale.flatMap((job) => [
    `  stale:  job ${job.jobId} (${job.where}${job.top ? `, top ${job.top}` : ''}${job.createdAt ? `, begun ${job.createdAt}` : ''}): never used: ${job.reason}`,
    `          clear it: ${job.clear}`,
  ]);
}

/** Runs `volmerge status`; exit 0 when the status could be read (whatever it is), 1 when base cannot be resolved. */
export async function statusHandler(args: ArgumentsCamelCase<StatusArgs>): Promise<number> {
  configureLog(args.logLevel);
  const { chainStatus, staleJobsNaming } = await import('../jobs/status-facts.js');
  try {
    const status = await chainStatus(args.base, args.stateDir);
    console.log(args.json ? JSON.stringify(status) : describeStatus(status));
    return 0;
  } catch (thrown) {
    const error = asVolmergeError(thrown);
    // A base that is gone may have left journals behind: they are stale, and this is where an operator looks for them.
    const stale = error.code === 'not-found' ? await staleJobsNaming(args.base, args.stateDir) : [];
    if (args.json) console.log(JSON.stringify({ status: 'failed', error: { code: error.code, message: error.message }, ...(stale.length > 0 ? { stale } : {}) }));
    console.error(`volmerge: ${error.message}`);
    if (!args.json && stale.length > 0) console.error(describeStale(stale).join('\n'));
    return 1;
  }
}
