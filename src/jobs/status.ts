// `volmerge status` of a chain, decided once from facts that the chain's job store gives (see status-facts.ts): being
// merged, unfinished, needing a person, or idle. Reading them changes nothing and takes no lock.
import type { Journal } from '../engine/journal.js';
import type { MidMergeMark } from '../storage/marks.js';
import { shapeOfJournal } from '../steps/shapes.js';
import type { StaleJob } from './stale.js';
import { nextStep } from './unfinished.js';

/** The status of a chain as `volmerge status --json` prints it (schemas/status.schema.json). */
export interface ChainStatus {
  base: string;
  identity: string;
  state: 'idle' | 'merging' | 'unfinished' | 'needs-attention';
  /** base's mark; stale (with why) when it was left by a volume that is gone and marks nothing now. */
  mark: (MidMergeMark & { stale?: string }) | null;
  lock: { pid: number; jobId: string; since: string } | null;
  job: {
    jobId: string;
    /** cold (qemu-img), live (a VM's block-commit, through qmp) or libvirt (a domain's block commit, through libvirt). */
    kind: 'cold' | 'live' | 'libvirt';
    qmp?: string;
    /** The libvirt domain (its UUID) and connection URI of a libvirt job. */
    domain?: string;
    connect?: string;
    state: Journal['state'];
    top: string;
    base: string;
    attempt: number;
    nextStep: string;
    steps: { name: string; status: 'pending' | 'started' | 'done' | 'failed' }[];
    error?: { code: string; message: string };
  } | null;
  problem: string | null;
  advice: string;
  /** Journals that named base's path or its device and inode but whose base is gone or is another volume now: they never act. */
  stale: StaleJob[];
}

/** What the status is decided from. */
export interface StatusFacts {
  base: string;
  identity: string;
  mark: (MidMergeMark & { stale?: string }) | null;
  lock: ChainStatus['lock'];
  /** The chain's unfinished journal, when the store can read it. */
  journal: Journal | null;
  /** Jobs the store keeps but whose journals were not read (a shared VG's job LVs, which another host may hold). */
  unreadJobs: string[];
  /** What could not be read (a failed query is never "nothing there"). */
  problems: string[];
  /** Where the journal would be, for "marked, but no journal" (a folder, or a VG's job LVs). */
  storeDescription: string;
  /** The marked job's journal may be in another state folder (a sidecar says which). */
  markStateDir?: string;
  /** Why no journal explains the mark, when that is known (the marked job's journal is there but unreadable). */
  markProblem?: string;
  /** A chain on a shared VG: any host of the cluster can finish it. */
  shared: boolean;
  /** Stale journals that concern base. */
  stale: StaleJob[];
}

/** A journal as status shows it. */
function jobSummary(journal: Journal): NonNullable<ChainStatus['job']> {
  return {
    jobId: journal.jobId,
    kind: journal.kind ?? 'cold',
    ...(journal.request.qmp ? { qmp: journal.request.qmp } : {}),
    ...(journal.libvirt ? { domain: journal.libvirt.domain.uuid } : {}),
    ...(journal.request.connect ? { connect: journal.request.connect } : {}),
    state: journal.state,
    top: journal.request.top,
    base: journal.request.base,
    attempt: journal.attempt,
    nextStep: nextStep(journal),
    steps: shapeOfJournal(journal).steps.map((name) => ({ name, status: journal.steps[name]?.status ?? 'pending' })),
    ...(journal.error ? { error: journal.error } : {}),
  };
}

const FINISH_ANYWHERE =
  'run the same volmerge merge on any host of the cluster: it finishes the merge as soon as no other host holds the chain ' +
  '(until then it is refused with locked-by-other-host; a host that died releases it when its sanlock lease expires, about 140 s after its death)';

/** The one decision: a lock held means merging; then anything unreadable; then an unfinished job; then a mark no job explains. */
export function decideStatus(facts: StatusFacts): ChainStatus {
  const status: ChainStatus = { base: facts.base, identity: facts.identity, state: 'idle', mark: facts.mark, lock: facts.lock, job: null, problem: null, advice: '', stale: facts.stale };
  if (facts.journal) status.job = jobSummary(facts.journal);
  const problems = [...facts.problems];
  if (facts.mark && facts.mark.stale === undefined && !facts.journal && facts.unreadJobs.length === 0) {
    const elsewhere = facts.markStateDir ? ` (its journal may be in ${facts.markStateDir})` : '';
    problems.push(facts.markProblem ?? `base is marked mid-merge by job ${facts.mark.jobId} but ${facts.storeDescription} holds no unfinished journal of it${elsewhere}`);
  }
  // What could not be read on a shared VG is explained under "Clusters"; a mark no journal explains under "Crash safety".
  const guide = facts.shared && facts.problems.length > 0 ? '"Clusters"' : '"Crash safety"';
  if (status.lock) {
    status.state = 'merging';
    status.advice = `job ${status.lock.jobId} (pid ${status.lock.pid})${facts.shared ? ' of this host' : ''} is merging this chain; wait for it to end`;
  } else if (problems.length > 0) {
    status.state = 'needs-attention';
    status.problem = problems.join('; ');
    status.advice = `base may hold part of a merge: see ${guide} in the README before using or merging it`;
  } else if (status.job) {
    status.state = 'unfinished';
    const live = status.job.qmp
      ? ` --qmp ${status.job.qmp}`
      : status.job.domain
        ? ` --domain ${status.job.domain}${status.job.connect ? ` --connect '${status.job.connect}'` : ''}`
        : '';
    status.advice = `run volmerge merge --top ${status.job.top} --base ${facts.base}${live} to finish it from step ${status.job.nextStep}`;
  } else if (facts.unreadJobs.length > 0) {
    status.state = 'unfinished';
    status.advice = `job LV ${facts.unreadJobs.join(', ')} holds the journal of a merge that has not ended (it may be running on another host); ${FINISH_ANYWHERE}`;
  } else {
    status.advice = facts.shared ? 'no merge of this chain is running here or unfinished in the shared VG' : 'no merge of this chain is running or unfinished';
  }
  if (facts.stale.length > 0 && status.state !== 'merging') {
    status.advice += `; ${facts.stale.length === 1 ? 'a stale journal is' : `${facts.stale.length} stale journals are`} left (never used): clear with ${facts.stale.map((s) => s.clear).join(', ')}`;
  }
  return status;
}
