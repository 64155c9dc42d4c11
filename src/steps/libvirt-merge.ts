// The live merge through libvirt as a table of steps, run by the same executor as the cold and QMP merges. check: top's
// bitmaps valid in libvirt's eyes (it drops any other silently); extend: a base LV grown and watched; prune: base's
// stale bitmaps removed through checkpoints, before the job's first burst can fill base; commit: virsh blockcommit
// started, or found running (the point of no return); wait: the copy done (ready, or an internal commit ended); pivot:
// the active commit pivoted (libvirt carries the bitmaps); verify: base holds every carried bitmap, valid; close.
import { shapeOf, type Step, type StepTable } from '../engine/step.js';
import { VolmergeError } from '../errors.js';
import { startCommit } from '../libvirt/block-job.js';
import { finishCommit } from '../libvirt/commit-end.js';
import { waitCopied } from '../libvirt/commit-wait.js';
import { bitmapValidInLibvirt, removeBitmap, removeCheckpointMetadata } from '../libvirt/checkpoints.js';
import { readCommitState } from '../libvirt/job-state.js';
import { commitTarget, topRelative } from '../libvirt/commit-target.js';
import { verifyCarried } from '../libvirt/verify.js';
import { log } from '../log.js';
import { libvirtExtendStep } from './libvirt-extend.js';
import { stopLibvirtWatch, type LibvirtContext } from './libvirt-context.js';

/** The signal that stops a wait: the caller's, or a failed extension of base. */
function waitSignal(context: LibvirtContext): AbortSignal | undefined {
  const signals = [context.signal, context.watch?.failed].filter((s): s is AbortSignal => s !== undefined);
  return signals.length > 1 ? AbortSignal.any(signals) : signals[0];
}

const checkStep: Step<LibvirtContext> = {
  name: 'check',
  journaling: () => 'repeatable',
  async run({ ref, record }) {
    const names = record.bitmaps.checkInLibvirt;
    const own = new Set(record.checkpoints);
    const invalid: string[] = [];
    for (const name of names) if (!(await bitmapValidInLibvirt(ref, record.target, name, own))) invalid.push(name);
    if (invalid.length > 0) {
      throw new VolmergeError(
        'unsupported',
        `top ${record.topSource}: libvirt finds bitmap ${invalid.join(', ')} missing, disabled or inconsistent in disk ${record.target} of domain ${record.domain.name}, ` +
          'and would drop it silently at the commit; enable or delete it (its checkpoint), or merge with --drop-bitmaps',
      );
    }
    return { checked: names };
  },
};

const pruneStep: Step<LibvirtContext> = {
  name: 'prune',
  journaling: (context) => (context.record.bitmaps.prune.length > 0 ? 'durable' : 'quiet'),
  async run({ ref, record }) {
    for (const name of record.bitmaps.prune) await removeBitmap(ref, record.target, name);
    return { pruned: record.bitmaps.prune };
  },
};

const commitStep: Step<LibvirtContext> = {
  name: 'commit',
  pointOfNoReturn: true,
  journaling: () => 'durable',
  async run(context) {
    const { ref, record } = context;
    const state = await readCommitState(ref, record);
    if (state.merged || state.job) return { found: state.merged ? 'merged' : 'running', active: record.active };
    const chain = await commitTarget(ref, record);
    await startCommit(ref, chain, { bandwidthBytes: context.request.rateLimit ?? 0, keepRelative: await topRelative(record) });
    log.info(`domain ${record.domain.name}: commit of ${record.topSource} into ${record.baseSource} started (${record.active ? 'active' : 'internal'})`);
    return { found: 'started', active: record.active };
  },
};

const waitStep: Step<LibvirtContext> = {
  name: 'wait',
  journaling: () => 'quiet',
  async run(context) {
    const signal = waitSignal(context);
    const end = await waitCopied(context.ref, context.record, context.events, {
      ...(signal ? { signal } : {}),
      ...(context.onProgress ? { onProgress: context.onProgress } : {}),
    });
    return { end };
  },
};

const pivotStep: Step<LibvirtContext> = {
  name: 'pivot',
  writesBitmaps: true,
  journaling: () => 'durable',
  async run({ ref, record, events }) {
    // From here on the merge finishes: no signal stops it.
    await finishCommit(ref, record, events);
    return { active: record.active, carried: record.bitmaps.merge };
  },
};

const verifyStep: Step<LibvirtContext> = {
  name: 'verify',
  journaling: () => 'quiet',
  async run({ ref, record }) {
    await verifyCarried(ref, record);
    return { verified: record.bitmaps.merge };
  },
};

const closeStep: Step<LibvirtContext> = {
  name: 'close',
  journaling: () => 'repeatable',
  async run(context) {
    await stopLibvirtWatch(context);
    const { ref, record } = context;
    // A check's checkpoint that a crash left between its redefine and its delete: metadata only, never the domain's own.
    await removeCheckpointMetadata(ref, [...record.bitmaps.checkInLibvirt, ...record.bitmaps.merge], new Set(record.checkpoints));
    return {};
  },
};

/** The steps of a live merge through libvirt. */
export const LIBVIRT_MERGE: StepTable<LibvirtContext> = [checkStep, libvirtExtendStep, pruneStep, commitStep, waitStep, pivotStep, verifyStep, closeStep];

/** What the journal needs to know of the libvirt table. */
export const LIBVIRT_MERGE_SHAPE = shapeOf('libvirt', LIBVIRT_MERGE);
