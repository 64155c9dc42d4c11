// Issue 13's own case: a 128 KiB + extended_l2 base (Proxmox VE's qcow2 layout) under a default top with 4096 scattered
// 64 KiB writes needs about twice what a default-layout measure says. On a 320 MiB block device it must be refused
// (too-small) before anything changes; on a 600 MiB one it must merge.
import { expect } from 'chai';
import { rawCopy } from '../helpers/images.js';
import { sh } from '../helpers/commands.js';
import { buildLayoutChain, readsAs, scatteredRanges, type LayoutChainSpec } from '../helpers/layout-chain.js';
import { expectDone, expectRefused, imageEndOffset, mergeJson } from '../helpers/merge-result.js';
import { canUseLoopDevices } from '../helpers/loop.js';
import { Workspace } from '../helpers/workspace.js';
import { freshWorkspaceEachTest } from '../helpers/hooks.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

describe("real chains: the issue's 128 KiB + extended_l2 base on a fixed block device", function () {
  this.timeout(180_000);
  let ws: Workspace;
  before(async function () {
    if (!(await canUseLoopDevices())) this.skip();
  });
  freshWorkspaceEachTest((fresh) => (ws = fresh), 'volmerge-fixed-');

  const spec: LayoutChainSpec = { virtualSize: GiB, layout: { clusterSize: 128 * KiB, extendedL2: true }, topData: scatteredRanges(GiB, 4096, 64 * KiB) };

  async function chainOn(deviceBytes: number): Promise<{ base: string; top: string }> {
    const base = await ws.blockDevice('base', deviceBytes);
    const top = ws.path('top.qcow2');
    await buildLayoutChain(base, top, spec);
    return { base, top };
  }

  /** What the commit of this chain really makes base use: the same chain on files, committed by qemu-img itself. */
  async function realNeed(): Promise<number> {
    const base = ws.path('twin-base.qcow2');
    const top = ws.path('twin-top.qcow2');
    await buildLayoutChain(base, top, spec);
    await sh(['qemu-img', 'commit', '-q', '-t', 'none', '-b', base, top]);
    return imageEndOffset(base);
  }

  /** The largest integer in a message (the bytes it says are needed). */
  function largestNumber(message: string): number {
    return Math.max(0, ...(message.match(/\d{6,}/g) ?? []).map(Number));
  }

  it('refuses a 320 MiB device with too-small, in the dry run and the merge, naming the bytes; nothing changes', async () => {
    const { base, top } = await chainOn(320 * MiB);
    const dry = await mergeJson(['--top', top, '--base', base, '--dry-run']);
    expect(dry.cli.exitCode, `the dry run must not say it fits: ${dry.cli.stdout}`).to.equal(1);
    expect(dry.json.error?.code).to.equal('too-small');
    const message = await expectRefused(['--top', top, '--base', base], 'too-small', [new RegExp(base)], [base, top]);
    const need = await realNeed();
    expect(need, 'this chain really needs more than the device holds').to.be.above(320 * MiB);
    expect(largestNumber(message), `the message names the bytes needed (at least ${need}): ${message}`).to.be.at.least(need);
  });

  it('merges on a 600 MiB device: data identical, planned size covers what base uses', async () => {
    const { base, top } = await chainOn(600 * MiB);
    const raw = ws.path('before.raw');
    await rawCopy(top, raw);
    const run = await mergeJson(['--top', top, '--base', base]);
    const plan = expectDone(run);
    const used = await imageEndOffset(base);
    expect(used, 'this chain really needs more than the 320 MiB device holds').to.be.above(320 * MiB);
    expect(plan.neededSize).to.be.at.least(used);
    expect(plan.neededSize).to.be.at.most(600 * MiB);
    expect(run.json.usedSize).to.equal(used);
    expect(await readsAs(base, 'qcow2', raw)).to.equal(true);
  });
});
