// The retired mark on a merged top (not to be used: its data is in base and its child no longer reads through it), set and
// taken off for a journaled job, and the refusal of a retired volume in any later merge.
import { VolmergeError } from '../errors.js';
import type { FinalizeVolume } from '../merge/finalize.js';
import type { CrashSafety } from '../merge/pipeline.js';
import { clearMark, describeMarkHolder, markHolderFor, readMark, setMark } from '../storage/marks.js';
import type { Volume } from '../storage/volume.js';
import type { Journal } from './journal.js';

/** What the retirement needs of a job: its state folder (marks of plain block devices live there) and its id. */
export interface RetiringJob {
  readonly stateDir: string;
  readonly journal: { jobId: string };
}

/** The retire and unretire actions of one job (CrashSafety's retireTop and unretireTop). */
export function topRetirement(job: RetiringJob): Required<Pick<CrashSafety, 'retireTop' | 'unretireTop'>> {
  return {
    async retireTop(top: FinalizeVolume) {
      const holder = markHolderFor(top, job.stateDir, 'retired');
      await setMark(holder, job.journal.jobId, job.stateDir);
      return { mark: describeMarkHolder(holder) };
    },
    async unretireTop(top: FinalizeVolume) {
      await clearMark(markHolderFor(top, job.stateDir, 'retired'));
    },
  };
}

/** Refuses a merge of a volume that an earlier merge retired: merging it again would write stale data into base. */
export async function refuseIfRetired(volume: Volume, role: 'top' | 'base', stateDir: string): Promise<void> {
  const mark = await readMark(markHolderFor(volume, stateDir, 'retired'));
  if (!mark) return;
  const remove = volume.lv ? `lvremove ${volume.lv.vg}/${volume.lv.name}` : `rm ${volume.path}`;
  throw new VolmergeError(
    'volume-retired',
    `${role} ${volume.path} was merged into its base and retired by job ${mark.jobId} (${mark.where}): nothing may use it any more; ` +
      `once you are sure nothing does, remove it (${remove})`,
  );
}

/** Whether the job's remove-top step has started: from then on top may be gone, by the job's own doing. */
export function topRemovalStarted(journal: Pick<Journal, 'steps'>): boolean {
  return journal.steps['remove-top'] !== undefined;
}
