// A new live merge through libvirt: the domain's disk planned from its live XML and images (nothing changes), a
// journal of kind 'libvirt' written with the domain (by UUID), the disk, the layers and the bitmap plan, then the
// libvirt table run. A dry run stops after the plan.
import { resolve as resolvePath } from 'node:path';
import { JournalWriter } from '../engine/journal-writer.js';
import { now, type Journal } from '../engine/journal.js';
import type { JobStore } from '../engine/store.js';
import { planLibvirtMerge, type LibvirtPlanned } from '../libvirt/merge-plan.js';
import type { LibvirtRecord } from '../libvirt/record.js';
import { durableRequest } from '../merge/request.js';
import type { Volume } from '../storage/volume.js';
import { missingMeansDeleted } from './failure.js';
import { journalVolume } from './fresh-run.js';
import type { MergeJobRequest, MergeOutcome } from './job-request.js';
import { executeLibvirt, journalDomain, withEvents } from './libvirt-run.js';

/** Plans the merge through libvirt and reports the plan; changes nothing. */
export async function planLibvirtDry(request: MergeJobRequest): Promise<MergeOutcome> {
  request.onStep?.('inspect');
  const { plan } = await planLibvirtMerge(request);
  request.onPlan?.(plan);
  return { status: 'planned', plan };
}

/** The journal's record of what was planned. */
function recordOf(planned: LibvirtPlanned): LibvirtRecord {
  const { chain, bitmaps, checkpoints } = planned;
  return {
    domain: chain.domain,
    target: chain.target,
    active: chain.active,
    topSource: chain.top.sourcePath,
    baseSource: chain.base.sourcePath,
    ...(chain.above ? { aboveSource: chain.above.sourcePath } : {}),
    bitmaps,
    checkpoints,
  };
}

/** Plans from what the domain holds now, writes a new libvirt journal and runs every step. */
export async function runLibvirtFresh(request: MergeJobRequest, store: JobStore, volumes?: { top: Volume; base: Volume }): Promise<MergeOutcome> {
  request.onStep?.('inspect');
  let planned: LibvirtPlanned;
  try {
    planned = await planLibvirtMerge(request, volumes);
  } catch (thrown) {
    throw missingMeansDeleted(thrown, request);
  }
  request.onPlan?.(planned.plan);
  const { inspection, plan } = planned;
  const record = recordOf(planned);
  const created: Journal = {
    version: 1,
    jobId: request.jobId,
    kind: 'libvirt',
    libvirt: record,
    state: 'running',
    createdAt: now(),
    updatedAt: now(),
    attempt: 1,
    pid: process.pid,
    request: durableRequest(request, (path) => resolvePath(path)),
    volumes: { top: journalVolume(inspection.top), base: journalVolume(inspection.base) },
    plan,
    steps: {},
  };
  const writer = new JournalWriter(store, created);
  await writer.update(() => undefined);
  const ref = journalDomain(record, request.connect);
  return withEvents(ref, (events) =>
    executeLibvirt(request, writer, {
      request: writer.journal.request,
      plan,
      writer,
      ref,
      record,
      events,
      base: inspection.base,
      ...(request.signal ? { signal: request.signal } : {}),
      ...(request.onProgress ? { onProgress: request.onProgress } : {}),
    }),
  );
}
