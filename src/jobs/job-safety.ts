// The crash-safety steps of a journaled job: bitmap backup kept where the journal is, and the mid-merge mark on base.
import type { Inspection } from '../merge/inspect.js';
import type { MergePlan } from '../merge/plan.js';
import type { CrashSafety } from '../merge/pipeline.js';
import { clearMark, describeMarkHolder, markHolderFor, setMark } from '../storage/marks.js';
import { takeBitmapBackup } from './bitmap-backup.js';
import type { JournalWriter } from './journal.js';

/** Backup, mark and unmark for one job, recording the backup in its journal. */
export function jobSafety(writer: JournalWriter): CrashSafety {
  const { stateDir, store } = writer;
  return {
    async backupBitmaps(inspection: Inspection, plan: MergePlan) {
      // The inspection was made under the chain's lock, just before: its bitmaps are still the chain's.
      const backup = await takeBitmapBackup(
        store.backupDir(writer.folder),
        { realPath: inspection.top.realPath, info: inspection.topInfo },
        { realPath: inspection.base.realPath, info: inspection.baseInfo },
        plan.bitmaps.merge,
      );
      // Kept where the journal is (for a shared VG, on the shared storage) before the journal names it, with the next
      // write: that comes before any bitmap changes.
      await store.saveBackup(writer.folder);
      writer.stage((j) => {
        j.backup = backup;
      });
      return { top: backup.top.bitmaps.map((b) => b.name), base: backup.base.bitmaps.map((b) => b.name) };
    },
    async markBase(inspection: Inspection) {
      const holder = markHolderFor(inspection.base, stateDir);
      await setMark(holder, writer.journal.jobId, stateDir);
      return { mark: describeMarkHolder(holder) };
    },
    async unmarkBase(inspection: Inspection) {
      const holder = markHolderFor(inspection.base, stateDir);
      await clearMark(holder);
      return { mark: describeMarkHolder(holder) };
    },
  };
}
