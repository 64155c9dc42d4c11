// Start-up recovery on shared VGs, the pure parts: which VGs lvmlockctl --info says this host has joined, which bases a
// VG's job LVs name (recorded lvs JSON), that a host without lvmlockd searches no shared VG and still starts; and how a
// resumed job puts base and top back: as its journal recorded them before the job on this boot, not as the killed run
// left them (recorded lvs and lvmlockctl --info of host a after its agent was killed mid-commit).
import { expect } from 'chai';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChainActivation, MAX_ACTIVATION_RECORDS, recordThisBoot, stateToLeave, type FoundActivation } from '../../src/engine/activation-record.js';
import { checkJournal, type Journal } from '../../src/engine/journal.js';
import { configureLog, log } from '../../src/log.js';
import { putBackChain } from '../../src/jobs/shared-chain.js';
import { jobBasesOf, startedSharedVgs, startedVgsFromInfo } from '../../src/jobs/shared-recovery.js';
import { bootId } from '../../src/os/proc.js';
import { parseAgainst } from '../../src/schema.js';
import { lvFactsFromRow } from '../../src/storage/lvm.js';
import { activateExclusively } from '../../src/storage/shared-vg.js';
import { fakeTool } from '../helpers/fake-tools.js';
import { fixture } from './fixtures.js';

describe('start-up recovery on shared VGs', () => {
  it('takes the started VGs from lvmlockctl --info, one each, whatever lock lines follow', () => {
    // Recorded on two hosts: vg0, and vgshared on host a after its agent was killed mid-commit (three LVs locked ex).
    const vg0 = fixture('lvm/lvmlockctl-info.txt');
    const vgshared = fixture('lvm/lvmlockctl-info-agent-killed.txt');
    expect(startedVgsFromInfo(vg0)).to.deep.equal(['vg0']);
    expect(startedVgsFromInfo(vgshared)).to.deep.equal(['vgshared']);
    expect(startedVgsFromInfo(`${vg0}${vgshared}`), 'two lockspaces, as lvmlockctl lists them one after the other').to.deep.equal(['vg0', 'vgshared']);
    expect(startedVgsFromInfo(''), 'lvmlockd runs, no lockspace started').to.deep.equal([]);
    expect(startedVgsFromInfo(`${vgshared}${vgshared}`), 'named twice').to.deep.equal(['vgshared']);
    expect(startedVgsFromInfo('VG vgx lock_type=idm x\nLK LV ex VG\n'), 'no lock type volmerge knows, no VG line').to.deep.equal([]);
  });

  it("finds the bases that a VG's job LVs name, only on LVs tagged as job LVs", () => {
    // Recorded on host a after its agent was killed mid-commit: base (marked), top, and the job LV.
    const report = parseAgainst<{ report: { lv: Record<string, string>[] }[] }>('lvs.schema.json', fixture('lvm/lvs-vg-agent-killed.json'), 'lvs');
    const lvs = (report.report[0]?.lv ?? []).map(lvFactsFromRow);
    expect(jobBasesOf(lvs)).to.deep.equal(['c5base']);
    expect(jobBasesOf(lvs.filter((lv) => !lv.name.startsWith('volmerge_job_'))), 'no job LV, no base').to.deep.equal([]);
    const job = lvs.find((lv) => lv.name.startsWith('volmerge_job_'));
    if (!job) throw new Error('the fixture has no job LV');
    const more = [
      { ...job, name: 'volmerge_job_cli-812-1764630000000', tags: ['VOLMERGE_JOB', 'VOLMERGE_JOB_BASE_c2base'] },
      { ...job, name: 'volmerge_job_5f0c7a52-1d3e-4b8a-9c6f-0e2d4a6b8c10', tags: ['VOLMERGE_JOB', 'VOLMERGE_JOB_BASE_c5base', 'VOLMERGE_JOB_BASEUUID_3Yq1aB-xQ2c-4kLm'] },
      { ...job, name: 'notes', tags: ['VOLMERGE_JOB_BASE_c9base'] },
    ];
    expect(jobBasesOf([...lvs, ...more]), "each base once, sorted; a base tag alone makes no job LV; the base's UUID tag names no base").to.deep.equal(['c2base', 'c5base']);
    expect(jobBasesOf([])).to.deep.equal([]);
  });

  describe('on a host without lvmlockd', () => {
    let bin: string;
    const saved = { ...process.env };
    beforeEach(async () => {
      bin = await mkdtemp(join(tmpdir(), 'volmerge-lvmlockctl-'));
      process.env.VOLMERGE_LVM_BIN_DIR = bin;
    });
    afterEach(async () => {
      process.env = { ...saved };
      await rm(bin, { recursive: true, force: true });
    });

    it('searches no shared VG when lvmlockctl fails (lvmlockd not running)', async () => {
      await fakeTool(bin, 'lvmlockctl', 'failing-command');
      process.env.FAKE_FAILURE_MESSAGE = 'Cannot connect to lvmlockd';
      expect(await startedSharedVgs()).to.deep.equal([]);
    });

    it('searches no shared VG when lvmlockctl is not installed', async () => {
      expect(await startedSharedVgs()).to.deep.equal([]);
    });
  });
});

/** A journal of job J on host a's chain c5 (vgshared/c5base, c5top), as a shared-VG job writes it. */
function chainJournal(activationBefore?: Journal['activationBefore']): Journal {
  const volume = (name: string) => ({ path: `/dev/vgshared/${name}`, realPath: '/dev/dm-3', identity: `lv:vgshared/${name}`, kind: 'lv' as const, lv: { vg: 'vgshared', name } });
  return {
    version: 1,
    jobId: '3f6b1c2a-9d4e-4f7a-8b5c-1e2d3c4b5a69',
    state: 'running',
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    attempt: 1,
    request: { top: '/dev/vgshared/c5top', base: '/dev/vgshared/c5base', leafRoom: 0 },
    volumes: { top: volume('c5top'), base: volume('c5base') },
    plan: {
      top: '/dev/vgshared/c5top',
      base: '/dev/vgshared/c5base',
      baseKind: 'lv',
      neededSize: 67108864,
      baseSize: 33554432,
      extendTo: 67108864,
      extentSize: 4194304,
      bitmaps: { prune: [], add: [], merge: [], enable: [], skipped: [] },
    },
    steps: { backup: { status: 'done', startedAt: '2026-01-01T00:00:01.000Z' }, commit: { status: 'started', startedAt: '2026-01-01T00:00:02.000Z' } },
    ...(activationBefore ? { activationBefore } : {}),
  };
}

const INACTIVE_BEFORE = [
  { vg: 'vgshared', lv: 'c5base', before: 'inactive' as const },
  { vg: 'vgshared', lv: 'c5top', before: 'inactive' as const },
];

describe('how a job leaves base and top on a shared VG', () => {
  const here = { bootId: 'f3a1c2d4-0000-4000-8000-00000000000a', host: 'a' };

  it("records how this run found the chain in a new journal, keeps the first run's record, and leaves a journal without records alone", () => {
    const fresh = chainJournal();
    const record = recordThisBoot(fresh, INACTIVE_BEFORE, here, true);
    expect(fresh.activationBefore).to.deep.equal([{ ...here, volumes: INACTIVE_BEFORE }]);
    expect(record).to.deep.equal({ ...here, volumes: INACTIVE_BEFORE });
    checkJournal(fresh, 'the fresh journal');

    // Resumed on the same boot after a kill: the killed run left both exclusive; the record of the first run stays.
    const leftExclusive: FoundActivation[] = INACTIVE_BEFORE.map((v) => ({ ...v, before: 'exclusive' }));
    const again = recordThisBoot(fresh, leftExclusive, here, false);
    expect(again?.volumes, 'the first run on this boot said how they were').to.deep.equal(INACTIVE_BEFORE);
    expect(fresh.activationBefore).to.have.length(1);

    // Taken over on another host (or after a reboot): that boot gets its own record, from what its run found.
    const elsewhere = { bootId: 'f3a1c2d4-0000-4000-8000-00000000000b', host: 'b' };
    expect(recordThisBoot(fresh, leftExclusive, elsewhere, false)?.volumes).to.deep.equal(leftExclusive);
    expect(fresh.activationBefore?.map((r) => r.host)).to.deep.equal(['a', 'b']);
    checkJournal(fresh, 'the journal with two records');

    // A journal written before records were kept: nothing is added (nobody knows how the chain was before the job).
    const old = chainJournal();
    expect(recordThisBoot(old, leftExclusive, here, false)).to.equal(undefined);
    expect(old).to.not.have.property('activationBefore');

    // The records stay bounded: the oldest boot goes first.
    const many = chainJournal(Array.from({ length: MAX_ACTIVATION_RECORDS }, (_, i) => ({ bootId: `boot-${i}`, host: 'a', volumes: INACTIVE_BEFORE })));
    recordThisBoot(many, INACTIVE_BEFORE, here, false);
    expect(many.activationBefore).to.have.length(MAX_ACTIVATION_RECORDS);
    expect(many.activationBefore?.[0]?.bootId).to.equal('boot-1');
    expect(many.activationBefore?.at(-1)?.bootId).to.equal(here.bootId);
    checkJournal(many, 'the journal with the most records');
  });

  it('leaves a volume as recorded only when this run found it active exclusively (what a killed run leaves)', () => {
    expect(stateToLeave('exclusive', 'inactive')).to.equal('inactive');
    expect(stateToLeave('exclusive', 'shared')).to.equal('shared');
    expect(stateToLeave('exclusive', undefined), 'no record: as found').to.equal('exclusive');
    expect(stateToLeave('inactive', 'shared'), 'someone deactivated it since').to.equal('inactive');
    expect(stateToLeave('shared', 'inactive'), 'someone activated it shared since').to.equal('shared');
  });

  describe('with lvs, lvmlockctl and lvchange recorded on host a after its agent was killed mid-commit', function () {
    // Each LVM command is a shell script here: a loaded machine can take seconds for the few of a test.
    this.timeout(30_000);
    let dir: string;
    const saved = { ...process.env };
    before(() => configureLog('error'));
    after(() => configureLog('warn'));
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'volmerge-recorded-lvm-'));
      const bin = join(dir, 'bin');
      for (const tool of ['lvs', 'lvmlockctl', 'lvchange']) await fakeTool(bin, tool, 'recorded-lvm');
      // lvs VG/LV prints the row of that LV: the recorded report of the whole VG, one LV at a time.
      const report = JSON.parse(fixture('lvm/lvs-vg-agent-killed.json')) as { report: { lv: Record<string, string>[] }[] };
      for (const row of report.report[0]?.lv ?? []) await writeFile(join(dir, `lvs-vgshared-${row.lv_name}.json`), JSON.stringify({ report: [{ lv: [row] }] }));
      await writeFile(join(dir, 'lvs-missing.stderr'), fixture('lvm/lvs-lv-missing.stderr'));
      await writeFile(join(dir, 'lvmlockctl-info.txt'), fixture('lvm/lvmlockctl-info-agent-killed.txt'));
      await writeFile(join(dir, 'calls'), '');
      process.env.VOLMERGE_LVM_BIN_DIR = bin;
      process.env.FAKE_LVM_DIR = dir;
    });
    afterEach(async () => {
      process.env = { ...saved };
      await rm(dir, { recursive: true, force: true });
    });

    async function changes(): Promise<string[]> {
      return (await readFile(join(dir, 'calls'), 'utf8')).split('\n').filter((line) => line.startsWith('lvchange'));
    }

    /** What the resumed run finds: base and top already active exclusively here (no lvchange needed). */
    async function holdAsResumedRun(): Promise<{ vg: string; lv: string; before: FoundActivation['before'] }[]> {
      const held = [];
      for (const lv of ['c5base', 'c5top']) held.push({ vg: 'vgshared', lv, before: await activateExclusively('vgshared', lv, lv) });
      return held;
    }

    it("puts them back to inactive, as the job's journal recorded them on this boot before the job", async () => {
      const held = await holdAsResumedRun();
      expect(held.map((h) => h.before), 'lvmlockctl --info: both locked ex here').to.deep.equal(['exclusive', 'exclusive']);
      expect(await changes(), 'already exclusive: nothing activated').to.deep.equal([]);
      const boot = { bootId: await bootId(), host: hostname() };
      const activation = new ChainActivation(held, boot);
      const journal = chainJournal([{ ...boot, volumes: INACTIVE_BEFORE }]);
      activation.stamp(journal, 'LV vgshared/volmerge_job_3f6b1c2a-9d4e-4f7a-8b5c-1e2d3c4b5a69', false);
      expect(journal.activationBefore, 'the record is kept as the first run wrote it').to.deep.equal([{ ...boot, volumes: INACTIVE_BEFORE }]);
      await putBackChain(held, activation);
      expect(await changes()).to.deep.equal(['lvchange -an vgshared/c5top', 'lvchange -an vgshared/c5base']);
    });

    it('leaves them as found when the journal predates records (as volmerge did before), or when the record is of another boot', async () => {
      const held = await holdAsResumedRun();
      const boot = { bootId: await bootId(), host: hostname() };
      const old = chainJournal();
      const activation = new ChainActivation(held, boot);
      const warnings: string[] = [];
      const warn = log.warn;
      log.warn = (message) => void warnings.push(message);
      try {
        // Every write of the run stamps; the log says it once.
        for (let i = 0; i < 3; i += 1) activation.stamp(old, 'LV vgshared/volmerge_job_3f6b1c2a-9d4e-4f7a-8b5c-1e2d3c4b5a69', false);
      } finally {
        log.warn = warn;
      }
      expect(old).to.not.have.property('activationBefore');
      expect(warnings).to.have.length(1);
      expect(warnings[0]).to.match(/journal in LV vgshared\/volmerge_job_\S+ predates records .* left as this run found them \(vgshared\/c5base exclusive, vgshared\/c5top exclusive\)/);
      await putBackChain(held, activation);
      expect(await changes()).to.deep.equal([]);

      // Another host's record (its boot): this host's run adds its own, from what it found, and leaves them so.
      const elsewhere = chainJournal([{ bootId: 'another-boot', host: 'b', volumes: INACTIVE_BEFORE }]);
      const here = new ChainActivation(held, boot);
      here.stamp(elsewhere, 'LV vgshared/volmerge_job_3f6b1c2a-9d4e-4f7a-8b5c-1e2d3c4b5a69', false);
      expect(elsewhere.activationBefore?.map((r) => r.volumes.map((v) => v.before))).to.deep.equal([
        ['inactive', 'inactive'],
        ['exclusive', 'exclusive'],
      ]);
      await putBackChain(held, here);
      expect(await changes()).to.deep.equal([]);
    });
  });
});
