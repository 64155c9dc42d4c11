// Issue 13 on real LVM (in the test VM): a raw base LV (grown top: whole extents), a 128 KiB + extended_l2 base LV that
// needs twice the default measure (extended once, right the first time), a grown qcow2 base LV, and no-space then finish.
import { expect } from 'chai';
import { mkdir } from 'node:fs/promises';
import { execa } from 'execa';
import { parseAgainst } from '../../src/schema.js';
import { bitmapsIn, rawCopy } from '../helpers/images.js';
import { sh } from '../helpers/commands.js';
import { covers, dirtyExtents, type Extent } from '../helpers/dirty-map.js';
import { buildLayoutChain, denseRanges, readsAs, scatteredRanges, type LayoutChainSpec } from '../helpers/layout-chain.js';
import { expectDone, fingerprints, imageEndOffset, mergeJson, virtualSize, type MergeJsonPlan } from '../helpers/merge-result.js';
import { hasDeviceMapper, TestVg } from '../helpers/lvm.js';
import { Workspace } from '../helpers/workspace.js';

import { freshWorkspaceEachTest } from '../helpers/hooks.js';
import { runCli } from '../helpers/cli.js';

const KiB = 1024;
const MiB = 1024 * KiB;

describe('LVM: real chains (raw base LVs, base layouts, grown disks, running out of space)', function () {
  this.timeout(900_000);
  let vg: TestVg;
  let ws: Workspace;
  let env: Record<string, string>;
  before(async function () {
    if (!(await hasDeviceMapper())) this.skip();
    vg = await TestVg.create('2G', '4m');
  });
  after(async () => {
    await vg?.dispose();
  });
  freshWorkspaceEachTest((fresh) => (ws = fresh), 'volmerge-lvm-real-');
  beforeEach(async () => {
    env = { VOLMERGE_STATE_DIR: ws.path('state'), VOLMERGE_LOCK_DIR: ws.path('locks') };
    await mkdir(env.VOLMERGE_STATE_DIR as string, { recursive: true });
  });

  /** Two LVs holding a chain built by spec, and a raw copy of what top reads before the merge. */
  async function lvChain(name: string, baseMiB: number, topMiB: number, spec: LayoutChainSpec): Promise<{ base: string; top: string; raw: string }> {
    const base = await vg.lv(`${name}-base`, baseMiB);
    const top = await vg.lv(`${name}-top`, topMiB);
    await buildLayoutChain(base, top, spec);
    const raw = ws.path(`${name}.raw`);
    await rawCopy(top, raw);
    return { base, top, raw };
  }

  /** The plan of a dry run: what volmerge decides before it changes anything. */
  async function dryPlan(top: string, base: string): Promise<MergeJsonPlan> {
    const dry = await mergeJson(['--top', top, '--base', base, '--dry-run'], env);
    expect(dry.cli.exitCode, dry.cli.stderr).to.equal(0);
    expect(dry.json.status).to.equal('planned');
    return dry.json.plan as MergeJsonPlan;
  }

  /** Whether the first `size` bytes of a raw block device read as the raw file (beyond it an extended LV may hold anything). */
  async function startReadsAs(device: string, size: number, raw: string): Promise<boolean> {
    const image = `json:${JSON.stringify({ driver: 'raw', size, file: { driver: 'host_device', filename: device } })}`;
    const result = await execa('qemu-img', ['compare', '-F', 'raw', image, raw], { reject: false, stdin: 'ignore' });
    if (result.exitCode !== 0 && result.exitCode !== 1) throw new Error(`qemu-img compare failed: ${String(result.stderr)}`);
    return result.exitCode === 0;
  }

  it('merges a qcow2 top into a raw base LV: data identical, no extension', async () => {
    const { base, top, raw } = await lvChain('raw', 64, 64, {
      virtualSize: 64 * MiB,
      baseFormat: 'raw',
      baseData: denseRanges(0, 8 * MiB),
      topData: [...denseRanges(16 * MiB, 16 * MiB), ...scatteredRanges(64 * MiB, 128, 64 * KiB, 128 * KiB)],
    });
    const run = await mergeJson(['--top', top, '--base', base], env);
    const plan = expectDone(run);
    expect(plan.baseFormat).to.equal('raw');
    expect(plan.extendTo).to.equal(null);
    expect(run.json.usedSize).to.equal(null);
    expect(await vg.lvSize('raw-base')).to.equal(64 * MiB);
    expect(await readsAs(base, 'raw', raw)).to.equal(true);
  });

  it("extends a raw base LV to a grown top's virtual size in whole extents", async () => {
    const grown = 101 * MiB;
    const { base, top, raw } = await lvChain('rawgrown', 64, 64, {
      virtualSize: 64 * MiB,
      baseFormat: 'raw',
      baseData: denseRanges(0, 8 * MiB),
      growTo: grown,
      topData: [...denseRanges(32 * MiB, 8 * MiB), ...denseRanges(70 * MiB, 16 * MiB), { offset: grown - 64 * KiB, length: 64 * KiB }],
    });
    const extent = await vg.extentSize();
    const wholeExtents = Math.ceil(grown / extent) * extent;
    expect(wholeExtents, "the test's premise: top's size is not a whole number of extents").to.be.above(grown);
    const plan = expectDone(await mergeJson(['--top', top, '--base', base], env));
    expect(plan.extendTo).to.equal(wholeExtents);
    expect(await vg.lvSize('rawgrown-base')).to.equal(wholeExtents);
    expect(await startReadsAs(base, grown, raw), 'the LV reads as the chain did').to.equal(true);
  });

  it('extends a 128 KiB + extended_l2 base LV that needs twice the default measure once, right the first time', async () => {
    const virtual = 512 * MiB;
    const { base, top, raw } = await lvChain('el2', 32, 160, {
      virtualSize: virtual,
      layout: { clusterSize: 128 * KiB, extendedL2: true },
      topData: scatteredRanges(virtual, 2048, 64 * KiB),
    });
    const subchain = { driver: 'qcow2', file: { driver: 'host_device', filename: top }, backing: { driver: 'qcow2', file: { driver: 'host_device', filename: base }, backing: null } };
    const measured = parseAgainst<{ required: number }>(
      'qemu-img-measure.schema.json',
      await sh(['qemu-img', 'measure', '--output', 'json', '-O', 'qcow2', `json:${JSON.stringify(subchain)}`]),
      'qemu-img measure',
    );
    const planned = await dryPlan(top, base);
    expect(planned.extendTo, 'the LV has to grow').to.be.a('number');

    const run = await mergeJson(['--top', top, '--base', base], env);
    const plan = expectDone(run);
    const used = await imageEndOffset(base);
    expect(used, "the test's premise: the real need is about twice the default-layout measure").to.be.above(1.8 * measured.required);
    expect(plan.extendTo, 'the merge extends to what the dry run planned').to.equal(planned.extendTo);
    expect(await vg.lvSize('el2-base'), 'one extension, to the planned size').to.equal(planned.extendTo);
    expect(plan.neededSize).to.be.at.least(used);
    expect(run.json.usedSize).to.equal(used);
    expect(await readsAs(base, 'qcow2', raw)).to.equal(true);

    const again = expectDone(await mergeJson(['--top', top, '--base', base], env));
    expect(again.extendTo, 'no second extension').to.equal(null);
    expect(await vg.lvSize('el2-base')).to.equal(planned.extendTo);
  });

  it('extends a qcow2 base LV under a grown top for the data and the new metadata, once; bitmaps cover the grown area', async () => {
    const grownArea = [...denseRanges(300 * MiB, 24 * MiB), { offset: 512 * MiB - 64 * KiB, length: 64 * KiB }];
    const { base, top, raw } = await lvChain('grown', 24, 128, {
      virtualSize: 256 * MiB,
      baseData: denseRanges(0, 16 * MiB),
      stale: 2,
      shared: ['daily'],
      topOnly: ['incr'],
      growTo: 512 * MiB,
      topData: [...denseRanges(4 * MiB, 8 * MiB), ...grownArea],
    });
    const marked: Record<string, Extent[]> = { daily: await dirtyExtents(top, 'daily'), incr: await dirtyExtents(top, 'incr') };
    const planned = await dryPlan(top, base);
    const run = await mergeJson(['--top', top, '--base', base], env);
    const plan = expectDone(run);
    const used = await imageEndOffset(base);
    expect(plan.neededSize).to.be.at.least(used);
    expect(plan.extendTo).to.equal(planned.extendTo);
    expect(await vg.lvSize('grown-base'), 'one extension, to the planned size').to.equal(planned.extendTo);
    expect(await virtualSize(base, 'qcow2')).to.equal(512 * MiB);
    expect(await readsAs(base, 'qcow2', raw)).to.equal(true);
    const bitmaps = await bitmapsIn(base);
    expect(bitmaps.map((b) => `${b.name}:${b.flags.join('+')}`).sort()).to.deep.equal(['daily:auto', 'incr:auto']);
    for (const name of ['daily', 'incr']) {
      const now = await dirtyExtents(base, name);
      expect(covers(now, marked[name] ?? []), `${name} marks what it marked in top`).to.equal(true);
      expect(covers(now, grownArea), `${name} marks the grown area's writes`).to.equal(true);
    }
  });

  /**
   * A 16 MiB base LV under 24 MiB of data, merged by a run killed at `crashAt` (past the extension, before the commit),
   * then shrunk back by hand to 16 MiB: safe, as the commit has not run and base's image still ends inside it.
   */
  async function crashedPastExtension(name: string, crashAt: string): Promise<{ base: string; top: string; raw: string; marked: Record<string, Extent[]> }> {
    const chain = await lvChain(name, 16, 64, {
      virtualSize: 128 * MiB,
      baseData: denseRanges(0, 2 * MiB),
      stale: 2,
      shared: ['shared'],
      topOnly: ['toponly'],
      topData: denseRanges(2 * MiB, 24 * MiB),
    });
    const marked: Record<string, Extent[]> = { shared: await dirtyExtents(chain.top, 'shared'), toponly: await dirtyExtents(chain.top, 'toponly') };
    const crashed = await runCli(['merge', '--top', chain.top, '--base', chain.base], { ...env, VOLMERGE_CRASH_AT: crashAt });
    expect(crashed.signal, crashed.stderr).to.equal('SIGKILL');
    expect(await vg.lvSize(`${name}-base`), 'the crashed run had extended base').to.be.above(16 * MiB);
    await sh(['lvreduce', '-q', '-f', '-y', '-L', '16m', `${vg.name}/${name}-base`]);
    return { ...chain, marked };
  }

  /** Data as before, base's bitmaps exactly shared and toponly, valid, marking what they marked in top. */
  async function expectMerged(chain: { base: string; raw: string; marked: Record<string, Extent[]> }): Promise<void> {
    expect(await readsAs(chain.base, 'qcow2', chain.raw)).to.equal(true);
    const bitmaps = await bitmapsIn(chain.base);
    expect(bitmaps.map((b) => `${b.name}:${b.flags.join('+')}`).sort()).to.deep.equal(['shared:auto', 'toponly:auto']);
    for (const name of ['shared', 'toponly']) expect(covers(await dirtyExtents(chain.base, name), chain.marked[name] ?? []), name).to.equal(true);
  }

  it('re-measures and extends again before the commit when base was shrunk after it was marked', async () => {
    const chain = await crashedPastExtension('reextend', 'mark:after');
    const run = await mergeJson(['--top', chain.top, '--base', chain.base], env);
    const plan = expectDone(run);
    const used = await imageEndOffset(chain.base);
    expect(await vg.lvSize('reextend-base'), 'extended again, enough for what base uses').to.be.at.least(used);
    expect(plan.neededSize).to.be.at.least(used);
    await expectMerged(chain);
  });

  for (const crashAt of ['extend:after', 'mark:after']) {
    it(`fails with no-space when the VG filled up after a crash at ${crashAt}, changes nothing more, then finishes`, async () => {
      const lv = `nospace${crashAt.split(':')[0]}`;
      const chain = await crashedPastExtension(lv, crashAt);
      const { base, top } = chain;
      await sh(['lvcreate', '-q', '-y', '-Wn', '-Zn', '-l', '100%FREE', '-n', 'filler', vg.name]);

      const before = await fingerprints([base, top]);
      const refused = await mergeJson(['--top', top, '--base', base], env);
      expect(refused.cli.exitCode, refused.cli.stderr).to.equal(1);
      expect(refused.json.error?.code, refused.cli.stderr).to.equal('no-space');
      // The error is the last line (a resumed run may say before it which job it finishes).
      const message = refused.cli.stderr.trim().split('\n').pop() ?? '';
      expect(message, 'the error line').to.equal(`volmerge: ${refused.json.error?.message ?? ''}`);
      expect(message).to.satisfy((m: string) => m.includes(base) || m.includes(`${vg.name}/${lv}-base`), `names base: ${message}`);
      expect(Math.max(0, ...(message.match(/\d{8,}/g) ?? []).map(Number)), `names the bytes planned: ${message}`).to.be.above(16 * MiB);
      expect(await fingerprints([base, top]), 'nothing more changed').to.deep.equal(before);
      expect(await vg.lvSize(`${lv}-base`)).to.equal(16 * MiB);

      await vg.removeLv('filler');
      expectDone(await mergeJson(['--top', top, '--base', base], env));
      await expectMerged(chain);
    });
  }
});
