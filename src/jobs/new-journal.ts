// A new job's journal, as every way into a merge writes it: the request made durable, the volumes as journals record
// them (path, real path, identity, kind, VG/LV), the plan, and what the way adds (its kind and its own record).
import { resolve as resolvePath } from 'node:path';
import { JournalWriter } from '../engine/journal-writer.js';
import { now, type Journal, type JournalVolume } from '../engine/journal.js';
import type { JobStore } from '../engine/store.js';
import type { Inspection } from '../merge/inspect.js';
import type { MergePlan } from '../merge/plan.js';
import { durableRequest } from '../merge/request.js';
import type { Volume } from '../storage/volume.js';
import type { MergeJobRequest } from './job-request.js';

/** The journal's record of a volume. */
export function journalVolume(volume: Volume): JournalVolume {
  return {
    path: resolvePath(volume.path),
    realPath: volume.realPath,
    identity: volume.identity,
    kind: volume.kind,
    ...(volume.lv ? { lv: { vg: volume.lv.vg, name: volume.lv.name } } : {}),
  };
}

/** The request, volumes and plan of a journal, as a new run records them. */
export function journalBasics(request: MergeJobRequest, inspection: Pick<Inspection, 'top' | 'base'>, plan: MergePlan): Pick<Journal, 'request' | 'volumes' | 'plan'> {
  return {
    request: durableRequest(request, (path) => resolvePath(path)),
    volumes: { top: journalVolume(inspection.top), base: journalVolume(inspection.base) },
    plan,
  };
}

/** Writes a new job's journal (the first attempt, running, no step begun) and returns its writer. */
export async function startJournal(
  store: JobStore,
  request: MergeJobRequest,
  inspection: Pick<Inspection, 'top' | 'base'>,
  plan: MergePlan,
  way: Pick<Journal, 'kind' | 'live' | 'libvirt'> = {},
): Promise<JournalWriter> {
  const created: Journal = {
    version: 1,
    jobId: request.jobId,
    ...way,
    state: 'running',
    createdAt: now(),
    updatedAt: now(),
    attempt: 1,
    pid: process.pid,
    ...journalBasics(request, inspection, plan),
    steps: {},
  };
  const writer = new JournalWriter(store, created);
  await writer.update(() => undefined);
  return writer;
}
