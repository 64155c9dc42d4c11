// The end of a merge on real LVM (npm run test:lvm runs it, in the test VM where device-mapper is missing): an internal
// merge of three LVs rebases the child onto base, removes the top LV, and shrinks base to within one extent of what it uses;
// the agent's SDM.merge finds the child among the image's LVs (tag IU_<img_id>) itself and leaves an unremoved top tagged retired.
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { realpath } from 'node:fs/promises';
import { execa } from 'execa';
import { checkImage } from '../../src/qemu/queries.js';
import { covers, dirtyExtents } from '../helpers/dirty-map.js';
import { sh } from '../helpers/commands.js';
import { bitmapsIn, sameData } from '../helpers/images.js';
import { hasDeviceMapper, TestVg } from '../helpers/lvm.js';
import { Workspace } from '../helpers/workspace.js';
import { agentMethods } from '../../src/agent/methods.js';
import { JobRegistry } from '../../src/agent/registry.js';
import { readLv } from '../../src/storage/lvm.js';

import { backingOf, infoOf, KEPT, prepareInternalChain, type InternalChain } from '../helpers/finalize-harness.js';
import { freshWorkspaceEachTest } from '../helpers/hooks.js';
import { runCli } from '../helpers/cli.js';

const MiB = 1024 * 1024;

async function lvTags(vg: string, lv: string): Promise<string[]> {
  const out = await sh(['lvs', '--noheadings', '-o', 'lv_tags', `${vg}/${lv}`]);
  return out.trim().split(',').filter((t) => t.length > 0);
}

async function lvExists(vg: string, lv: string): Promise<boolean> {
  return (await execa('lvs', [`${vg}/${lv}`], { reject: false })).exitCode === 0;
}

/** Base holds top's data and exactly the kept bitmaps (each enabled, covering what top's marked); child reads as before over base. */
async function expectMergedOnLvs(chain: InternalChain, checkContents = true): Promise<void> {
  expect(await backingOf(chain.child), 'child is backed by base').to.equal(await realpath(chain.base));
  expect(await sameData(chain.child, chain.rawChild), 'child reads exactly as before').to.equal(true);
  expect(await sameData(chain.base, chain.rawTop), 'base reads as top did').to.equal(true);
  const bitmaps = await bitmapsIn(chain.base);
  expect(bitmaps.map((b) => `${b.name}:${b.flags.join('+')}`).sort()).to.deep.equal(KEPT.map((name) => `${name}:auto`));
  if (!checkContents) return;
  for (const name of KEPT) expect(covers(await dirtyExtents(chain.base, name), chain.before[name] ?? []), name).to.equal(true);
}

describe('LVM: finishing a merge', function () {
  this.timeout(900_000);
  let vg: TestVg | undefined;
  let ws: Workspace;
  let extent = 0;

  before(async function () {
    if (!(await hasDeviceMapper())) this.skip();
    vg = await TestVg.create('1G', '4m');
    extent = await vg.extentSize();
  });
  after(async () => {
    await vg?.dispose();
  });
  freshWorkspaceEachTest((fresh) => (ws = fresh), 'volmerge-finalize-lvm-');
  const savedLockDir = process.env.VOLMERGE_LOCK_DIR;
  afterEach(async () => {
    if (savedLockDir === undefined) delete process.env.VOLMERGE_LOCK_DIR;
    else process.env.VOLMERGE_LOCK_DIR = savedLockDir;
  });

  it('internal merge of three LVs: child backed by base and reading as before, top LV removed, base shrunk to within one extent of image-end-offset', async () => {
    if (!vg) throw new Error('no VG');
    // Base is made far bigger than the merged image needs, so that the shrink has something to do.
    const volumes = { base: await vg.lv('fbase', 128), top: await vg.lv('ftop', 64), child: await vg.lv('fchild', 64) };
    const chain = await prepareInternalChain(ws, { volumes });
    const args = ['merge', '--top', chain.top, '--base', chain.base, '--child', chain.child, '--remove-top', '--shrink', '--json'];
    const run = await runCli(args, chain.env);
    expect(run.exitCode, run.stderr).to.equal(0);
    const result = JSON.parse(run.stdout) as { status: string; plan: { finalize: { shrink: { planned: boolean; leafRoom: number } } } };
    expect(result.status).to.equal('done');
    expect(result.plan.finalize.shrink, 'base is not the leaf: no leaf room').to.deep.equal({ planned: true, leafRoom: 0 });

    await expectMergedOnLvs(chain);
    expect((await infoOf(chain.child))['backing-filename'], 'child names base as top did').to.equal(volumes.base);
    expect(await lvExists(vg.name, 'ftop'), 'top LV removed').to.equal(false);
    expect(await lvTags(vg.name, 'fbase'), 'base carries no mark').to.deep.equal([]);
    const end = (await checkImage(chain.base))['image-end-offset'] ?? 0;
    const size = await vg.lvSize('fbase');
    expect(size % extent, 'whole extents').to.equal(0);
    expect(size, 'never below what the image uses').to.be.at.least(end);
    expect(size - end, 'within one extent of image-end-offset').to.be.lessThan(extent);
    expect(size).to.be.lessThan(128 * MiB);
  });

  it('agent, block domain: finds the child among the LVs tagged IU_<img_id>, rebases it, shrinks base with leaf room unused, tags the kept top retired', async () => {
    if (!vg) throw new Error('no VG');
    const img = randomUUID();
    const ids = { base: randomUUID(), top: randomUUID(), child: randomUUID(), other: randomUUID() };
    const tag = [`IU_${img}`];
    const volumes = { base: await vg.lv(ids.base, 96, tag), top: await vg.lv(ids.top, 64, tag), child: await vg.lv(ids.child, 64, [...tag, `PU_${ids.top}`]) };
    // An LV of another image, backed by nothing: not a candidate.
    await vg.lv(ids.other, 8, [`IU_${randomUUID()}`]);
    // Bitmap contents are checked by the first test; here only names and flags (TCG time).
    const chain = await prepareInternalChain(ws, { volumes, skipBitmapContents: true });
    // The agent's SDM.merge method and job table, in this process (a whole agent starts too slowly under TCG emulation).
    process.env.VOLMERGE_LOCK_DIR = ws.path('locks');
    const registry = new JobRegistry({ maxJobs: 1, finishedTtlMs: 3_600_000 });
    const methods = agentMethods({ registry, stateDir: ws.path('agent-state'), version: 'test', readLv });
    const jobId = randomUUID();
    const params = { job_id: jobId, subchain_info: { sd_id: vg.name, img_id: img, top_id: ids.top, base_id: ids.base, base_generation: 0 }, shrink: true };
    expect(await methods['SDM.merge']?.handler(params)).to.equal(true);
    expect(registry.get(jobId)?.volumes, 'the child is one of the job\'s volumes').to.include(volumes.child);
    const deadline = Date.now() + 600_000;
    while (!['done', 'failed', 'aborted'].includes(registry.get(jobId)?.status ?? '') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 100));
    const job = registry.get(jobId);
    expect(job?.status, JSON.stringify(job?.error)).to.equal('done');
    await expectMergedOnLvs(chain, false);
    expect(await lvExists(vg.name, ids.top), 'top LV kept (remove_top not set)').to.equal(true);
    const topTags = await lvTags(vg.name, ids.top);
    expect(topTags.filter((t) => t.startsWith('VOLMERGE_RETIRED_')), 'top tagged retired').to.have.length(1);
    const baseTags = await lvTags(vg.name, ids.base);
    expect(baseTags.sort()).to.deep.equal([`IU_${img}`, 'VOLMERGE_GEN_1']);
    const end = (await checkImage(chain.base))['image-end-offset'] ?? 0;
    const size = await vg.lvSize(ids.base);
    expect(size - end).to.be.within(0, extent - 1);
  });
});
