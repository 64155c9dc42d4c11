// The merge, top to bottom: inspect, plan, prune, extend, commit, bitmaps back, verify (design.md).
import { VolmergeError } from '../errors.js';
import { log } from '../log.js';
import { copyBitmap, commit, removeBitmap } from '../qemu/mutations.js';
import { checkImage, measureSubchain, readChain, readInfo } from '../qemu/queries.js';
import { bitmapsOf, type ImageInfo } from '../qemu/types.js';
import { extendLv } from '../storage/lvm.js';
import { crashPoint } from './crash-point.js';
import { inspectChain, type Inspection } from './inspect.js';
import { planMerge, type MergePlan } from './plan.js';
import type { MergeStep, StepHooks } from './steps.js';
import { assertBitmapsExactly, assertNoInUseBitmaps } from './verify.js';

/** What to merge and how. */
export interface MergeRequest {
  top: string;
  base: string;
  dryRun?: boolean;
  /** Free room added to the needed size (bytes). */
  leafRoom?: number;
  /** Called once the plan is known (before any change). */
  onPlan?: (plan: MergePlan) => void;
  /** Called when a step starts (for progress displays). */
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
}

/** Inspects and plans without changing anything. */
export async function planFor(request: MergeRequest): Promise<{ inspection: Inspection; plan: MergePlan }> {
  request.onStep?.('inspect');
  const inspection = await inspectChain(request.top, request.base);
  const { top, base } = inspection;
  const measure = await measureSubchain(top.realPath, top.driver, base.realPath, base.driver);
  const plan = planMerge({ ...inspection, measure, leafRoom: request.leafRoom ?? 0 });
  request.onPlan?.(plan);
  return { inspection, plan };
}

/** Runs one step between the hooks and the crash points. */
async function step(request: MergeRequest, name: MergeStep, body: () => Promise<Record<string, unknown>>): Promise<void> {
  if (request.signal?.aborted) throw new VolmergeError('aborted', `merge of ${request.top} into ${request.base} aborted before ${name}`);
  request.onStep?.(name);
  crashPoint(name, 'before');
  await request.hooks?.started?.(name);
  const facts = await body();
  await request.hooks?.done?.(name, facts);
  crashPoint(name, 'after');
}

/** Reads top and base again in one qemu-img run and checks that no bitmap was lost. */
async function rereadChain(inspection: Inspection, after: string): Promise<{ top: ImageInfo; base: ImageInfo }> {
  const [top, base] = await readChain(inspection.top.realPath);
  if (!top || !base) throw new VolmergeError('verify-failed', `top ${inspection.top.path}: its backing chain vanished after ${after}`);
  assertNoInUseBitmaps(base, 'base', inspection.base.path, after);
  assertNoInUseBitmaps(top, 'top', inspection.top.path, after);
  return { top, base };
}

/** Merges top into base, or only plans it with dryRun; throws a VolmergeError when refused or failed. */
export async function mergeChain(request: MergeRequest): Promise<MergeOutcome> {
  const { inspection, plan } = await planFor(request);
  if (request.dryRun) return { status: 'planned', plan };
  const { top, base } = inspection;

  await step(request, 'prune', async () => {
    for (const name of plan.bitmaps.prune) await removeBitmap(base.realPath, name);
    if (plan.bitmaps.prune.length === 0) return { removed: [] };
    const after = await readInfo(base.realPath);
    assertNoInUseBitmaps(after, 'base', base.path, 'pruning stale bitmaps');
    const left = bitmapsOf(after).filter((b) => plan.bitmaps.prune.includes(b.name)).map((b) => b.name);
    if (left.length > 0) throw new VolmergeError('verify-failed', `base ${base.path}: bitmaps ${left.join(', ')} are still there after removal`);
    return { removed: plan.bitmaps.prune };
  });

  await step(request, 'extend', async () => {
    if (plan.extendTo === null || !base.lv) return { extended: false };
    log.info(`extending ${base.lv.vg}/${base.lv.name} from ${base.lv.sizeBytes} to ${plan.extendTo} bytes`);
    const lv = await extendLv(base.lv.vg, base.lv.name, plan.extendTo);
    return { extended: true, sizeBytes: lv.sizeBytes };
  });

  await step(request, 'commit', async () => {
    await commit(top.realPath, base.realPath, {
      ...(request.onProgress ? { onProgress: request.onProgress } : {}),
      ...(request.signal ? { signal: request.signal } : {}),
      ...(request.rateLimit ? { rateLimit: request.rateLimit } : {}),
    });
    await rereadChain(inspection, 'the commit');
    return {};
  });

  await step(request, 'bitmaps', async () => {
    const adds = new Map(plan.bitmaps.add.map((b) => [b.name, b.granularity]));
    const present = new Set(bitmapsOf(await readInfo(base.realPath)).map((b) => b.name));
    for (const name of plan.bitmaps.merge) {
      const granularity = adds.get(name);
      await copyBitmap(base.realPath, top.realPath, {
        name,
        ...(granularity !== undefined && !present.has(name) ? { addWithGranularity: granularity } : {}),
        enable: plan.bitmaps.enable.includes(name),
      });
    }
    return { merged: plan.bitmaps.merge };
  });

  await step(request, 'verify', async () => {
    const { base: baseInfo } = await rereadChain(inspection, 'copying bitmaps');
    assertBitmapsExactly(baseInfo, plan.bitmaps.merge, base.path);
    const check = await checkImage(base.realPath);
    return { imageEndOffset: check['image-end-offset'] ?? null };
  });

  return { status: 'done', plan };
}
