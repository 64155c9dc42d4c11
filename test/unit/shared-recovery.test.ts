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
    expect(startedVgsFromInfo(fixture('lvm/lvmlockctl-info.txt'))).to.deep.equal(['vg0']);
    expect(startedVgsFromInfo(fixture('lvm/lvmlockctl-info-two-vgs.txt'))).to.deep.equal(['vgshared', 'vgdata']);
    expect(startedVgsFromInfo(''), 'lvmlockd runs, no lockspace started').to.deep.equal([]);
    expect(startedVgsFromInfo('VG vg0 lock_type=sanlock x\nVG vg0 lock_type=sanlock x\n'), 'named twice').to.deep.equal(['vg0']);
    expect(startedVgsFromInfo('VG vgx lock_type=idm x\nLK LV ex VG\n'), 'no lock type volmerge knows, no VG line').to.deep.equal([]);
  });

  it('finds the bases that a VG\'s job LVs name, only on LVs tagged as job LVs', () => {
    const report = parseAgainst<{ report: { lv: Record<string, string>[] }[] }>('lvs.schema.json', fixture('lvm/lvs-job-lvs.json'), 'lvs');
    const lvs = (report.report[0]?.lv ?? []).map(lvFactsFromRow);
    expect(jobBasesOf(lvs)).to.deep.equal(['c1base', 'c2base']);
    expect(jobBasesOf(lvs.filter((lv) => !lv.name.startsWith('volmerge_job_'))), 'a base tag alone makes no job LV').to.deep.equal([]);
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
