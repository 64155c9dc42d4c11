// The end of a merge as data: step order, the --json summary, the journal schema, where a retired mark is kept, crash targets.
import { expect } from 'chai';
import { checkJournal, type Journal } from '../../src/engine/journal.js';
import { topRemovalStarted } from '../../src/ways/cold/steps/table.js';
import { crashTarget } from '../../src/engine/crash-point.js';
import type { FinalizePlan } from '../../src/merge/finalize-plan.js';
import type { MergePlan } from '../../src/merge/plan.js';
import { planSummary } from '../../src/cli/plan-summary.js';
import { MERGE_STEPS } from '../../src/ways/cold/steps/table.js';
import { describeMarkHolder, markHolderFor } from '../../src/storage/marks.js';
import { checkAgainst } from '../../src/schema.js';

const MiB = 1024 * 1024;

const finalize: FinalizePlan = {
  child: { path: '/img/child', realPath: '/img/child', identity: 'file:1:3', backingBefore: 'top', backingAfter: 'base' },
  retireTop: true,
  removeTop: true,
  shrink: { planned: true, leafRoom: 0, extentSize: 4 * MiB },
};

const plan: MergePlan = {
  top: '/img/top',
  base: '/img/base',
  baseKind: 'lv',
  neededSize: 10 * MiB,
  baseSize: 128 * MiB,
  extendTo: null,
  extentSize: 4 * MiB,
  bitmaps: { prune: [], add: [], merge: ['b'], enable: [], skipped: [] },
  finalize,
};

/** The plan as journals written before the end of the merge existed hold it. */
function withoutFinalize(): MergePlan {
  const old = structuredClone(plan);
  delete old.finalize;
  return old;
}

function journal(steps: Journal['steps'], withPlan: MergePlan = plan): Journal {
  const volume = { path: '/img/x', realPath: '/img/x', identity: 'file:1:2', kind: 'file' as const };
  return {
    version: 1,
    jobId: 'job-1',
    state: 'running',
    createdAt: '2026-01-01T00:00:00Z',
    updatedAt: '2026-01-01T00:00:00Z',
    attempt: 1,
    request: { top: '/img/top', base: '/img/base', leafRoom: 0 },
    volumes: { top: volume, base: volume },
    plan: withPlan,
    steps,
  };
}

describe('finishing a merge, as data', () => {
  it('runs retire, rebase, shrink and remove-top after unmark, remove-top last', () => {
    expect(MERGE_STEPS.slice(MERGE_STEPS.indexOf('unmark'))).to.deep.equal(['unmark', 'retire', 'rebase', 'shrink', 'remove-top']);
  });

  it('shows the end of the merge in the --json plan, within merge-result.schema.json; a plan without it keeps the old shape', () => {
    const summary = planSummary(plan);
    expect(summary.finalize).to.deep.equal({ child: '/img/child', retireTop: true, removeTop: true, shrink: { planned: true, leafRoom: 0 } });
    checkAgainst('merge-result.schema.json', { status: 'planned', plan: summary }, 'test');
    const skipped = planSummary({ ...plan, finalize: { ...finalize, child: null, shrink: { planned: false, reason: 'base is a file' } } });
    expect(skipped.finalize?.shrink).to.deep.equal({ planned: false, reason: 'base is a file' });
    expect(planSummary(withoutFinalize())).not.to.have.property('finalize');
  });

  it('journals plans with and without the end of the merge, and the new steps', () => {
    const at = '2026-01-01T00:00:01Z';
    checkJournal(journal({ retire: { status: 'done', startedAt: at }, 'remove-top': { status: 'started', startedAt: at } }), 'j');
    checkJournal(journal({}, withoutFinalize()), 'j');
    expect(() => checkJournal(journal({}, { ...plan, finalize: { ...finalize, shrink: { planned: true } as never } }), 'j')).to.throw(/does not match/);
  });

  it('tells from the journal whether top may be gone by the job\'s own doing', () => {
    expect(topRemovalStarted(journal({ shrink: { status: 'done', startedAt: 'x'.repeat(10) } }))).to.equal(false);
    expect(topRemovalStarted(journal({ 'remove-top': { status: 'started', startedAt: 'x'.repeat(10) } }))).to.equal(true);
  });

  it('keeps the retired mark apart from the mid-merge mark', () => {
    const lv = { kind: 'lv' as const, realPath: '/dev/dm-3', identity: 'lv:vg/top', lv: { vg: 'vg', name: 'top' } };
    expect(describeMarkHolder(markHolderFor(lv, '/state', 'retired'))).to.equal('LV tag VOLMERGE_RETIRED_* of vg/top');
    expect(describeMarkHolder(markHolderFor(lv, '/state'))).to.equal('LV tag VOLMERGE_MERGING_* of vg/top');
    const file = { kind: 'file' as const, realPath: '/img/top', identity: 'file:1:2' };
    expect(markHolderFor(file, '/state', 'retired')).to.deep.equal({ kind: 'sidecar', path: '/img/top.volmerge-retired' });
    const block = { kind: 'block' as const, realPath: '/dev/loop3', identity: 'block:7:3' };
    expect(markHolderFor(block, '/state', 'retired')).to.deep.equal({ kind: 'sidecar', path: '/state/marks/block_7_3.retired.json' });
    expect(markHolderFor(block, '/state')).to.deep.equal({ kind: 'sidecar', path: '/state/marks/block_7_3.json' });
  });

  it('accepts crash points at the new steps, remove-top included', () => {
    expect(crashTarget('remove-top:before')).to.deep.equal({ step: 'remove-top', when: 'before', percent: 30 });
    expect(crashTarget('rebase:after')).to.deep.equal({ step: 'rebase', when: 'after', percent: 30 });
  });
});
