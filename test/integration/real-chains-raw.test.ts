// Raw bases (oVirt's preallocated disks): a qcow2 top over a raw file or a raw block device, recorded with -F raw.
// Merged data reads as the chain did; bitmaps refused or dropped; --shrink skipped with a reason; a grown top.
import { expect } from 'chai';
import { stat } from 'node:fs/promises';
import { rawCopy } from '../helpers/images.js';
import { sh } from '../helpers/commands.js';
import { buildLayoutChain, denseRanges, readsAs, scatteredRanges, type LayoutChainSpec } from '../helpers/layout-chain.js';
import { expectDone, expectRefused, fingerprints, mergeJson, virtualSize } from '../helpers/merge-result.js';
import { canUseLoopDevices } from '../helpers/loop.js';
import { Workspace } from '../helpers/workspace.js';
import { freshWorkspaceEachTest } from '../helpers/hooks.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const SIZE = 256 * MiB;

/** Base with 8 MiB of its own, top with 32 MiB dense and 256 scattered 64 KiB writes. */
const RAW_CHAIN: LayoutChainSpec = {
  virtualSize: SIZE,
  baseFormat: 'raw',
  baseData: denseRanges(0, 8 * MiB),
  topData: [...denseRanges(64 * MiB, 32 * MiB), ...scatteredRanges(SIZE, 256, 64 * KiB, 192 * KiB)],
};

for (const medium of ['file', 'loop device'] as const) {
  describe(`real chains: raw base on a ${medium}`, function () {
    this.timeout(120_000);
    let ws: Workspace;
    before(async function () {
      if (medium === 'loop device' && !(await canUseLoopDevices())) this.skip();
    });
    freshWorkspaceEachTest((fresh) => (ws = fresh), 'volmerge-raw-');

    /** Builds the chain (a raw device of exactly the virtual size) and a raw copy of what it reads before the merge. */
    async function rawChain(spec: Partial<LayoutChainSpec> = {}): Promise<{ base: string; top: string; raw: string }> {
      const base = medium === 'file' ? ws.path('base.raw') : await ws.blockDevice('base', SIZE);
      const top = ws.path('top.qcow2');
      await buildLayoutChain(base, top, { ...RAW_CHAIN, ...spec });
      const raw = ws.path('before.raw');
      await rawCopy(top, raw);
      return { base, top, raw };
    }

    it('merges into the raw base: data identical, nothing to prune, no used size, base size unchanged', async () => {
      const { base, top, raw } = await rawChain();
      const run = await mergeJson(['--top', top, '--base', base]);
      const plan = expectDone(run);
      expect(plan.baseFormat).to.equal('raw');
      expect(plan.neededSize, "a raw base needs top's virtual size").to.equal(SIZE);
      expect(plan.extendTo).to.equal(null);
      expect([plan.prune, plan.add, plan.merge, plan.drop]).to.deep.equal([[], [], [], []]);
      expect(run.json.usedSize).to.equal(null);
      expect(await readsAs(base, 'raw', raw), 'base read as raw holds what the chain held').to.equal(true);
      expect(await virtualSize(base, 'raw')).to.equal(SIZE);
      expect(await readsAs(top, 'qcow2', raw), 'top still reads the same').to.equal(true);
    });

    it('refuses a top with valid bitmaps (bitmaps-unsupported, naming them) and changes nothing', async () => {
      const { base, top } = await rawChain({ topOnly: ['daily', 'incr-7'] });
      await expectRefused(['--top', top, '--base', base], 'bitmaps-unsupported', [/daily/, /incr-7/, new RegExp(`${base}|${top}`)], [base, top]);
    });

    it('merges with --drop-bitmaps and lists the dropped bitmaps under plan.drop', async () => {
      const { base, top, raw } = await rawChain({ topOnly: ['daily', 'incr-7'] });
      const plan = expectDone(await mergeJson(['--top', top, '--base', base, '--drop-bitmaps']));
      expect(plan.baseFormat).to.equal('raw');
      expect([...(plan.drop ?? [])].sort()).to.deep.equal(['daily', 'incr-7']);
      expect(await readsAs(base, 'raw', raw)).to.equal(true);
    });

    it('merges with --shrink and skips the shrink, giving the reason in the plan', async () => {
      const { base, top, raw } = await rawChain();
      const plan = expectDone(await mergeJson(['--top', top, '--base', base, '--shrink']));
      const shrink = plan.finalize?.shrink;
      expect(shrink?.planned, 'a raw base is not shrunk').to.equal(false);
      expect(shrink?.reason).to.be.a('string').and.not.equal('');
      expect(await readsAs(base, 'raw', raw)).to.equal(true);
      expect(await virtualSize(base, 'raw')).to.equal(SIZE);
    });

    it('treats a raw base whose first bytes look like a qcow2 header as raw (top says -F raw)', async () => {
      // The guest wrote a qcow2 image (with an external raw data file) at the start of its disk.
      const fake = ws.path('guest-made.qcow2');
      const victim = ws.path('victim.data');
      await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', '-o', `data_file=${victim},data_file_raw=on`, fake, String(16 * MiB)]);
      const base = medium === 'file' ? ws.path('base.raw') : await ws.blockDevice('base', SIZE);
      if (medium === 'file') await sh(['qemu-img', 'create', '-q', '-f', 'raw', base, String(SIZE)]);
      await sh(['dd', `if=${fake}`, `of=${base}`, 'conv=notrunc', 'status=none']);
      const top = ws.path('top.qcow2');
      await buildLayoutChain(base, top, { ...RAW_CHAIN, baseData: [] });
      const raw = ws.path('before.raw');
      await rawCopy(top, raw);
      const victimBefore = await fingerprints([victim]);

      const plan = expectDone(await mergeJson(['--top', top, '--base', base]));
      expect(plan.baseFormat).to.equal('raw');
      expect(await readsAs(base, 'raw', raw), 'merged as raw: the guest bytes and the data are intact').to.equal(true);
      expect(await fingerprints([victim]), 'the fake header data file was never written').to.deep.equal(victimBefore);
    });

    if (medium === 'file') {
      it('grows a raw file to a grown top virtual size', async () => {
        const grown = SIZE + 100 * MiB;
        const { base, top, raw } = await rawChain({ growTo: grown, topData: [...RAW_CHAIN.topData!, ...denseRanges(SIZE + 32 * MiB, 16 * MiB), { offset: grown - 64 * KiB, length: 64 * KiB }] });
        const plan = expectDone(await mergeJson(['--top', top, '--base', base]));
        expect(plan.neededSize).to.equal(grown);
        expect((await stat(base)).size, "the raw file has top's virtual size").to.equal(grown);
        expect(await readsAs(base, 'raw', raw)).to.equal(true);
      });
    } else {
      it('refuses a raw block device smaller than a grown top (too-small) before any change', async () => {
        const grown = SIZE + 100 * MiB;
        const { base, top } = await rawChain({ growTo: grown, topData: [...denseRanges(SIZE + 32 * MiB, 16 * MiB)] });
        await expectRefused(['--top', top, '--base', base], 'too-small', [new RegExp(base), new RegExp(String(grown))], [base, top]);
      });
    }
  });
}
