// The journal's file handling and bookkeeping: atomic writes, schema checks on read, takeovers, crash-point parsing.
import { expect } from 'chai';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VolmergeError } from '../../src/errors.js';
import { lockPathFor } from '../../src/jobs/chain-lock.js';
import { HostJobStore, journalPath, readJournal, scanJournals, writeJournal } from '../../src/engine/host-store.js';
import { JournalWriter } from '../../src/engine/journal-writer.js';
import { firstUnfinishedStep, interruptedSteps, isUnfinished, needsRecovery, pastPointOfNoReturn, type Journal } from '../../src/engine/journal.js';
import { takeOver } from '../../src/jobs/unfinished.js';
import { COLD_MERGE_SHAPE } from '../../src/ways/cold/steps/table.js';
import { crashTarget } from '../../src/engine/crash-point.js';
import { markHolderFor } from '../../src/storage/marks.js';

function sampleJournal(jobId = 'job-1'): Journal {
  const volume = (name: string) => ({ path: `/img/${name}`, realPath: `/img/${name}`, identity: `file:1:${name.length}`, kind: 'file' as const });
  return {
    version: 1,
    jobId,
    state: 'running',
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    attempt: 1,
    request: { top: '/img/top', base: '/img/base', leafRoom: 0 },
    volumes: { top: volume('top'), base: volume('base') },
    plan: {
      top: '/img/top',
      base: '/img/base',
      baseKind: 'file',
      neededSize: 1048576,
      baseSize: 196608,
      extendTo: null,
      extentSize: null,
      bitmaps: { prune: ['stale0'], add: [{ name: 'toponly', granularity: 65536 }], merge: ['shared', 'toponly'], enable: [], skipped: [] },
    },
    steps: {},
  };
}

async function refusal(promise: Promise<unknown>): Promise<VolmergeError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof VolmergeError) return error;
    throw error;
  }
  throw new Error('expected a VolmergeError');
}

describe('journal files', () => {
  let stateDir: string;
  beforeEach(async () => {
    stateDir = await mkdtemp(join(tmpdir(), 'volmerge-journal-'));
  });
  afterEach(async () => {
    await rm(stateDir, { recursive: true, force: true });
  });

  it('writes atomically (no temp file left) and reads back the same journal', async () => {
    const writer = new JournalWriter(stateDir, sampleJournal());
    await writer.update(() => undefined);
    await writer.started('backup');
    await writer.done('backup', { top: ['shared'] });
    await writer.started('prune');
    expect(await readdir(join(stateDir, 'jobs', 'job-1'))).to.deep.equal(['journal.json']);
    const read = await readJournal(journalPath(stateDir, 'job-1'));
    expect(read).to.deep.equal(writer.journal);
    expect(read.steps.backup?.status).to.equal('done');
    expect(read.steps.prune?.status).to.equal('started');
  });

  it('writes a step that changed nothing only with the next write, where it reads as done before the next step starts', async () => {
    const writer = new JournalWriter(stateDir, sampleJournal());
    await writer.update(() => undefined);
    for (const step of ['backup', 'prune'] as const) {
      await writer.started(step);
      await writer.done(step, {});
    }
    writer.doneQuietly('extend', { extended: false });
    expect(writer.isDone('extend')).to.equal(true);
    const before = await readJournal(journalPath(stateDir, 'job-1'));
    expect(before.steps.extend, 'nothing written for it yet').to.equal(undefined);
    expect(firstUnfinishedStep(before, COLD_MERGE_SHAPE), 'a crash now runs it again').to.equal('extend');
    await writer.started('mark');
    const after = await readJournal(journalPath(stateDir, 'job-1'));
    expect(after.steps.extend).to.deep.include({ status: 'done', facts: { extended: false } });
    expect(after.steps.mark?.status).to.equal('started');
    expect(firstUnfinishedStep(after, COLD_MERGE_SHAPE)).to.equal('mark');
  });

  it('writes a staged change (the backup step naming its images) only with the next write', async () => {
    const writer = new JournalWriter(stateDir, sampleJournal());
    await writer.update(() => undefined);
    const backup = { top: { image: 'top-bitmaps.qcow2', bitmaps: [{ name: 'b1', granularity: 65536, enabled: true }] }, base: { image: 'base-bitmaps.qcow2', bitmaps: [] } };
    writer.stage((j) => {
      j.backup = backup;
    });
    writer.doneQuietly('backup', { top: ['b1'], base: [] });
    expect(writer.journal.backup).to.deep.equal(backup);
    const before = await readJournal(journalPath(stateDir, 'job-1'));
    expect(before.backup, 'nothing written yet').to.equal(undefined);
    expect(firstUnfinishedStep(before, COLD_MERGE_SHAPE), 'a crash now takes the backup again').to.equal('backup');
    await writer.started('prune');
    const after = await readJournal(journalPath(stateDir, 'job-1'));
    expect(after.backup, 'named before prune changes a bitmap').to.deep.equal(backup);
    expect(after.steps.backup?.status).to.equal('done');
    expect(after.steps.prune?.status).to.equal('started');
  });

  it('refuses to write a journal that does not match the schema', async () => {
    const bad = { ...sampleJournal(), state: 'confused' } as unknown as Journal;
    const error = await refusal(writeJournal(stateDir, bad));
    expect(error.code).to.equal('needs-attention');
    expect(error.message).to.contain('journal.schema.json');
  });

  it('calls an unparsable, invalid or misplaced journal "needs attention", naming the file', async () => {
    const dir = join(stateDir, 'jobs', 'job-1');
    await mkdir(dir, { recursive: true });
    const path = join(dir, 'journal.json');
    await writeFile(path, '{"version": 1, "jobId"');
    expect((await refusal(readJournal(path))).message).to.contain(path).and.to.contain('not valid JSON');
    await writeFile(path, JSON.stringify({ version: 1, jobId: 'job-1' }));
    expect((await refusal(readJournal(path))).message).to.contain('does not match journal.schema.json');
    await writeFile(path, JSON.stringify(sampleJournal('job-2')));
    expect((await refusal(readJournal(path))).message).to.contain("not the folder's job-1");
    await writeFile(path, JSON.stringify({ ...sampleJournal('job-2'), resumedFrom: 'job-1' }));
    expect((await readJournal(path)).jobId, 'a journal caught mid-takeover is fine').to.equal('job-2');
  });

  it('scans every job, listing unreadable journals with their error and skipping folders without one', async () => {
    await writeJournal(stateDir, sampleJournal('good'));
    await mkdir(join(stateDir, 'jobs', 'bad'), { recursive: true });
    await writeFile(join(stateDir, 'jobs', 'bad', 'journal.json'), 'garbage');
    await mkdir(join(stateDir, 'jobs', 'empty'), { recursive: true });
    const found = await scanJournals(stateDir);
    expect(found.map((f) => [f.folder, 'journal' in f])).to.deep.equal([
      ['bad', false],
      ['good', true],
    ]);
    expect(await scanJournals(join(stateDir, 'missing'))).to.deep.equal([]);
  });

  it('takes a journal over under a new job id: rewritten, then its folder renamed', async () => {
    const old = sampleJournal('cli-1');
    old.steps = { backup: { status: 'done', startedAt: old.createdAt }, mark: { status: 'done', startedAt: old.createdAt } };
    old.state = 'failed';
    old.error = { code: 'aborted', message: 'stopped' };
    await writeJournal(stateDir, old);
    await writeFile(join(stateDir, 'jobs', 'cli-1', 'top-bitmaps.qcow2'), 'backup');
    const writer = await takeOver(new HostJobStore(stateDir), { key: 'cli-1', journal: old }, 'cli-2');
    expect(await readdir(join(stateDir, 'jobs'))).to.deep.equal(['cli-2']);
    const read = await readJournal(journalPath(stateDir, 'cli-2'));
    expect(read).to.deep.equal(writer.journal);
    expect(read).to.deep.include({ jobId: 'cli-2', resumedFrom: 'cli-1', attempt: 2, state: 'running' });
    expect(read.error).to.equal(undefined);
    expect(await readFile(join(stateDir, 'jobs', 'cli-2', 'top-bitmaps.qcow2'), 'utf8'), 'the backup moves with it').to.equal('backup');
    await writeJournal(stateDir, sampleJournal('cli-3'));
    expect((await refusal(takeOver(new HostJobStore(stateDir), { key: 'cli-2', journal: read }, 'cli-3'))).code).to.equal('job-exists');
  });
});

describe('journal bookkeeping', () => {
  const started = '2026-01-01T00:00:00.000Z';

  it('finds the first unfinished step and the interrupted ones', () => {
    const journal = sampleJournal();
    expect(firstUnfinishedStep(journal, COLD_MERGE_SHAPE)).to.equal('backup');
    journal.steps = { backup: { status: 'done', startedAt: started }, prune: { status: 'started', startedAt: started } };
    expect(firstUnfinishedStep(journal, COLD_MERGE_SHAPE)).to.equal('prune');
    expect(interruptedSteps(journal, COLD_MERGE_SHAPE)).to.deep.equal(['prune']);
    expect(pastPointOfNoReturn(journal, COLD_MERGE_SHAPE)).to.equal(false);
  });

  it('keeps a failed job only when base may hold part of top or a bitmap-writing step was cut short', () => {
    const journal = sampleJournal();
    journal.state = 'failed';
    journal.steps = { backup: { status: 'done', startedAt: started }, prune: { status: 'done', startedAt: started }, extend: { status: 'failed', startedAt: started } };
    expect(needsRecovery(journal, COLD_MERGE_SHAPE)).to.equal(false);
    expect(isUnfinished(journal, COLD_MERGE_SHAPE)).to.equal(false);
    journal.steps.prune = { status: 'failed', startedAt: started };
    expect(needsRecovery(journal, COLD_MERGE_SHAPE), 'a broken prune may leave base bitmaps in-use').to.equal(true);
    journal.steps.prune = { status: 'done', startedAt: started };
    journal.steps.mark = { status: 'started', startedAt: started };
    expect(pastPointOfNoReturn(journal, COLD_MERGE_SHAPE)).to.equal(true);
    expect(isUnfinished(journal, COLD_MERGE_SHAPE)).to.equal(true);
    journal.state = 'running';
    journal.steps = {};
    expect(isUnfinished(journal, COLD_MERGE_SHAPE), 'a running journal is unfinished whatever its steps').to.equal(true);
  });
});

describe('crash points', () => {
  it('parses STEP:before|after and commit:during[:PERCENT]; anything else is inert', () => {
    expect(crashTarget('commit:before')).to.deep.equal({ step: 'commit', when: 'before', percent: 30 });
    expect(crashTarget('commit:during:75')).to.deep.equal({ step: 'commit', when: 'during', percent: 75 });
    expect(crashTarget('verify:after')).to.deep.equal({ step: 'verify', when: 'after', percent: 30 });
    for (const value of [undefined, '', 'commit', 'commit:sometime', 'commit:during:x', 'rm -rf /']) expect(crashTarget(value)).to.equal(undefined);
  });
});

describe('lock and mark locations', () => {
  it('gives distinct identities distinct lock files, even when their readable names collide', () => {
    expect(lockPathFor('lv:a_b/c', '/l')).not.to.equal(lockPathFor('lv:a/b_c', '/l'));
    expect(lockPathFor('lv:vg/base', '/l')).to.match(/^\/l\/lv_vg_base-[0-9a-f]{16}\.lock$/);
  });

  it('keeps the mark as an LV tag, beside a file, or in the state folder for a plain block device', () => {
    expect(markHolderFor({ kind: 'lv', realPath: '/dev/dm-3', identity: 'lv:vg/b', lv: { vg: 'vg', name: 'b' } }, '/s')).to.deep.equal({ kind: 'lv', vg: 'vg', lv: 'b' });
    expect(markHolderFor({ kind: 'file', realPath: '/d/base.qcow2', identity: 'file:1:2' }, '/s')).to.deep.equal({ kind: 'sidecar', path: '/d/base.qcow2.volmerge-merging' });
    expect(markHolderFor({ kind: 'block', realPath: '/dev/loop3', identity: 'block:7:3' }, '/s')).to.deep.equal({ kind: 'sidecar', path: '/s/marks/block_7_3.json' });
  });
});
