// The executor over the in-memory store, driving the cold merge's own table (its names, journaling and undo) with
// step bodies replaced by recorders: a fresh run, a resume from every step, a failure inside every step, the undo.
import { expect } from 'chai';
import { executeTable } from '../../src/engine/executor.js';
import { JournalWriter } from '../../src/engine/journal-writer.js';
import { firstUnfinishedStep, type Journal } from '../../src/engine/journal.js';
import { MemoryJobStore } from '../../src/engine/memory-store.js';
import { RestoredFailure, type Step, type StepTable } from '../../src/engine/step.js';
import { VolmergeError } from '../../src/errors.js';
import type { MergePlan } from '../../src/merge/plan.js';
import { COLD_MERGE, COLD_MERGE_SHAPE } from '../../src/ways/cold/steps/table.js';
import type { MergeContext } from '../../src/ways/cold/steps/context.js';

/** A plan that asks for every step (all durable), or for none of the optional ones (quiet where the table allows). */
function plan(everything: boolean): MergePlan {
  const child = { path: '/c', realPath: '/c', identity: 'file:1:3', backingBefore: 'top', backingAfter: 'base' };
  return {
    top: '/t',
    base: '/b',
    baseKind: 'lv',
    neededSize: 1,
    baseSize: 1,
    extendTo: everything ? 8 : null,
    extentSize: 4,
    bitmaps: { prune: everything ? ['s1'] : [], add: [], merge: everything ? ['b1'] : [], enable: [], skipped: [] },
    finalize: everything
      ? { child, retireTop: true, removeTop: true, shrink: { planned: true, leafRoom: 0, extentSize: 4 } }
      : { child: null, retireTop: false, removeTop: false, shrink: null },
  };
}

function journal(p: MergePlan): Journal {
  const volume = { path: '/v', realPath: '/v', identity: 'lv:vg/v', kind: 'lv' as const, lv: { vg: 'vg', name: 'v' } };
  return { version: 1, jobId: 'job-1', state: 'running', createdAt: '2026-01-01T00:00:00Z', updatedAt: '2026-01-01T00:00:00Z', attempt: 1, request: { top: '/t', base: '/b', leafRoom: 0 }, volumes: { top: volume, base: volume }, plan: p, steps: {} };
}

/** A run of the cold table whose step bodies record their calls; failAt makes one of them throw. */
class Recorder {
  readonly calls: string[] = [];
  failAt: string | undefined;
  failWith: (name: string) => Error = (name) => new VolmergeError('qemu-failed', `${name} failed`);
  readonly table: StepTable<MergeContext> = COLD_MERGE.map(
    (step): Step<MergeContext> => ({
      ...step,
      run: async () => {
        this.calls.push(step.name);
        if (step.name === this.failAt) throw this.failWith(step.name);
        return { ran: step.name };
      },
      ...(step.undo ? { undo: async () => void this.calls.push(`undo ${step.name}`) } : {}),
    }),
  );
}

async function start(store: MemoryJobStore, p: MergePlan): Promise<{ writer: JournalWriter; context: MergeContext }> {
  const writer = new JournalWriter(store, journal(p));
  await writer.update(() => undefined);
  const context = { request: { top: '/t', base: '/b' }, plan: p, volumes: { top: journal(p).volumes.top, base: journal(p).volumes.base }, writer } as MergeContext;
  return { writer, context };
}

/** The journal as a crash would leave it: what was last written to the store. */
async function afterCrash(store: MemoryJobStore): Promise<Journal> {
  const entry = await store.read('job-1');
  if (!entry || !('journal' in entry)) throw new Error('no journal written');
  return entry.journal;
}

/**
 * The writes a whole run makes: one to create the journal and one per durable step's start, which also carries the
 * done of the durable step before it when only idle steps lie between them; a durable step followed by a quiet or
 * repeatable one (or by none) writes its own done. Quiet, repeatable and idle steps ride along with them.
 */
function expectedWrites(kinds: readonly string[]): number {
  const nextActive = (i: number): string | undefined => kinds.slice(i + 1).find((kind) => kind !== 'idle');
  const ownDone = kinds.filter((kind, i) => kind === 'durable' && nextActive(i) !== 'durable').length;
  return 1 + kinds.filter((kind) => kind === 'durable').length + ownDone;
}

describe('executor over the in-memory store', () => {
  for (const everything of [true, false]) {
    it(`runs the cold table in order and records every step as done (${everything ? 'every step asked' : 'nothing optional asked'})`, async () => {
      const store = new MemoryJobStore();
      const recorder = new Recorder();
      const { writer, context } = await start(store, plan(everything));
      await executeTable(recorder.table, context, writer, { describe: 'test merge' });
      expect(recorder.calls).to.deep.equal(COLD_MERGE_SHAPE.steps);
      expect(firstUnfinishedStep(writer.journal, COLD_MERGE_SHAPE)).to.equal(undefined);
      expect(store.writes).to.equal(expectedWrites(COLD_MERGE.map((step) => step.journaling(context))));
      const durable = COLD_MERGE.filter((step) => step.journaling(context) === 'durable').length;
      if (everything) expect(store.writes, 'fewer writes than a start and a done per durable step').to.be.below(1 + 2 * durable);
    });
  }

  it("writes prune's done with mark's start when the extend between them is idle (a file base): one write fewer", async () => {
    const store = new MemoryJobStore();
    const recorder = new Recorder();
    recorder.failAt = 'mark';
    recorder.failWith = () => new Error('power cut');
    const filePlan: MergePlan = { ...plan(true), baseKind: 'file', extendTo: null, finalize: plan(false).finalize };
    const { writer, context } = await start(store, filePlan);
    const kinds = COLD_MERGE.map((step) => step.journaling(context));
    expect(kinds.slice(1, 4)).to.deep.equal(['durable', 'idle', 'durable']);
    await executeTable(recorder.table, context, writer, { describe: 'test merge' }).catch(() => undefined);
    const left = await afterCrash(store);
    expect(left.steps.prune?.status, "prune's done went to disk with mark's start").to.equal('done');
    expect(left.steps.mark?.status).to.equal('started');
    // Created, prune started, mark started (with prune and extend done): three writes where there were four.
    expect(store.writes).to.equal(3);
  });

  for (const [index, name] of COLD_MERGE_SHAPE.steps.entries()) {
    it(`resumes after a crash inside ${name}: steps recorded before it are skipped, the rest run once`, async () => {
      const store = new MemoryJobStore();
      const first = new Recorder();
      first.failAt = name;
      first.failWith = () => new Error('power cut');
      const { writer, context } = await start(store, plan(true));
      await executeTable(first.table, context, writer, { describe: 'test merge' }).then(
        () => expect.fail('the crash did not stop the run'),
        (error: Error) => expect(error.message).to.equal('power cut'),
      );
      expect(first.calls).to.deep.equal(COLD_MERGE_SHAPE.steps.slice(0, index + 1));
      const left = await afterCrash(store);
      const resumeFrom = firstUnfinishedStep(left, COLD_MERGE_SHAPE) as string;
      // A durable step is recorded as done before the next starts; only quiet, repeatable and idle ones may have to run again.
      const from = COLD_MERGE_SHAPE.steps.indexOf(resumeFrom);
      expect(from).to.be.at.most(index);
      // A durable step runs again only when the crash hit an idle step after it, with nothing but idle steps between:
      // its done was waiting for the next durable write (an idle step does nothing, so the window is a moment).
      const kinds = COLD_MERGE.map((step) => step.journaling(context));
      for (let again = from; again < index; again += 1) {
        const onlyIdleAfter = kinds.slice(again + 1, index + 1).every((kind) => kind === 'idle');
        if (!onlyIdleAfter) expect(kinds[again], `${COLD_MERGE_SHAPE.steps[again]} runs again`).to.not.equal('durable');
      }
      const second = new Recorder();
      const resumed = new JournalWriter(store, left);
      await executeTable(second.table, { ...context, writer: resumed }, resumed, { describe: 'test merge' });
      expect(second.calls).to.deep.equal(COLD_MERGE_SHAPE.steps.slice(from));
      expect(firstUnfinishedStep(resumed.journal, COLD_MERGE_SHAPE)).to.equal(undefined);
    });
  }

  for (const name of COLD_MERGE_SHAPE.steps) {
    it(`stops at a failure inside ${name}: nothing after it runs, and only a durable step stays recorded as started`, async () => {
      const store = new MemoryJobStore();
      const recorder = new Recorder();
      recorder.failAt = name;
      const { writer, context } = await start(store, plan(true));
      const error = await executeTable(recorder.table, context, writer, { describe: 'test merge' }).then(
        () => undefined,
        (thrown: unknown) => thrown,
      );
      expect(error).to.be.instanceOf(VolmergeError).with.property('message', `${name} failed`);
      expect(recorder.calls.at(-1)).to.equal(name);
      expect(recorder.calls).to.not.include('undo retire');
      const durable = COLD_MERGE.find((step) => step.name === name)?.journaling(context) === 'durable';
      expect((await afterCrash(store)).steps[name]?.status, 'a quiet step leaves no record of its own').to.equal(durable ? 'started' : undefined);
    });
  }

  it("undoes retire when the rebase fails and puts the child back (RestoredFailure), and forgets it so that it runs again", async () => {
    const store = new MemoryJobStore();
    const recorder = new Recorder();
    recorder.failAt = 'rebase';
    recorder.failWith = () => new RestoredFailure(new VolmergeError('rebase-failed', 'child is read-only'));
    const { writer, context } = await start(store, plan(true));
    const error = await executeTable(recorder.table, context, writer, { describe: 'test merge' }).then(() => undefined, (thrown: unknown) => thrown);
    expect(error).to.be.instanceOf(VolmergeError).with.property('code', 'rebase-failed');
    expect(recorder.calls.slice(-2)).to.deep.equal(['rebase', 'undo retire']);
    const left = await afterCrash(store);
    expect(left.steps.retire, 'retire forgotten').to.equal(undefined);
    expect(left.steps.unmark?.status, 'the steps before it stay done').to.equal('done');
    const again = new Recorder();
    const resumed = new JournalWriter(store, left);
    await executeTable(again.table, { ...context, writer: resumed }, resumed, { describe: 'test merge' });
    expect(again.calls).to.deep.equal(['retire', 'rebase', 'shrink', 'remove-top']);
  });

  it('stops before the next step once aborted, with "aborted" naming the job and the step', async () => {
    const store = new MemoryJobStore();
    const controller = new AbortController();
    const recorder = new Recorder();
    const { writer, context } = await start(store, plan(true));
    const table = recorder.table.map((step) => (step.name === 'extend' ? { ...step, run: async () => (controller.abort(), { ran: 'extend' }) } : step));
    const error = await executeTable(table, context, writer, { describe: 'merge of /t into /b', signal: controller.signal }).then(() => undefined, (thrown: unknown) => thrown);
    expect(error).to.be.instanceOf(VolmergeError).with.property('message', 'merge of /t into /b aborted before mark');
    expect((error as VolmergeError).code).to.equal('aborted');
  });

  it('runs to the end once a step that finishes on abort has started, in this run or an earlier one', async () => {
    const controller = new AbortController();
    const recorder = new Recorder();
    // The commit finishes on abort here; the abort comes inside it.
    const table = recorder.table.map((step) =>
      step.name === 'commit' ? { ...step, finishesOnAbort: true, run: async () => (controller.abort(), recorder.calls.push('commit'), { ran: 'commit' }) } : step,
    );
    const store = new MemoryJobStore();
    const { writer, context } = await start(store, plan(true));
    await executeTable(table, context, writer, { describe: 'test merge', signal: controller.signal });
    expect(recorder.calls.slice(recorder.calls.indexOf('commit'))).to.deep.equal(['commit', 'leaks', 'bitmaps', 'verify', 'unmark', 'retire', 'rebase', 'shrink', 'remove-top']);
    // A later run of a journal whose commit had started: aborted from the start, it still runs the rest.
    const crashed = structuredClone(writer.journal);
    for (const name of ['leaks', 'bitmaps', 'verify', 'unmark', 'retire', 'rebase', 'shrink', 'remove-top']) delete crashed.steps[name];
    const again = new Recorder();
    const resumed = new JournalWriter(store, crashed);
    const later = again.table.map((step) => (step.name === 'commit' ? { ...step, finishesOnAbort: true } : step));
    await executeTable(later, { ...context, writer: resumed }, resumed, { describe: 'test merge', signal: AbortSignal.abort() });
    expect(again.calls).to.deep.equal(['leaks', 'bitmaps', 'verify', 'unmark', 'retire', 'rebase', 'shrink', 'remove-top']);
    // Before such a step has started, the abort stops the run.
    const fresh = new Recorder();
    const other = await start(new MemoryJobStore(), plan(true));
    const stopped = fresh.table.map((step) => (step.name === 'commit' ? { ...step, finishesOnAbort: true } : step));
    const error = await executeTable(stopped, other.context, other.writer, { describe: 'test merge', signal: AbortSignal.abort() }).then(() => undefined, (thrown: unknown) => thrown);
    expect(error).to.have.property('code', 'aborted');
    expect(fresh.calls).to.deep.equal([]);
  });
});
