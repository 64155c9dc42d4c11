// On real LVM: a missing LV, a missing VG and a failing lvs are told apart, and nothing changes.
import { expect } from 'chai';
import { symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { makeChain } from '../helpers/images.js';
import { checksums, volmerge } from '../helpers/cli.js';
import { TestVg } from '../helpers/lvm.js';
import { Workspace } from '../helpers/workspace.js';
import { freshWorkspaceEachTest } from '../helpers/hooks.js';
import { fakeTool } from '../helpers/fake-tools.js';

describe('LVM: errors that must not be confused', function () {
  this.timeout(600_000);
  let vg: TestVg;
  let ws: Workspace;
  let base: string;
  let top: string;
  before(async () => {
    vg = await TestVg.create('1G', '4m');
    base = await vg.lv('base', 64);
    top = await vg.lv('top', 64);
    await makeChain(base, top, { virtualSize: '256M', stale: 2, topOnly: ['t'], topDataMiB: 16 });
  });
  after(async () => {
    await vg?.dispose();
  });
  freshWorkspaceEachTest((fresh) => (ws = fresh));

  async function failedWith(args: string[], env: Record<string, string> = {}): Promise<{ code: string; stderr: string }> {
    const before = await checksums([base, top]);
    const result = await volmerge(['merge', ...args, '--json'], env);
    expect(result.exitCode, result.stderr).to.equal(1);
    expect(await checksums([base, top]), 'nothing changed').to.deep.equal(before);
    return { code: (JSON.parse(result.stdout) as { error: { code: string } }).error.code, stderr: result.stderr };
  }

  it('says the LV is missing when the VG exists but the LV does not', async () => {
    const { code, stderr } = await failedWith(['--top', top, '--base', `/dev/${vg.name}/nosuchlv`]);
    expect(code).to.equal('lv-missing');
    expect(stderr).to.match(new RegExp(`logical volume ${vg.name}/nosuchlv does not exist`));
  });

  it('says the VG is missing when it does not exist', async () => {
    const { code, stderr } = await failedWith(['--top', top, '--base', '/dev/nosuchvg42/base']);
    expect(code).to.equal('vg-missing');
    expect(stderr).to.match(/volume group nosuchvg42 does not exist/);
  });

  it('says lvs failed, not that anything is gone, when lvs itself fails', async () => {
    const bin = ws.path('lvm-bin');
    const lvsPath = (await execa('bash', ['-c', 'command -v lvs'])).stdout.trim();
    await fakeTool(bin, 'lvs', 'failing-command');
    for (const tool of ['lvextend', 'lvchange', 'vgs']) await symlink(lvsPath, join(bin, tool));
    const { code, stderr } = await failedWith(['--top', top, '--base', base], { VOLMERGE_LVM_BIN_DIR: bin, FAKE_FAILURE_MESSAGE: '  simulated: lvmetad/locking failure' });
    expect(code).to.equal('lvm-failed');
    expect(stderr).to.match(/lvs failed .* state is unknown/);
    expect(stderr).not.to.match(/does not exist|gone|deleted/);
  });
});
