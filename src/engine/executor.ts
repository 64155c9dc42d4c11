// The one executor: runs a table's steps in order against a journal. A fresh run and a resumed one are the same loop:
// a step the journal records as done is skipped, any other is run (steps probe before they act, so running one again
// after a crash is safe). A step's "done" shares one durable write with the next step's "started". Crash points
// (test-only, see crash-point.ts) fire on both sides of every step that runs.
import { VolmergeError } from '../errors.js';
import { crashPoint, holdPoint } from './crash-point.js';
import type { JournalWriter } from './journal-writer.js';
import { RestoredFailure, type Facts, type Step, type StepTable } from './step.js';

/** How a table is run. */
export interface ExecuteOptions {
  /** Stops the run before the next step (a step that waits, such as the commit, watches it too). */
  signal?: AbortSignal;
  /** Called when a step starts; steps the journal had finished are not announced. */
  onStep?: (name: string) => void;
  /** Names the job in messages: "merge of T into B". */
  describe: string;
}

/** Undoes the steps before index that the journal records as done, newest first, back to the first one without an undo. */
async function undoBefore<C>(table: StepTable<C>, index: number, context: C, writer: JournalWriter): Promise<void> {
  for (let i = index - 1; i >= 0; i -= 1) {
    const step = table[i] as Step<C>;
    if (!step.undo) return;
    if (!writer.isDone(step.name)) continue;
    await step.undo(context);
    await writer.forget(step.name);
  }
}

/**
 * Runs the steps of a table that the journal does not record as done; throws the first failure (after undoing what it
 * allows). An abort stops the run before its next step, until a step that finishes on abort has started (this run or
 * an earlier one): from there on the table runs to its end.
 */
export async function executeTable<C>(table: StepTable<C>, context: C, writer: JournalWriter, options: ExecuteOptions): Promise<void> {
  let finishing = false;
  for (const [index, step] of table.entries()) {
    if (step.finishesOnAbort && writer.journal.steps[step.name] !== undefined) finishing = true;
    if (writer.isDone(step.name)) continue;
    await holdPoint(step.name);
    if (options.signal?.aborted && !finishing) throw new VolmergeError('aborted', `${options.describe} aborted before ${step.name}`);
    if (step.finishesOnAbort) finishing = true;
    options.onStep?.(step.name);
    const durable = step.journaling(context) === 'durable';
    if (durable) await writer.started(step.name);
    crashPoint(step.name, 'before');
    let facts: Facts;
    try {
      facts = await step.run(context);
    } catch (error) {
      if (!(error instanceof RestoredFailure)) throw error;
      await undoBefore(table, index, context, writer);
      throw error.cause;
    }
    if (!durable) writer.doneQuietly(step.name, facts);
    else if (nextRunsDurably(table, index, context, writer)) writer.stageDone(step.name, facts);
    else await writer.done(step.name, facts);
    crashPoint(step.name, 'after');
  }
}

/**
 * Whether the next step that will run and has something to do writes "started" durably: then a step's "done" goes to
 * disk with that write. Nothing happens between the two (idle steps do nothing), so the journal a crash leaves is the
 * one it would leave with two writes (a crash before the shared write finds the step started, and runs it again, as
 * after a crash just before its own "done").
 */
function nextRunsDurably<C>(table: StepTable<C>, index: number, context: C, writer: JournalWriter): boolean {
  for (const step of table.slice(index + 1)) {
    if (writer.isDone(step.name)) continue;
    const journaling = step.journaling(context);
    if (journaling !== 'idle') return journaling === 'durable';
  }
  return false;
}
