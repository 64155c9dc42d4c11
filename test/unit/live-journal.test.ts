// A live merge's journal: its kind picks the live table's shape everywhere journals are read (unfinished, next step,
// status), and the schema takes its live record and refuses one that lacks qemu's job id.
import { expect } from 'chai';
import { checkJournal, isUnfinished, needsRecovery, type Journal } from '../../src/engine/journal.js';
import { decideStatus } from '../../src/jobs/status.js';
import { nextStep } from '../../src/jobs/unfinished.js';
import { COLD_MERGE_SHAPE } from '../../src/steps/cold-merge.js';
import { LIVE_MERGE_SHAPE } from '../../src/steps/live-merge.js';
import { shapeOfJournal } from '../../src/steps/shapes.js';

function liveJournal(): Journal {
  const volume = (name: string) => ({ path: `/img/${name}`, realPath: `/img/${name}`, identity: `file:1:${name.length}`, kind: 'file' as const });
  return {
    version: 1,
    jobId: 'cli-1-2',
    kind: 'live',
    live: {
      qemuJob: 'volmerge-cli-1-2',
      bitmaps: { prune: ['stale0'], disable: ['shared'], add: [{ name: 'toponly', granularity: 131072 }], merge: ['shared', 'toponly'], skipped: [] },
      chain: { active: true, topFormat: 'drive1-format', topStorage: 'drive1-storage', baseFormat: 'drive0-format', baseStorage: 'drive0-storage', root: 'drive1-format', device: 'disk0' },
    },
    state: 'running',
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    attempt: 1,
    request: { top: '/img/top', base: '/img/base', leafRoom: 0, qmp: '/run/vm.qmp' },
    volumes: { top: volume('top'), base: volume('base') },
    plan: {
      top: '/img/top',
      base: '/img/base',
      baseKind: 'file',
      neededSize: 1048576,
      baseSize: 196608,
      extendTo: null,
      extentSize: null,
      bitmaps: { prune: ['stale0'], add: [{ name: 'toponly', granularity: 131072 }], merge: ['shared', 'toponly'], enable: [], skipped: [] },
    },
    steps: {
      disable: { status: 'done', startedAt: '2026-01-01T00:00:01.000Z' },
      extend: { status: 'done', startedAt: '2026-01-01T00:00:01.000Z' },
      prune: { status: 'done', startedAt: '2026-01-01T00:00:01.500Z' },
      commit: { status: 'started', startedAt: '2026-01-01T00:00:02.000Z' },
    },
  };
}

describe('live journals', () => {
  it('validates against the journal schema, and refuses a live record without qemu job id', () => {
    expect(checkJournal(liveJournal(), 'test').kind).to.equal('live');
    const broken = liveJournal() as unknown as { live: Record<string, unknown> };
    delete broken.live.qemuJob;
    expect(() => checkJournal(broken, 'test')).to.throw(/journal test does not match/);
  });

  it('is read through the live table: next step, unfinished past the commit, cold shape when no kind is recorded', () => {
    const journal = liveJournal();
    expect(shapeOfJournal(journal)).to.equal(LIVE_MERGE_SHAPE);
    expect(LIVE_MERGE_SHAPE.steps).to.deep.equal(['disable', 'extend', 'prune', 'commit', 'wait', 'pivot', 'close']);
    expect(LIVE_MERGE_SHAPE.pointOfNoReturn).to.equal('commit');
    expect(nextStep(journal)).to.equal('commit');
    expect(needsRecovery({ ...journal, state: 'failed' }, shapeOfJournal(journal))).to.equal(true);
    expect(isUnfinished({ ...journal, state: 'failed' }, shapeOfJournal(journal))).to.equal(true);
    const cold: Journal = liveJournal();
    delete cold.kind;
    expect(shapeOfJournal(cold)).to.equal(COLD_MERGE_SHAPE);
  });

  it('shows in status as a live job, with the live steps and advice that names its QMP socket', () => {
    const status = decideStatus({
      base: '/img/base',
      identity: 'file:1:4',
      mark: null,
      lock: null,
      journal: liveJournal(),
      unreadJobs: [],
      stale: [],
      problems: [],
      storeDescription: 'state folder /var/lib/volmerge',
      shared: false,
    });
    expect(status.state).to.equal('unfinished');
    expect(status.job?.kind).to.equal('live');
    expect(status.job?.steps.map((s) => s.name)).to.deep.equal(LIVE_MERGE_SHAPE.steps);
    expect(status.advice).to.contain('--qmp /run/vm.qmp').and.to.contain('from step commit');
  });
});
