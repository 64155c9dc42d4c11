// A cold run (no --domain) that finds an unfinished live merge through libvirt of its chain. While the domain runs,
// the job is libvirt's to finish: refused. When the domain is gone (destroyed, shut off, undefined), the job can never
// be finished live: before its pivot top still holds all of its data and the chain on disk still runs top -> base, so
// the job is closed as vm-gone and the cold merge proceeds. After a pivot, top is stale: never merged again.
import type { JobStore } from '../../engine/store.js';
import { VolmergeError } from '../../errors.js';
import { readDomain } from '../../libvirt/domain-xml.js';
import { describeUri } from '../../libvirt/virsh.js';
import type { MergeJobRequest } from '../../jobs/job-request.js';
import { journalDomain } from './run.js';
import type { UnfinishedJob } from '../../jobs/unfinished.js';
import { closeOrphan } from '../../jobs/orphan-end.js';

/** Whether the journal's domain runs now: undefined when it does, else why not (libvirt unreachable is not "gone"). */
export async function libvirtDomainSilence(journal: UnfinishedJob['journal']): Promise<string | undefined> {
  const record = journal.libvirt;
  if (!record) return 'its journal names no domain';
  try {
    const facts = await readDomain(journalDomain(record, journal.request.connect));
    return facts.running ? undefined : `domain ${facts.name} is not running`;
  } catch (error) {
    if (error instanceof VolmergeError && error.code === 'not-found' && /no such domain/.test(error.message)) return `libvirt has no domain ${record.domain.uuid} any more`;
    throw error;
  }
}

/** The command that finishes a libvirt job live. */
export function libvirtCommand(journal: UnfinishedJob['journal']): string {
  const { top, base, domain, connect } = journal.request;
  return `volmerge merge --top ${top} --base ${base} --domain ${journal.libvirt?.domain.uuid ?? domain ?? 'DOMAIN'}${connect ? ` --connect '${connect}'` : ''}`;
}

/** The advice for a libvirt job that start-up recovery cannot re-attach to. */
export function libvirtAdvice(journal: UnfinishedJob['journal'], why: string): string {
  return `a live merge through libvirt whose domain does not run (${why}); while it runs, finish it with ${libvirtCommand(journal)}; once it is gone, the same command without --domain finishes it cold`;
}

/**
 * Closes the chain's unfinished libvirt job when its domain is gone, so that a cold merge finishes the chain; refuses
 * otherwise. Resolves true when the job's commit had started (base may hold part of top).
 */
export async function closeOrphanedLibvirtJob(request: MergeJobRequest, store: JobStore, unfinished: UnfinishedJob): Promise<boolean> {
  const { journal } = unfinished;
  const silence = await libvirtDomainSilence(journal);
  if (silence === undefined) {
    throw new VolmergeError(
      'mid-merge',
      `base ${request.base}: a live merge of ${journal.request.top} through libvirt (job ${journal.jobId}) is unfinished and its domain runs (libvirt at ${describeUri(journal.request.connect)}); finish it live: ${libvirtCommand(journal)}`,
    );
  }
  const gone = `${silence}; the live merge through libvirt ended before its pivot and a cold merge finishes the chain`;
  return closeOrphan(request, store, unfinished, { holder: 'domain', went: 'stopped', gone });
}
