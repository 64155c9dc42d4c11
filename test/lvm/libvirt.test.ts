// A live merge through libvirt on LVs, in the LVM test VM: the private test libvirtd (scripts/test-libvirtd) runs inside
// the VM, a TCG domain with no guest OS runs the chain on /dev/VG/LV (block disk, block backing store), and
// `volmerge merge --domain` merges the active layer into a base LV too small for it: grown before the commit, the
// domain never paused, then, after the domain stopped, data as the guest saw it and bitmaps carried and covering.
import { expect } from 'chai';
import { startCli } from '../helpers/cli.js';
import { sh } from '../helpers/commands.js';
import { domainChain, domainJob, haveLibvirt, startDomain, testLibvirtd, type TestDomain } from '../helpers/libvirt.js';
import { applyWrites, BASE_DATA, buildLiveChain, expectMarks, expectSameData, expectValidBitmaps, extentsOf, guestView, TOP_DATA, TOP_UNTRACKED } from '../helpers/live-chain.js';
import { hasDeviceMapper, TestVg } from '../helpers/lvm.js';
import { freshWorkspaceEachTest } from '../helpers/hooks.js';
import { sleep } from '../helpers/wait.js';
import type { Workspace } from '../helpers/workspace.js';
import { DomainEvents } from '../../src/libvirt/events.js';

const MiB = 1024 * 1024;

describe('LVM: live merge through libvirt on LVs', function () {
  this.timeout(600_000);
  let vg: TestVg;
  let ws: Workspace;
  let domain: TestDomain | undefined;
  let uri = '';
  before(async function () {
    if (!(await hasDeviceMapper()) || !haveLibvirt()) this.skip();
    // Its first start probes QEMU's capabilities: about 40 s in the TCG test VM.
    uri = await testLibvirtd();
    vg = await TestVg.create('1G', '4m');
  });
  after(async () => {
    await vg?.dispose();
  });
  freshWorkspaceEachTest((fresh) => (ws = fresh), 'volmerge-lvm-libvirt-');
  afterEach(async () => {
    await domain?.kill();
    domain = undefined;
  });

  it('merges the active layer into a base LV too small for it: grown before the commit, the domain never paused, data and bitmaps kept', async () => {
    const chain = await buildLiveChain(ws.dir, { baseDevice: await vg.lv('lv-base', 12), topDevice: await vg.lv('lv-top', 64) });
    const raw = ws.path('guest.raw');
    await guestView(chain, raw);
    domain = await startDomain(ws.dir, chain.layers);
    const events = DomainEvents.start({ domain: domain.name, uri });
    const lifecycle: string[] = [];
    events.subscribe((event) => event.name === 'lifecycle' && lifecycle.push(event.detail));
    try {
      await domain.write(0xb1, 100 * MiB, MiB);
      const cli = startCli(['merge', '--top', chain.top, '--base', chain.base, '--domain', domain.name, '--connect', uri, '--state-dir', ws.path('state'), '--rate-limit', String(8 * MiB), '--json'], {});
      for (const deadline = Date.now() + 480_000; !(await domainJob(domain.name)).includes('Commit'); await sleep(200)) {
        if (cli.exited()) break;
        if (Date.now() > deadline) throw new Error('libvirt showed no block job within 480 s');
      }
      const grown = await vg.lvSize('lv-base');
      expect(grown, 'base LV grown before the commit').to.be.greaterThan(12 * MiB);
      await domain.write(0xb2, 120 * MiB, MiB);
      const run = await cli.done;
      expect(run.exitCode, run.stderr).to.equal(0);
      const result = JSON.parse(run.stdout) as { status: string; plan: { neededSize: number } };
      expect(result.status).to.equal('done');
      expect(grown, 'grown to at least the planned need').to.be.at.least(result.plan.neededSize);
      expect(await domainChain(domain.name)).to.deep.equal([chain.base]);
      await domain.write(0xb3, 140 * MiB, MiB);
    } finally {
      await events.stop();
    }
    expect(lifecycle.filter((detail) => /Suspended/.test(detail)), 'the domain never paused').to.deep.equal([]);
    await domain.stop();
    await applyWrites(raw, domain.writes);
    await expectSameData(chain.base, raw);
    const check = JSON.parse(await sh(['qemu-img', 'check', '--output', 'json', '-f', 'qcow2', chain.base])) as { 'image-end-offset': number };
    expect(check['image-end-offset'], 'base fits in its LV').to.be.at.most(await vg.lvSize('lv-base'));
    await expectValidBitmaps(chain.base, { shared: 64 * 1024, toponly: 128 * 1024 });
    const writes = extentsOf(domain.writes);
    await expectMarks(chain.base, 'toponly', { covered: [TOP_DATA, ...writes], missed: [TOP_UNTRACKED] });
    // base's own enabled bitmap also marks what the commit copied (libvirt does not disable it for the job): more than
    // the guest wrote, never less, so only what it covers is checked.
    await expectMarks(chain.base, 'shared', { covered: [BASE_DATA, TOP_DATA, ...writes] });
  });
});
