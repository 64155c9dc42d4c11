// `volmerge merge`: the operator's command; prints a plan, a progress bar and the verified result, or one JSON object.
import type { Argv, ArgumentsCamelCase } from 'yargs';
import { asVolmergeError, VolmergeError } from '../errors.js';
import { configureLog, log, LOG_LEVELS, type LogLevel } from '../log.js';
import type { MergePlan } from '../merge/plan.js';
import { ProgressBar, ProgressLog } from './progress-bar.js';
import { describePlan } from './format.js';
import { defaultStateDir } from '../config.js';
import { endBySignal, Interrupts, STOP_SIGNALS, type StopSignal } from './interrupts.js';
import { doneLines, errorJson, outcomeJson, type InterruptSummary } from './merge-output.js';

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
  dropInconsistent: boolean;
  qmp?: string;
  domain?: string;
  connect?: string;
}

/** Declares the options of `volmerge merge`. */
export function mergeBuilder(yargs: Argv): Argv<MergeArgs> {
  return yargs
    .option('top', { type: 'string', demandOption: true, describe: 'The volume to merge down: a qcow2 file, block device or LV (/dev/VG/LV)' })
    .option('base', { type: 'string', demandOption: true, describe: "top's backing volume, which receives top's data and bitmaps" })
    .option('dry-run', { type: 'boolean', default: false, describe: 'Inspect and print the plan; change nothing' })
    .option('json', { type: 'boolean', default: false, describe: 'Print exactly one JSON object on stdout (status, plan, error, interrupted)' })
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
    .option('drop-inconsistent', {
      type: 'boolean',
      default: false,
      describe:
        'Remove bitmaps found in-use (inconsistent, as a VM killed or crashed leaves them) from top and base, and merge the rest; ' +
        'without it such a chain is refused. The result names them: the next backup of each must be a full one',
    })
    .option('qmp', {
      type: 'string',
      describe:
        "Merge live: the QMP monitor socket of the VM that runs the chain (block-commit inside the VM; top and base as the VM opened them; no other client may hold the socket). Refuses --child, --remove-top, --shrink and --drop-bitmaps",
    })
    .option('domain', {
      type: 'string',
      describe: "Merge live through libvirt: the domain (name or UUID) whose disk runs the chain (virsh blockcommit; top and base as the domain's live XML names them)",
    })
    .option('connect', { type: 'string', describe: "libvirt's connection URI for --domain (virsh -c; libvirt's default, qemu:///system as root, when absent)" })
    .check((args) => {
      if (!args.top || !args.base) throw new Error('--top and --base must not be empty');
      if (args.child !== undefined && (typeof args.child !== 'string' || !args.child)) throw new Error('--child must name a volume');
      if (args.qmp !== undefined && (typeof args.qmp !== 'string' || !args.qmp)) throw new Error('--qmp must name the VM\'s QMP socket');
      if (args.domain !== undefined && (typeof args.domain !== 'string' || !args.domain)) throw new Error('--domain must name a libvirt domain (name or UUID)');
      if (args.connect !== undefined && (typeof args.connect !== 'string' || !args.connect)) throw new Error('--connect must be a libvirt URI');
      if (args.connect !== undefined && args.domain === undefined) throw new Error('--connect goes with --domain');
      if (args.domain !== undefined && args.qmp !== undefined) throw new Error('--domain and --qmp are two ways into a running VM: give one');
      if (args.domain !== undefined && args['drop-inconsistent'] === true) {
        throw new Error('--drop-inconsistent is for a cold merge or --qmp; through libvirt, stop the domain and merge cold with --drop-inconsistent');
      }
      const leafRoom = args['leaf-room'];
      if (typeof leafRoom !== 'number' || !Number.isInteger(leafRoom) || leafRoom < 0) throw new Error('--leaf-room must be a whole number of bytes, 0 or more');
      const rate = args['rate-limit'];
      if (rate !== undefined && (typeof rate !== 'number' || !Number.isInteger(rate) || rate < 1)) throw new Error('--rate-limit must be a whole number of bytes per second, 1 or more');
      return true;
    })
    .example('$0 merge --top /dev/vg0/snap1 --base /dev/vg0/base --dry-run', 'Show what a merge of two LVs would do')
    .example('$0 merge --top top.qcow2 --base base.qcow2 --json', 'Merge two files; one JSON result on stdout')
    .example('$0 merge --top /dev/vg0/snap1 --base /dev/vg0/prealloc --drop-bitmaps', "Merge into a raw (preallocated) base, dropping top's bitmaps, which raw cannot hold")
    .example('$0 merge --top top.qcow2 --base base.qcow2 --drop-inconsistent', 'Merge a chain whose VM was killed: its in-use bitmaps are dropped, the others kept')
    .example('$0 merge --top /dev/vg0/snap1 --base /dev/vg0/base --qmp /run/vm1.qmp', 'Merge live, while the VM that runs the chain keeps running')
    .example('$0 merge --top /var/lib/libvirt/images/vm1.snap1 --base /var/lib/libvirt/images/vm1.qcow2 --domain vm1', 'Merge live through libvirt, while domain vm1 keeps running')
    .example('$0 merge --top /dev/vg0/snap1 --base /dev/vg0/base --child /dev/vg0/snap2 --remove-top --shrink', 'Internal merge: snap2 ends up backed by base, snap1 removed, base shrunk')
    .epilogue(
      'Ctrl-C or SIGTERM stops the merge where it is safe and says where the chain stands: a cold merge stops before its next step ' +
        '(its running qemu-storage-daemon or qemu-img at once; the same command finishes it), a live merge cancels its block job before the pivot and is ' +
        'finished once the pivot has started. A second Ctrl-C leaves at once, naming what may be left. Exit codes: 0 merged or planned, ' +
        '1 refused or failed, 2 usage error; a merge stopped by a signal ends by it (the shell shows 130 or 143).',
    ) as unknown as Argv<MergeArgs>;
}

/** The command line as typed, for "run the same command again" (quoted where a shell would need it). */
function sameCommand(): string {
  const quote = (arg: string): string => (/^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`);
  return ['volmerge', ...process.argv.slice(2)].map(quote).join(' ');
}

/** Where the chain stands after the second signal: nothing changed while planning, otherwise possibly unfinished. */
function leftAtOnce(signal: StopSignal, step: string | undefined, args: MergeArgs): { interrupted: InterruptSummary; message: string } {
  if (step === undefined || step === 'inspect') {
    return { interrupted: { signal, chain: 'as-before', leftAtOnce: true }, message: `left at once on a second ${signal} while planning: nothing was changed` };
  }
  const job = args.qmp || args.domain ? '; the block job may still run in the VM' : '';
  return {
    interrupted: { signal, chain: 'unfinished', leftAtOnce: true, lastStep: step },
    message:
      `left at once on a second ${signal} (last step begun: ${step}): the merge may be unfinished${job}; ` +
      `volmerge status --base ${args.base} says what is left, and the same command finishes it: ${sameCommand()}`,
  };
}

/** Runs `volmerge merge` and returns the process exit code (0 merged or planned, 1 refused or failed, 2 usage, 130/143 interrupted). */
export async function mergeHandler(args: ArgumentsCamelCase<MergeArgs>): Promise<number> {
  configureLog(args.logLevel);
  const bar = new ProgressBar();
  let plan: MergePlan | undefined;
  let step: string | undefined;
  const started = Date.now();
  const interrupts = new Interrupts({
    first: (signal) => {
      bar.finish();
      if (args.dryRun) {
        if (args.json) console.log(JSON.stringify({ status: 'interrupted', plan: null, interrupted: { signal, chain: 'as-before' }, error: { code: 'aborted', message: 'dry run interrupted' }, elapsedMs: Date.now() - started }));
        console.error(`volmerge: dry run interrupted by ${signal}: nothing was changed`);
        endBySignal(signal);
      }
      const how = args.qmp || args.domain ? 'before the pivot the block job is cancelled and the chain left as it was; from the pivot on the merge is finished' : 'the merge stops before its next step, a running qemu-storage-daemon or qemu-img at once';
      console.error(`volmerge: ${signal}: stopping where it is safe (${how}); ${signal === 'SIGINT' ? 'press Ctrl-C' : 'send SIGTERM'} again to leave at once`);
    },
    second: (signal) => {
      bar.finish();
      const { interrupted, message } = leftAtOnce(signal, step, args);
      const error = new VolmergeError('aborted', message);
      if (args.json) console.log(JSON.stringify(errorJson(error, plan, started, interrupted)));
      console.error(`volmerge: ${message}`);
    },
  }).install();
  const { runMergeJob } = await import('../host/run-merge.js');
  const progressLog = new ProgressLog((percent) => log.info(`commit: ${percent}%`));
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
      ...(args.dropInconsistent ? { dropInconsistent: true } : {}),
      ...(args.qmp ? { qmp: args.qmp } : {}),
      signal: interrupts.signal,
      ...(args.domain ? { domain: args.domain } : {}),
      ...(args.connect ? { connect: args.connect } : {}),
      onPlan: (p) => {
        plan = p;
        if (!args.json) console.log(describePlan(p));
      },
      onStep: (name) => {
        step = name;
        log.info(`step: ${name}`);
      },
      onProgress: (percent) => {
        bar.update(percent, 'commit');
        if (!bar.enabled) progressLog.report(percent);
      },
    });
    bar.finish();
    const signal = interrupts.received;
    if (args.json) console.log(JSON.stringify(outcomeJson(outcome, started, signal)));
    else if (outcome.status === 'planned') {
      if (outcome.resumed) console.log(`an unfinished merge of this chain (job ${outcome.resumed.jobId}) would be finished from step ${outcome.resumed.fromStep}`);
      console.log('dry run: nothing was changed');
    } else for (const line of doneLines(outcome, args.top, args.base, args.domain)) console.log(line);
    if (signal) console.error(`volmerge: ${signal} came once the merge could only be finished: it is done`);
    return 0;
  } catch (thrown) {
    bar.finish();
    const error = asVolmergeError(thrown);
    if (error.code === 'internal') log.debug(thrown instanceof Error ? (thrown.stack ?? '') : String(thrown));
    if (error.details.stderr) log.debug(`command output: ${error.details.stderr.trim()}`);
    const signal = interrupts.received;
    const where = error.details.interrupted;
    const interrupted = signal && where ? { signal, ...where } : undefined;
    if (args.json) console.log(JSON.stringify(errorJson(error, plan, started, interrupted)));
    console.error(`volmerge: ${error.message}`);
    if (signal) return STOP_SIGNALS[signal];
    return error instanceof VolmergeError && error.code === 'usage' ? 2 : 1;
  }
}
