// The merge, top to bottom: inspect, plan, then the steps backup, prune, extend, mark, commit, bitmaps back, verify, unmark,
// and the end of the merge when asked (src/merge/finalize.ts): retire top, rebase its child, shrink base, remove top.
// Each step is idempotent (it probes the real state, then acts), so a resumed job may run it again; the hooks journal it.
import { both } from '../both.js';
import { VolmergeError } from '../errors.js';
import { log } from '../log.js';
import { copyBitmap, commit } from '../qemu/mutations.js';
import { startStorageDaemon, type StorageDaemon } from '../qemu/qmp.js';
import { removeBitmaps } from '../qemu/remove-bitmaps.js';
import { readChain, readInfo } from '../qemu/queries.js';
import { bitmapsOf, type ImageInfo } from '../qemu/types.js';
import { extendLv } from '../storage/lvm.js';
import { crashDuring } from './crash-point.js';
import { runFinalizeSteps, type FinalizeVolume } from './finalize.js';
import { planFinalize } from './finalize-plan.js';
import { guardResolved, inspectGuarded, resolveChainVolumes, type Inspection } from './inspect.js';
import { measureBase } from './measure-base.js';
import { planMerge, type MergePlan } from './plan.js';
import { runStep } from './run-step.js';
import type { MergeStep, StepHooks } from './steps.js';
import { explainCommitFailure } from './no-space.js';
import { verifyBase } from './verify-base.js';
import { assertNoInUseBitmaps } from './verify.js';

/** What to merge and how. */
export interface MergeRequest {
  top: string;
  base: string;
  dryRun?: boolean;
  /** Free room added to the needed size (bytes); also left in a shrunk base that is now the leaf. */
  leafRoom?: number;
  /** Top's child (internal merge): rebased onto base once the merge is verified, with top retired first. */
  child?: string;
  /** Remove top once the merge is verified and nothing is backed by it any more. */
  removeTop?: boolean;
  /** Shrink the base LV to what the merged image uses (image-end-offset), in whole extents. */
  shrink?: boolean;
  /** Drop top's bitmaps that base lacks instead of carrying them (vdsm's merge_bitmaps=false; needed for a raw base). */
  dropBitmaps?: boolean;
  /** Called once the plan is known (before any change). */
  onPlan?: (plan: MergePlan) => void;
  /** Called when a step starts (for progress displays); steps a resumed job had finished are not announced. */
  onStep?: (step: MergeStep | 'inspect') => void;
  /** Commit progress, 0 to 100. */
  onProgress?: (percent: number) => void;
  /** Aborts the merge: before the commit nothing has changed; during it qemu-img is stopped. */
  signal?: AbortSignal;
  /** Commit rate limit in bytes per second (tests only). */
  rateLimit?: number;
  hooks?: StepHooks;
}

/** How a merge ended when it did not throw. */
export interface MergeOutcome {
  status: 'done' | 'planned';
  plan: MergePlan;
  /** Set when the run finished (or, in a dry run, would finish) a merge that an earlier run left unfinished. */
  resumed?: { jobId: string; fromStep: MergeStep | 'end' };
  /** Where base's image ends after the merge (qemu-img check's image-end-offset); null for a raw base; absent in a dry run. */
  usedSize?: number | null;
}

/** The crash-safety steps that src/jobs supplies; a bare mergeChain runs without them (they do nothing then). */
export interface CrashSafety {
  /** Copies the bitmaps the merge keeps into a backup beside the journal. */
  backupBitmaps(inspection: Inspection, plan: MergePlan): Promise<Record<string, unknown>>;
  /** Marks base as mid-merge. */
  markBase(inspection: Inspection): Promise<Record<string, unknown>>;
  /** Takes the mark off base. */
  unmarkBase(inspection: Inspection): Promise<Record<string, unknown>>;
  /** Marks top as retired (merged; not to be used); idempotent. */
  retireTop?(top: FinalizeVolume): Promise<Record<string, unknown>>;
  /** Takes the retired mark off top again (its child could not be rebased, so the chain still needs it). */
  unretireTop?(top: FinalizeVolume): Promise<void>;
}

/** Inspects and plans without changing anything. */
export async function planFor(request: MergeRequest): Promise<{ inspection: Inspection; plan: MergePlan }> {
  request.onStep?.('inspect');
  const { top, base } = await resolveChainVolumes(request.top, request.base);
  // Every header of the chain is read and checked before any qemu-img opens it.
  const guarded = await guardResolved(top, base);
  // Both only read: measure runs while the chain is read; a bad chain is reported as such, not as a failed measure.
  const [inspection, sizes] = await both(inspectGuarded(guarded), measureBase(guarded));
  const leafRoom = request.leafRoom ?? 0;
  const finalize = await planFinalize(inspection, { child: request.child, removeTop: request.removeTop, shrink: request.shrink, leafRoom });
  const plan = planMerge({ ...inspection, ...sizes, leafRoom, finalize, dropBitmaps: request.dropBitmaps === true });
  request.onPlan?.(plan);
  return { inspection, plan };
}

/** Reads top and base again in one qemu-img run and checks that no bitmap was lost. */
async function rereadChain(inspection: Inspection, after: string): Promise<{ top: ImageInfo; base: ImageInfo }> {
  const [top, base] = await readChain(inspection.top.realPath);
  if (!top || !base) throw new VolmergeError('verify-failed', `top ${inspection.top.path}: its backing chain vanished after ${after}`);
  assertNoInUseBitmaps(base, 'base', inspection.base.path, after);
  assertNoInUseBitmaps(top, 'top', inspection.top.path, after);
  return { top, base };
}

/** A qemu-storage-daemon started now for the prune step, when that will remove several bitmaps; never rejects. */
function prewarmPruneDaemon(request: MergeRequest, plan: MergePlan): Promise<StorageDaemon | undefined> | undefined {
  if (plan.bitmaps.prune.length < 2 || request.hooks?.isDone?.('prune')) return undefined;
  // A daemon that could not start now is started again (or replaced by qemu-img) by the prune step itself.
  return startStorageDaemon().catch(() => undefined);
}

/** Merges top into base, or only plans it with dryRun; throws a VolmergeError when refused or failed. */
export async function mergeChain(request: MergeRequest, safety?: CrashSafety): Promise<MergeOutcome> {
  const { inspection, plan } = await planFor(request);
  if (request.dryRun) return { status: 'planned', plan };
  await runSteps(request, inspection, plan, safety);
  return { status: 'done', plan };
}

/** Runs the steps of a planned merge in order; those the hooks report done (a resumed job) are skipped. */
export async function runSteps(request: MergeRequest, inspection: Inspection, plan: MergePlan, safety?: CrashSafety): Promise<void> {
  const { top, base } = inspection;
  // The commit step re-reads base anyway; the bitmaps step reuses that instead of asking qemu-img again.
  let baseAfterCommit: ImageInfo | undefined;

  // The prune's qemu-storage-daemon starts while the backup is taken; it opens base only once the prune step runs.
  const pruneDaemon = prewarmPruneDaemon(request, plan);
  try {
    // The backup is written again by a resumed run; the next step's journal write (before it changes any bitmap) names it.
    await runStep(request, 'backup', async () => (safety ? safety.backupBitmaps(inspection, plan) : { skipped: true }), { repeatable: true });

    await runStep(request, 'prune', async () => {
      const names = plan.bitmaps.prune;
      await removeBitmaps(base.realPath, base.driver, names, (removed, total) => crashDuring('prune', (100 * removed) / total), pruneDaemon);
      if (names.length === 0) return { removed: [] };
      const after = await readInfo(base.realPath);
      assertNoInUseBitmaps(after, 'base', base.path, 'pruning stale bitmaps');
      const left = bitmapsOf(after).filter((b) => names.includes(b.name)).map((b) => b.name);
      if (left.length > 0) throw new VolmergeError('verify-failed', `base ${base.path}: bitmaps ${left.join(', ')} are still there after removal`);
      return { removed: names };
    }, { changesNothing: plan.bitmaps.prune.length === 0 });
  } finally {
    // Not used when the backup failed (or a resumed job had pruned already): it has nothing open and just quits.
    await (await pruneDaemon)?.stop();
  }

  await runStep(request, 'extend', async () => {
    if (plan.extendTo === null || !base.lv) return { extended: false };
    log.info(`extending ${base.lv.vg}/${base.lv.name} from ${base.lv.sizeBytes} to ${plan.extendTo} bytes`);
    const lv = await extendLv(base.lv.vg, base.lv.name, plan.extendTo);
    return { extended: true, sizeBytes: lv.sizeBytes };
  }, { changesNothing: plan.extendTo === null || !base.lv });

  // From here on base holds part of top's data: it is marked, and the chain can only be finished forward.
  await runStep(request, 'mark', async () => (safety ? safety.markBase(inspection) : { skipped: true }));

  await runStep(request, 'commit', async () => {
    await commit(top.realPath, base.realPath, {
      onProgress: (percent) => {
        crashDuring('commit', percent);
        request.onProgress?.(percent);
      },
      ...(request.signal ? { signal: request.signal } : {}),
      ...(request.rateLimit ? { rateLimit: request.rateLimit } : {}),
    }).catch((error: unknown) => {
      throw explainCommitFailure(error, base, plan);
    });
    baseAfterCommit = (await rereadChain(inspection, 'the commit')).base;
    return {};
  });

  await runStep(request, 'bitmaps', async () => {
    const adds = new Map(plan.bitmaps.add.map((b) => [b.name, b.granularity]));
    const present = new Set(bitmapsOf(baseAfterCommit ?? (await readInfo(base.realPath))).map((b) => b.name));
    for (const name of plan.bitmaps.merge) {
      const granularity = adds.get(name);
      await copyBitmap(base.realPath, top.realPath, {
        name,
        ...(granularity !== undefined && !present.has(name) ? { addWithGranularity: granularity } : {}),
        enable: plan.bitmaps.enable.includes(name),
      });
    }
    return { merged: plan.bitmaps.merge };
  }, { changesNothing: plan.bitmaps.merge.length === 0 });

  await runStep(request, 'verify', async () => {
    // Both only read base: the check runs alongside the re-read.
    const reread = rereadChain(inspection, 'copying bitmaps');
    reread.catch(() => undefined);
    return verifyBase(reread, inspection, plan);
  }, { changesNothing: true });

  // Taking the mark off again is harmless: a crash inside this step leaves a job that a resumed run finishes.
  await runStep(request, 'unmark', async () => (safety ? safety.unmarkBase(inspection) : { skipped: true }), { repeatable: true });

  await runFinalizeSteps(request, { top, base }, plan, safety);
}
