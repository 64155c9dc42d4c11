// Start-up recovery on shared VGs, the pure parts: which VGs lvmlockctl --info says this host has joined, which bases a
// VG's job LVs name (recorded lvs JSON), and that a host without lvmlockd searches no shared VG and still starts.
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jobBasesOf, startedSharedVgs, startedVgsFromInfo } from '../../src/jobs/shared-recovery.js';
import { parseAgainst } from '../../src/schema.js';
import { lvFactsFromRow } from '../../src/storage/lvm.js';
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
