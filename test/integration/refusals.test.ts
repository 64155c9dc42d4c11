// Merges that must be refused: exit 1, one line naming the volume, and not one byte changed.
import { expect } from 'chai';
import { addBitmap, breakBitmaps, makeChain } from '../helpers/images.js';
import { checksums, volmerge } from '../helpers/cli.js';
import { sh } from '../helpers/commands.js';
import { canUseLoopDevices } from '../helpers/loop.js';
import { Workspace } from '../helpers/workspace.js';
import { freshWorkspaceEachTest } from '../helpers/hooks.js';

const MiB = 1024 * 1024;

describe('refused merges change nothing', function () {
  this.timeout(60_000);
  let ws: Workspace;
  let base: string;
  let top: string;

  beforeEach(async () => {
    ws = await Workspace.create();
    base = ws.path('base.qcow2');
    top = ws.path('top.qcow2');
    await makeChain(base, top, { virtualSize: '256M', stale: 2, shared: ['shared'], topOnly: ['toponly'], topDataMiB: 8 });
  });
  afterEach(async () => {
    await ws?.dispose();
  });

  /** Runs the merge, expects exit 1 with a one-line error matching `pattern`, and unchanged images. */
  async function expectRefused(args: string[], code: string, pattern: RegExp, watched: string[] = [base, top]): Promise<void> {
    const before = await checksums(watched);
    const result = await volmerge(['merge', ...args, '--json']);
    expect(result.exitCode, result.stderr).to.equal(1);
    const lines = result.stderr.trim().split('\n');
    expect(lines, 'one line on stderr').to.have.length(1);
    expect(lines[0]).to.match(pattern);
    expect(result.stderr).not.to.match(/\bat .*\.js:\d+/);
    const output = JSON.parse(result.stdout) as { status: string; error: { code: string } };
    expect(output.status).to.equal('failed');
    expect(output.error.code).to.equal(code);
    expect(await checksums(watched), 'images unchanged').to.deep.equal(before);
  }

  it('refuses an in-use bitmap in top', async () => {
    await breakBitmaps(top);
    await expectRefused(['--top', top, '--base', base], 'bitmap-in-use', /top .*top\.qcow2: bitmap .* is in-use/);
  });

  it('refuses an in-use bitmap in base that top also has', async () => {
    await breakBitmaps(base);
    await expectRefused(['--top', top, '--base', base], 'bitmap-in-use', /base .*base\.qcow2: bitmap shared is in-use/);
  });

  it('refuses a top that is not backed by base', async () => {
    const other = ws.path('other.qcow2');
    await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', other, '256M']);
    await addBitmap(other, 'x');
    await expectRefused(['--top', top, '--base', other], 'bad-chain', /is backed by .*base\.qcow2, not by base .*other\.qcow2/, [base, top, other]);
  });

  it('refuses top and base swapped', async () => {
    await expectRefused(['--top', base, '--base', top], 'bad-chain', /has no backing volume.*swapped/);
  });

  it('refuses top and base being the same volume, even through a symlink', async () => {
    const link = ws.path('link.qcow2');
    await sh(['ln', '-s', top, link]);
    await expectRefused(['--top', top, '--base', link], 'bad-chain', /are the same volume/);
  });

  it('refuses a missing path, naming it', async () => {
    await expectRefused(['--top', ws.path('nope.qcow2'), '--base', base], 'not-found', /top .*nope\.qcow2: no such file or device/);
  });

  it('refuses files that are not qcow2', async () => {
    const rawTop = ws.path('raw-top.img');
    const rawBase = ws.path('raw-base.img');
    await sh(['qemu-img', 'create', '-q', '-f', 'raw', rawTop, '16M']);
    await sh(['qemu-img', 'create', '-q', '-f', 'raw', rawBase, '16M']);
    await expectRefused(['--top', rawTop, '--base', rawBase], 'not-qcow2', /raw-top\.img.*qcow2/, [rawTop, rawBase]);
  });

  it('refuses a fixed-size block device that is too small, saying how many bytes it needs', async function () {
    if (!(await canUseLoopDevices())) this.skip();
    const small = await ws.blockDevice('small', 64 * MiB);
    const bigTop = ws.path('big-top.qcow2');
    await makeChain(small, bigTop, { virtualSize: '256M', stale: 3, shared: ['shared'], topDataMiB: 100 });
    await expectRefused(['--top', bigTop, '--base', small], 'too-small', /base \/dev\/loop\d+: block device of 67108864 bytes is too small .* needs \d+ bytes/, [
      small,
      bigTop,
    ]);
  });

  it('gives usage errors exit 2', async () => {
    const result = await volmerge(['merge', '--top', top]);
    expect(result.exitCode).to.equal(2);
    expect(result.stderr).to.match(/Missing required argument: base/);
    expect((await volmerge(['merge', '--top', top, '--base', base, '--bogus'])).exitCode).to.equal(2);
    expect((await volmerge([])).exitCode).to.equal(2);
  });
});

describe('dry run and repeated merges', function () {
  this.timeout(60_000);
  let ws: Workspace;
  freshWorkspaceEachTest((fresh) => (ws = fresh));

  it('--dry-run --json lists the stale bitmaps under prune and changes nothing', async () => {
    const base = ws.path('base.qcow2');
    const top = ws.path('top.qcow2');
    await makeChain(base, top, { virtualSize: '256M', stale: 3, shared: ['shared'], topOnly: ['toponly'], topDataMiB: 8 });
    const before = await checksums([base, top]);
    const result = await volmerge(['merge', '--top', top, '--base', base, '--dry-run', '--json']);
    expect(result.exitCode, result.stderr).to.equal(0);
    const output = JSON.parse(result.stdout) as { status: string; plan: { prune: string[]; add: string[]; merge: string[]; extendTo: null } };
    expect(output.status).to.equal('planned');
    expect(output.plan.prune).to.deep.equal(['stale0', 'stale1', 'stale2']);
    expect(output.plan.add).to.deep.equal(['toponly']);
    expect(output.plan.merge).to.deep.equal(['shared', 'toponly']);
    expect(output.plan.extendTo).to.equal(null);
    expect(await checksums([base, top])).to.deep.equal(before);
  });

  it('running the same merge twice leaves base valid', async () => {
    const base = ws.path('base.qcow2');
    const top = ws.path('top.qcow2');
    await makeChain(base, top, { virtualSize: '256M', stale: 2, shared: ['shared'], topOnly: ['toponly'], topDataMiB: 8 });
    for (let run = 0; run < 2; run += 1) {
      const result = await volmerge(['merge', '--top', top, '--base', base, '--json']);
      expect(result.exitCode, result.stderr).to.equal(0);
      expect((JSON.parse(result.stdout) as { status: string }).status).to.equal('done');
    }
    const { bitmapsIn } = await import('../helpers/images.js');
    const bitmaps = await bitmapsIn(base);
    expect(bitmaps.map((b) => `${b.name}:${b.flags.join('+')}`).sort()).to.deep.equal(['shared:auto', 'toponly:auto']);
  });
});
