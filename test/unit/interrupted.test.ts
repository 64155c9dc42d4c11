// What an aborted merge says of the chain it leaves: as it was, with what the run changed anyway (stale bitmaps pruned,
// a base LV grown), or unfinished with the step the same command goes on from.
import { expect } from 'chai';
import type { JournalWriter } from '../../src/engine/journal-writer.js';
import type { Journal } from '../../src/engine/journal.js';
import { interruptedError } from '../../src/jobs/interrupted.js';

/** A cold merge's journal of a base LV, with the given steps done. */
function journalWith(steps: Journal['steps'], kind?: Journal['kind']): Journal {
  const volume = (name: string) => ({ path: `/dev/vg/${name}`, realPath: `/dev/dm-${name.length}`, identity: `lv:${name}`, kind: 'block' as const });
  return {
    version: 1,
    jobId: 'job-1',
    ...(kind ? { kind } : {}),
    state: 'failed',
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    attempt: 1,
    request: { top: '/dev/vg/top', base: '/dev/vg/base', leafRoom: 0 },
    volumes: { top: volume('top'), base: volume('base') },
    plan: {
      top: '/dev/vg/top',
      base: '/dev/vg/base',
      baseKind: 'block',
      neededSize: 268435456,
      baseSize: 134217728,
      extendTo: 268435456,
      extentSize: 4194304,
      bitmaps: { prune: ['stale0'], add: [], merge: [], enable: [], skipped: [] },
    },
    steps,
  };
}

/** The message of a SIGINT that stopped the run of this journal. */
function messageOf(journal: Journal): string {
  const controller = new AbortController();
  controller.abort(new Error('interrupted by SIGINT'));
  return interruptedError({ journal } as unknown as JournalWriter, controller.signal, new Error('aborted')).message;
}

const done = (facts?: Record<string, unknown>) => ({ status: 'done' as const, startedAt: '2026-01-01T00:00:00.000Z', endedAt: '2026-01-01T00:00:01.000Z', ...(facts ? { facts } : {}) });

describe('interrupted: the message of an aborted merge', () => {
  it('says that the base LV the run grew stays grown, and by how much', () => {
    const message = messageOf(journalWith({ backup: done(), prune: done({ removed: ['stale0'] }), extend: done({ extended: true, sizeBytes: 268435456 }) }));
    expect(message).to.include('the chain is as it was');
    expect(message).to.include("base's LV was extended to 268435456 bytes and stays so");
    expect(message).to.include("base's stale bitmaps stale0 were pruned");
  });

  it('says "or more" for a live merge, whose watch may have grown the LV after the step', () => {
    const message = messageOf(journalWith({ extend: done({ extended: true, sizeBytes: 268435456 }) }, 'live'));
    expect(message).to.include("base's LV was extended to 268435456 bytes or more and stays so");
  });

  it('says nothing of an LV that the run did not grow', () => {
    const message = messageOf(journalWith({ prune: done({ removed: ['stale0'] }), extend: done({ extended: false }) }));
    expect(message).not.to.include('extended');
  });
});
