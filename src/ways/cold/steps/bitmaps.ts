// Step bitmaps: each bitmap the merge keeps is created in base when missing and merged from top. Nothing is left to do
// when the commit carried them in its own daemon session; otherwise (a resumed run, or no daemon) one daemon session
// does them all (base read-write, top read-only), or qemu-img one run per bitmap. Base is then read from disk: no
// bitmap may be in-use.
import type { Step } from '../../../engine/step.js';
import { assertNoInUseBitmaps } from '../../../merge/verify.js';
import { carryBitmapsInDaemon, endSession } from '../../../qemu/daemon-bitmaps.js';
import { openChain } from '../../../qemu/daemon-images.js';
import { copyBitmap, type BitmapCopy } from '../../../qemu/mutations.js';
import { readDiskBitmaps } from '../../../qemu/qcow2-bitmaps.js';
import type { StorageDaemon } from '../../../qemu/qmp.js';
import { bitmapsOf } from '../../../qemu/types.js';
import { bitmapCopies } from './commit.js';
import { daemonOf, forgetDaemon, inspected, type MergeContext } from './context.js';

/** All copies in one daemon session, ended and checked. */
async function carryInDaemon(daemon: StorageDaemon, context: MergeContext, copies: readonly BitmapCopy[]): Promise<void> {
  const { top, base } = inspected(context);
  forgetDaemon(context);
  let failed = true;
  try {
    await openChain(daemon, { top: top.realPath, topDriver: top.driver, base: base.realPath, baseDriver: base.driver });
    await carryBitmapsInDaemon(daemon, base.realPath, copies);
    failed = false;
  } finally {
    if (failed) await daemon.quit();
  }
  await endSession(daemon, base.path, 'copying bitmaps');
}

/** The bitmaps step. */
export const bitmapsStep: Step<MergeContext> = {
  name: 'bitmaps',
  writesBitmaps: true,
  journaling: (context) => (context.plan.bitmaps.merge.length === 0 || context.bitmapsCarried ? 'idle' : 'durable'),
  async run(context) {
    const { top, base } = inspected(context);
    const merged = context.plan.bitmaps.merge;
    if (merged.length === 0) return { merged: [] };
    if (context.bitmapsCarried) return { merged, withTheCommit: true };
    const now = context.baseAfterCommit ? bitmapsOf(context.baseAfterCommit) : await readDiskBitmaps(base.realPath, 'base');
    const present = new Set(now.map((b) => b.name));
    const copies = bitmapCopies(context, present);
    const daemon = await daemonOf(context);
    if (daemon) await carryInDaemon(daemon, context, copies);
    else for (const copy of copies) await copyBitmap(base.realPath, top.realPath, copy);
    assertNoInUseBitmaps(await readDiskBitmaps(base.realPath, 'base'), 'base', base.path, 'copying bitmaps');
    return { merged };
  },
};
