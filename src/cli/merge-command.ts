// `volmerge merge`: the operator's command; prints a plan, a progress bar and the verified result, or one JSON object.
import type { Argv, ArgumentsCamelCase } from 'yargs';
import { asVolmergeError, VolmergeError } from '../errors.js';
import { configureLog, log, LOG_LEVELS, type LogLevel } from '../log.js';
import type { MergePlan } from '../merge/plan.js';
import { ProgressBar, ProgressLog } from './progress-bar.js';
import { describePlan } from './format.js';
import { defaultStateDir } from '../config.js';

/** Options of `volmerge merge`. */
export interface MergeArgs {
  top: string;
  base: string;
  dryRun: boolean;
  json: boolean;
  logLevel: LogLevel;
  leafRoom: number;
  stateDir: string;
  rateLimit?: number;
  child?: string;
  removeTop: boolean;
  shrink: boolean;
  dropBitmaps: boolean;
  qmp?: string;
}

/** Declares the options of `volmerge merge`. */
export function mergeBuilder(yargs: Argv): Argv<MergeArgs> {
  return yargs
    .option('top', { type: 'string', demandOption: true, describe: 'The volume to merge down: a qcow2 file, block device or LV (/dev/VG/LV)' })
    .option('base', { type: 'string', demandOption: true, describe: "top's backing volume, which receives top's data and bitmaps" })
    .option('dry-run', { type: 'boolean', default: false, describe: 'Inspect and print the plan; change nothing' })
    .option('json', { type: 'boolean', default: false, describe: 'Print exactly one JSON object on stdout (status, plan, error)' })
    .option('log-level', { choices: LOG_LEVELS, default: 'warn' as LogLevel, describe: 'Logs go to stderr' })
    .option('leaf-room', { type: 'number', default: 0, describe: 'Extra bytes of free room to leave in an extended LV (a live merge leaves at least 256 MiB for the VM\'s writes)' })
    .option('state-dir', { type: 'string', default: defaultStateDir(), describe: 'Folder of job journals and bitmap backups (VOLMERGE_STATE_DIR)' })
    .option('rate-limit', { type: 'number', describe: "Limit the commit to this many bytes per second (qemu-img commit -r; with --qmp, the block job's speed)" })
    .option('child', { type: 'string', describe: "Internal merge: top's child, rebased onto base once the merge is verified (top is then retired)" })
    .option('remove-top', { type: 'boolean', default: false, describe: 'Remove top (lvremove or unlink) once the merge is verified and nothing is backed by it' })
    .option('shrink', { type: 'boolean', default: false, describe: 'Shrink a base LV to what the merged image uses (qemu-img check image-end-offset), in whole extents' })
    .option('drop-bitmaps', {
      type: 'boolean',
      default: false,
      describe: "Do not carry top's bitmaps that base lacks (base's own are still merged); needed when base is raw and top has bitmaps. The next backup of the disk must be a full one",
    })
    .option('qmp', {
      type: 'string',
      describe:
        "Merge live: the QMP monitor socket of the VM that runs the chain (block-commit inside the VM; top and base as the VM opened them; no other client may hold the socket). Refuses --child, --remove-top, --shrink and --drop-bitmaps",
    })
    .check((args) => {
      if (!args.top || !args.base) throw new Error('--top and --base must not be empty');
      if (args.child !== undefined && (typeof args.child !== 'string' || !args.child)) throw new Error('--child must name a volume');
      if (args.qmp !== undefined && (typeof args.qmp !== 'string' || !args.qmp)) throw new Error('--qmp must name the VM\'s QMP socket');
      const leafRoom = args['leaf-room'];
      if (typeof leafRoom !== 'number' || !Number.isInteger(leafRoom) || leafRoom < 0) throw new Error('--leaf-room must be a whole number of bytes, 0 or more');
      const rate = args['rate-limit'];
      if (rate !== undefined && (typeof rate !== 'number' || !Number.isInteger(rate) || rate < 1)) throw new Error('--rate-limit must be a whole number of bytes per second, 1 or more');
      return true;
    })
    .example('$0 merge --top /dev/vg0/snap1 --base /dev/vg0/base --dry-run', 'Show what a merge of two LVs would do')
    .example('$0 merge --top top.qcow2 --base base.qcow2 --json', 'Merge two files; one JSON result on stdout')
    .example('$0 merge --top /dev/vg0/snap1 --base /dev/vg0/prealloc --drop-bitmaps', "Merge into a raw (preallocated) base, dropping top's bitmaps, which raw cannot hold")
    .example('$0 merge --top /dev/vg0/snap1 --base /dev/vg0/base --qmp /run/vm1.qmp', 'Merge live, while the VM that runs the chain keeps running')
    .example('$0 merge --top /dev/vg0/snap1 --base /dev/vg0/base --child /dev/vg0/snap2 --remove-top --shrink', 'Internal merge: snap2 ends up backed by base, snap1 removed, base shrunk') as unknown as Argv<MergeArgs>;
}

/** What an operator reads after a live merge. */
function describeLiveDone(top: string, base: string, active: boolean, carried: readonly string[]): string {
  const chain = active ? `the VM writes to ${base} now` : `the volume above ${top} is backed by ${base} now`;
  return `done (live): ${base} holds top's data and ${chain}; bitmaps ${carried.join(', ') || '(none)'} carried, persistent and enabled in the VM; ${top} is closed in the VM and no longer used`;
}

/** Runs `volmerge merge` and returns the process exit code (0 merged or planned, 1 refused or failed, 2 usage). */
export async function mergeHandler(args: ArgumentsCamelCase<MergeArgs>): Promise<number> {
  configureLog(args.logLevel);
  const { runMergeJob } = await import('../jobs/run-merge.js');
  const { planSummary } = await import('./plan-summary.js');
  const bar = new ProgressBar();
  const progressLog = new ProgressLog((percent) => log.info(`commit: ${percent}%`));
  let plan: MergePlan | undefined;
  const started = Date.now();
  try {
    const outcome = await runMergeJob({
      jobId: `cli-${process.pid}-${Date.now()}`,
      stateDir: args.stateDir,
      top: args.top,
      base: args.base,
      dryRun: args.dryRun,
      leafRoom: args.leafRoom,
      ...(args.rateLimit ? { rateLimit: args.rateLimit } : {}),
      ...(args.child ? { child: args.child } : {}),
      ...(args.removeTop ? { removeTop: true } : {}),
      ...(args.shrink ? { shrink: true } : {}),
      ...(args.dropBitmaps ? { dropBitmaps: true } : {}),
      ...(args.qmp ? { qmp: args.qmp } : {}),
      onPlan: (p) => {
        plan = p;
        if (!args.json) console.log(describePlan(p));
      },
      onStep: (step) => log.info(`step: ${step}`),
      onProgress: (percent) => {
        bar.update(percent, 'commit');
        if (!bar.enabled) progressLog.report(percent);
      },
    });
    bar.finish();
    if (args.json) {
      const used = outcome.status === 'done' ? { usedSize: outcome.usedSize ?? null } : {};
      console.log(JSON.stringify({ status: outcome.status, plan: planSummary(outcome.plan), ...used, elapsedMs: Date.now() - started }));
    } else if (outcome.status === 'planned') {
      if (outcome.resumed) console.log(`an unfinished merge of this chain (job ${outcome.resumed.jobId}) would be finished from step ${outcome.resumed.fromStep}`);
      console.log('dry run: nothing was changed');
    } else {
      if (outcome.resumed) console.log(`finished the merge that job ${outcome.resumed.jobId} had left at step ${outcome.resumed.fromStep}`);
      if (outcome.live) console.log(describeLiveDone(args.top, args.base, outcome.live.active, outcome.plan.bitmaps.merge));
      else console.log(`done: ${args.base} holds top's data; bitmaps verified (${outcome.plan.bitmaps.merge.join(', ') || 'none'}), none in-use`);
      const dropped = outcome.plan.bitmaps.drop ?? [];
      if (dropped.length > 0) console.log(`dropped top's bitmaps ${dropped.join(', ')} as asked: the next backup of this disk must be a full one`);
      if (typeof outcome.usedSize === 'number') console.log(`base's image ends at ${outcome.usedSize} bytes (${outcome.plan.neededSize} planned)`);
      const end = outcome.plan.finalize;
      if (end?.child) console.log(`child ${end.child.path} is backed by base now (${end.child.backingAfter})`);
      if (end?.removeTop) console.log(`top ${args.top} removed`);
      else if (end?.retireTop) console.log(`top ${args.top} is marked not to be used (retired)`);
      if (end?.shrink?.planned) console.log(`base shrunk to what it uses (whole extents${end.shrink.leafRoom ? `, plus ${end.shrink.leafRoom} bytes of leaf room` : ''})`);
    }
    return 0;
  } catch (thrown) {
    bar.finish();
    const error = asVolmergeError(thrown);
    if (error.code === 'internal') log.debug(thrown instanceof Error ? (thrown.stack ?? '') : String(thrown));
    if (error.details.stderr) log.debug(`command output: ${error.details.stderr.trim()}`);
    if (args.json) {
      console.log(
        JSON.stringify({
          status: 'failed',
          plan: plan ? planSummary(plan) : null,
          error: { code: error.code, message: error.message },
          elapsedMs: Date.now() - started,
        }),
      );
    }
    console.error(`volmerge: ${error.message}`);
    return error instanceof VolmergeError && error.code === 'usage' ? 2 : 1;
  }
}
