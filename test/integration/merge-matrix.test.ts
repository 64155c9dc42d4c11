// The merge on files and on 128 MiB fixed-size block devices, with 0 to 32 stale bitmaps in base.
import { expect } from 'chai';
import { makeChain, rawCopy, sameData, bitmapsIn } from '../helpers/images.js';
import { covers, dirtyExtents, type Extent } from '../helpers/dirty-map.js';
import { volmerge } from '../helpers/cli.js';
import { canUseLoopDevices } from '../helpers/loop.js';
import { Workspace } from '../helpers/workspace.js';
import { checkAgainst } from '../../src/schema.js';
import { freshWorkspaceEachTest } from '../helpers/hooks.js';

const MiB = 1024 * 1024;
const STALE_COUNTS = [0, 6, 11, 14, 32];

for (const medium of ['file', 'block device'] as const) {
  describe(`merge on a ${medium}`, function () {
    this.timeout(120_000);
    let ws: Workspace;

    before(async function () {
      if (medium === 'block device' && !(await canUseLoopDevices())) this.skip();
    });
    freshWorkspaceEachTest((fresh) => (ws = fresh));

    async function volumes(): Promise<{ base: string; top: string }> {
      if (medium === 'file') return { base: ws.path('base.qcow2'), top: ws.path('top.qcow2') };
      return { base: await ws.blockDevice('base', 128 * MiB), top: await ws.blockDevice('top', 128 * MiB) };
    }

    for (const stale of STALE_COUNTS) {
      it(`keeps data and bitmaps with ${stale} stale bitmaps in base and ~120 MiB in top`, async () => {
        const { base, top } = await volumes();
        await makeChain(base, top, { stale, shared: ['shared'], topOnly: ['toponly'], baseDataMiB: 4, topDataMiB: 120, topDataOffsetMiB: 2 });
        const raw = ws.path('before.raw');
        await rawCopy(top, raw);
        const before: Record<string, Extent[]> = {
          shared: await dirtyExtents(top, 'shared'),
          toponly: await dirtyExtents(top, 'toponly'),
        };
        expect(before.toponly).to.have.length.greaterThan(0);

        const result = await volmerge(['merge', '--top', top, '--base', base, '--json']);
        expect(result.stderr).to.equal('');
        expect(result.exitCode, result.stderr).to.equal(0);
        const output = checkAgainst<{ status: string; plan: { prune: string[]; add: string[]; merge: string[] } }>(
          'merge-result.schema.json',
          JSON.parse(result.stdout),
          'volmerge merge --json',
        );
        expect(output.status).to.equal('done');
        expect(output.plan.prune).to.have.length(stale);
        expect(output.plan.add).to.deep.equal(['toponly']);
        expect(output.plan.merge).to.deep.equal(['shared', 'toponly']);

        expect(await sameData(base, raw), 'base reads as top did').to.equal(true);
        const bitmaps = await bitmapsIn(base);
        expect(bitmaps.map((b) => b.name).sort()).to.deep.equal(['shared', 'toponly']);
        for (const bitmap of bitmaps) expect(bitmap.flags).to.deep.equal(['auto']);
        for (const name of ['shared', 'toponly']) {
          expect(covers(await dirtyExtents(base, name), before[name] ?? []), `${name} marks what it marked in top`).to.equal(true);
        }
      });
    }
  });
}
