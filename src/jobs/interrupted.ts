// The error an aborted merge ends with (MergeJobRequest.signal): who stopped it, where, and where that leaves the
// chain: as it was (top not merged; a live merge's block job cancelled) or unfinished, its journal kept, with the step
// that the same merge run again goes on from. Made after the failure is recorded, so it says what the journal says.
import type { JournalWriter } from '../engine/journal-writer.js';
import { interruptedSteps, needsRecovery, type Journal } from '../engine/journal.js';
import type { JobStore } from '../engine/store.js';
import { asVolmergeError, VolmergeError } from '../errors.js';
import { shapeOfJournal } from '../ways/shapes.js';
import type { Volume } from '../storage/volume.js';
import { findUnfinishedJob, nextStep } from './unfinished.js';

/** Who stopped the merge, from the abort's reason: "interrupted by SIGINT", "job J aborted by Job.abort". */
export function stoppedBy(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  return reason instanceof Error && reason.message ? reason.message : 'aborted';
}

/** Where the run stopped: "during step S" for a journaled step cut short, "at step S" (in it or before it) otherwise. */
function wherePhrase(journal: Journal): string {
  const cut = interruptedSteps(journal, shapeOfJournal(journal))[0];
  return cut ? `during step ${cut}` : `at step ${nextStep(journal)}`;
}

/** The base LV the run grew, which stays grown (the next merge of the chain uses that room); undefined when none was. */
function extendedNote(journal: Journal): string | undefined {
  const facts = journal.steps.extend?.facts;
  if (facts?.extended !== true) return undefined;
  const size = typeof facts.sizeBytes === 'number' ? ` to ${facts.sizeBytes} bytes` : '';
  // A live merge's watch may have grown it further since the step's facts were written.
  const more = journal.kind === 'live' || journal.kind === 'libvirt' ? ' or more' : '';
  return `base's LV was extended${size}${more} and stays so (the next merge uses that room)`;
}

/** What the run changed although the merge did not happen: stale bitmaps pruned, inconsistent ones dropped, base's LV grown. */
function changesKept(journal: Journal): string {
  const notes: string[] = [];
  const extended = extendedNote(journal);
  if (extended) notes.push(extended);
  if (journal.steps.prune?.status === 'done' && journal.plan.bitmaps.inconsistent?.length) {
    notes.push(`inconsistent bitmaps ${journal.plan.bitmaps.inconsistent.join(', ')} were dropped (their next backup must be a full one)`);
  }
  if (journal.steps.prune?.status === 'done' && journal.plan.bitmaps.prune.length > 0) notes.push(`base's stale bitmaps ${journal.plan.bitmaps.prune.join(', ')} were pruned`);
  return notes.length > 0 ? `; ${notes.join('; ')}` : '';
}

/**
 * The 'aborted' error of a merge whose signal fired, once its failure is recorded (the journal kept only while the
 * chain needs it). cancelled: qemu's block job that the abort cancelled (a live merge before its pivot).
 */
export function interruptedError(writer: JournalWriter, signal: AbortSignal, cause: unknown, cancelled?: string): VolmergeError {
  const { journal } = writer;
  const { top, base } = journal.request;
  const by = stoppedBy(signal);
  const where = wherePhrase(journal);
  const detail = asVolmergeError(cause);
  const inner = detail.code === 'aborted' ? '' : ` (${detail.message})`;
  if (!cancelled && needsRecovery(journal, shapeOfJournal(journal))) {
    const resumeFrom = nextStep(journal);
    return new VolmergeError(
      'aborted',
      `${by} ${where}${inner}: the merge of ${top} into ${base} is unfinished (job ${journal.jobId}'s journal is kept); ` +
        `run the same command again to finish it from step ${resumeFrom}`,
      { interrupted: { chain: 'unfinished', resumeFrom } },
    );
  }
  const job = cancelled ? `; block job ${cancelled} cancelled, the VM goes on with ${top} over ${base} as before` : '';
  return new VolmergeError(
    'aborted',
    `${by} ${where}${inner}: ${top} is not merged into ${base} and the chain is as it was${job}${changesKept(journal)}; run the same command again to merge`,
    { interrupted: { chain: 'as-before' } },
  );
}

/**
 * An aborted merge that failed outside its table (planning, a resume's repair, a qemu-img that a terminal's Ctrl-C
 * ended while the chain was read): where the chain stands is what the store says, an unfinished journal of its base or
 * none. Errors that already say it pass through.
 */
export async function abortOutsideTable(thrown: unknown, signal: AbortSignal, store: JobStore, base: Volume): Promise<unknown> {
  const error = asVolmergeError(thrown);
  if (error.details.interrupted) return error;
  const by = stoppedBy(signal);
  let unfinished;
  try {
    unfinished = await findUnfinishedJob(store, base);
  } catch {
    return error;
  }
  if (unfinished) {
    const resumeFrom = nextStep(unfinished.journal);
    return new VolmergeError(
      'aborted',
      `${by} (${error.message}): the merge of ${unfinished.journal.request.top} into ${unfinished.journal.request.base} is unfinished; ` +
        `run the same command again to finish it from step ${resumeFrom}`,
      { interrupted: { chain: 'unfinished', resumeFrom } },
    );
  }
  return new VolmergeError('aborted', `${by} (${error.message}) before any change: the chain is as it was; run the same command again to merge`, {
    interrupted: { chain: 'as-before' },
  });
}
