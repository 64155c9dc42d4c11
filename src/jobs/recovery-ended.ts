// A recovered job that waited and then ended without this agent running it. Its journal vanished (a successful listing
// of its store no longer shows it): another run finished or took over its merge (another host, a command-line merge,
// a later job of the chain), or its state was removed by hand. Base's generation, which only a finished merge moves,
// tells the engine's own way a merge finished elsewhere (done) from one that nothing shows finished (failed, job-gone).
// Or its journal is still there but another run of the job ended it (failed).
import type { Journal, JournalVolume } from '../engine/journal.js';
import { asVolmergeError, type ErrorCode } from '../errors.js';
import { log } from '../log.js';
import { readGeneration, type GenerationHolder } from '../storage/generation.js';
import { describe, type RecoveredJob } from './recovery-decide.js';

/** Where base's generation is kept, from the journal's record of base: its LV's tags, a file's sidecar; none for a plain device. */
export function generationHolderOf(base: JournalVolume): GenerationHolder | undefined {
  if (base.lv) return { kind: 'lv', vg: base.lv.vg, lv: base.lv.name };
  return base.kind === 'file' ? { kind: 'file', path: base.path } : undefined;
}

/**
 * Base's generation while the job's journal is there (its merge is then unfinished, so no run has moved it for this
 * merge yet), or undefined when it cannot be read now (logged; read again at the next probe).
 */
export async function generationWhileUnfinished(journal: Journal): Promise<number | undefined> {
  const holder = generationHolderOf(journal.volumes.base);
  if (!holder) return undefined;
  try {
    return await readGeneration(holder);
  } catch (error) {
    log.debug(`recovery: base ${journal.request.base}'s generation cannot be read now: ${(error as Error).message}`);
    return undefined;
  }
}

const GONE = new Set(['lv-missing', 'vg-missing', 'not-found']);

/**
 * What becomes of a waiting job whose journal a successful listing no longer shows: done when base's generation has
 * moved since recovery saw the journal (a merge of base finished, and the unfinished merge of a base always finishes
 * first); failed ('job-gone') when it has not, or when that cannot be known; still waiting when the generation cannot
 * be read now (a failed query is not an answer).
 */
export async function vanishedOutcome(last: Journal, where: string, generationBefore: number | undefined): Promise<RecoveredJob> {
  const jobId = last.jobId;
  const base = last.request.base;
  const facts = { jobId, ...describe(last) };
  const holder = generationHolderOf(last.volumes.base);
  let now: number | undefined;
  let baseGone = '';
  if (holder && generationBefore !== undefined) {
    try {
      now = await readGeneration(holder);
    } catch (thrown) {
      const error = asVolmergeError(thrown);
      if (!GONE.has(error.code)) {
        return { ...facts, state: 'waiting', error: { code: error.code, message: `${where} is gone, and base's generation cannot be read now to tell whether the merge was finished (${error.message}); retrying later` } };
      }
      baseGone = ` and base is gone too (${error.message})`;
    }
  }
  if (now !== undefined && generationBefore !== undefined && now !== generationBefore) {
    const note = `job ${jobId} was finished by another run while it waited here: its state (${where}) is gone and base ${base}'s generation moved from ${generationBefore} to ${now}, which only a finished merge does; this agent did not run it`;
    return { ...facts, state: 'done', note };
  }
  const generation =
    now !== undefined ? `base ${base}'s generation has not moved (${now})` : baseGone ? `nothing shows that its merge was finished${baseGone}` : `base ${base}'s generation was not known, so nothing shows that its merge was finished`;
  const message =
    `job ${jobId}: its state (${where}) is gone while it waited, and ${generation}: another host or a command-line merge finished or took over the merge, ` +
    `or the state was removed by hand; this agent did not finish it. volmerge status --base ${base} says whether the chain is still mid-merge; merging it again finishes it`;
  return { ...facts, state: 'failed', error: { code: 'job-gone', message } };
}

/** What becomes of a waiting job whose journal another run of the job ended (failed; or done, which no run writes today). */
export function endedElsewhereOutcome(journal: Journal, where: string): RecoveredJob {
  const facts = { jobId: journal.jobId, ...describe(journal) };
  if (journal.state === 'done') return { ...facts, state: 'done', note: `job ${journal.jobId} was finished by another run while it waited here (${where}); this agent did not run it` };
  const error = journal.error ?? { code: 'internal', message: 'no error recorded' };
  // volmerge wrote the code from its own ErrorCode; one it does not know is numbered as a general failure by the agent.
  const code = error.code as ErrorCode;
  return { ...facts, state: 'failed', error: { code, message: `job ${journal.jobId} failed in another run while it waited here (journal ${where}): ${error.message}` } };
}
