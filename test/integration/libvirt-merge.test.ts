// Live merge through libvirt (volmerge merge --domain) with a real libvirtd (scripts/test-libvirtd, started by the
// tests) and TCG domains with no guest OS: an active and an internal merge on files, an active one on loop devices,
// and refusals that change nothing. After each merge the domain is stopped and qemu-img checks base: data as the guest
// saw it, stale bitmaps gone, top's bitmaps carried, valid and marking every write made before and during the job.
import { expect } from 'chai';
import { readdir } from 'node:fs/promises';
import { checksums, startCli, volmerge, type StartedCli } from '../helpers/cli.js';
import { sh } from '../helpers/commands.js';
import { bitmapsIn } from '../helpers/images.js';
import { domainChain, domainJob, haveLibvirt, startDomain, testLibvirtd, type TestDomain } from '../helpers/libvirt.js';
import { canUseLoopDevices } from '../helpers/loop.js';
import { applyWrites, BASE_DATA, buildLiveChain, expectCovers, expectSameData, expectValidBitmaps, extentsOf, guestView, TOP_DATA, type BuiltChain } from '../helpers/live-chain.js';
import { sleep } from '../helpers/wait.js';
import { Workspace } from '../helpers/workspace.js';
import { DomainEvents } from '../../src/libvirt/events.js';

const MiB = 1024 * 1024;
/** Slow enough that the guest writes while the job copies top's 28 MiB, fast enough to keep the suite short. */
const RATE = String(4 * MiB);

describe('volmerge merge --domain: live merge through libvirt', function () {
  this.timeout(180_000);
  let ws: Workspace;
  let domain: TestDomain | undefined;
  let cli: StartedCli | undefined;
  let uri = '';
  before(async function () {
    if (!haveLibvirt()) this.skip();
    uri = await testLibvirtd();
  });
  beforeEach(async () => {
    ws = await Workspace.create('volmerge-libvirt-');
  });
  afterEach(async () => {
    cli?.kill('SIGKILL');
    await cli?.done;
    await domain?.kill();
    domain = undefined;
    cli = undefined;
    await ws?.dispose();
  });

  const stateDir = (): string => ws.path('state');
  const mergeArgs = (chain: BuiltChain, extra: string[] = []): string[] => ['merge', '--top', chain.top, '--base', chain.base, '--state-dir', stateDir(), ...extra];
  const live = (): string[] => ['--domain', domain?.name ?? '', '--connect', uri];

  /** Waits until libvirt shows a block job on the disk; fails at once when the CLI exits first. */
  async function untilJob(): Promise<void> {
    for (const deadline = Date.now() + 60_000; ; await sleep(100)) {
      if ((await domainJob(domain?.name ?? '')).includes('Commit')) return;
      if (cli?.exited()) {
        const run = await cli.done;
        throw new Error(`the CLI exited (${run.exitCode ?? run.signal}) before libvirt showed its job: ${run.stderr.trim()}`);
      }
      if (Date.now() > deadline) throw new Error('libvirt showed no block job within 60 s');
    }
  }

  /** After the domain stopped: base reads as the guest saw its disk, stale bitmaps gone, top's carried and covering every write. */
  async function expectMergedBase(chain: BuiltChain, raw: string, image: string): Promise<void> {
    await applyWrites(raw, domain?.writes ?? []);
    await sh(['qemu-img', 'check', '-q', '-f', 'qcow2', chain.base]);
    await expectSameData(image, raw);
    await expectValidBitmaps(chain.base, { shared: 64 * 1024, toponly: 128 * 1024 });
    await expectCovers(chain.base, 'toponly', [TOP_DATA]);
    await expectCovers(chain.base, 'shared', [BASE_DATA, TOP_DATA]);
    expect(await readdir(ws.path('state/jobs')).catch(() => []), 'no journal kept').to.deep.equal([]);
  }

  it('merges the active layer: stale bitmaps removed, pivot, bitmaps carried, the domain never paused', async () => {
    const chain = await buildLiveChain(ws.dir);
    const raw = ws.path('guest.raw');
    await guestView(chain, raw);
    domain = await startDomain(ws.dir, chain.layers);
    const events = DomainEvents.start({ domain: domain.name, uri });
    const lifecycle: string[] = [];
    events.subscribe((event) => event.name === 'lifecycle' && lifecycle.push(event.detail));
    try {
      await domain.write(0x31, 100 * MiB, MiB);
      cli = startCli(mergeArgs(chain, [...live(), '--rate-limit', RATE, '--log-level', 'info']), {});
      await untilJob();
      await domain.write(0x32, 120 * MiB, MiB);
      expect(await domainJob(domain.name), 'the job still runs after the write').to.contain('Active Block Commit');
      const run = await cli.done;
      expect(run.exitCode, run.stderr).to.equal(0);
      expect(run.stdout).to.contain(`domain ${domain.name} writes to ${chain.base} now`).and.to.contain('bitmaps shared, toponly carried');
      expect(run.stderr).to.contain('step: pivot').and.to.contain('commit: 100%');
      expect(await domainChain(domain.name)).to.deep.equal([chain.base]);
      expect(await virshCheckpoints(domain.name), 'no checkpoint left').to.deep.equal([]);
      await domain.write(0x33, 140 * MiB, MiB);
    } finally {
      await events.stop();
    }
    expect(lifecycle.filter((detail) => /Suspended/.test(detail)), 'the domain never paused').to.deep.equal([]);
    await domain.stop();
    await expectMergedBase(chain, raw, chain.base);
    // Every write, before, during and after the job, is marked in both carried bitmaps.
    await expectCovers(chain.base, 'toponly', extentsOf(domain.writes));
    await expectCovers(chain.base, 'shared', extentsOf(domain.writes));
  });

  it('merges an inner volume: the leaf ends backed by base (by the same relative name), data and bitmaps right', async () => {
    const chain = await buildLiveChain(ws.dir, { leaf: true });
    const leaf = chain.leaf ?? '';
    const raw = ws.path('guest.raw');
    await guestView(chain, raw);
    domain = await startDomain(ws.dir, chain.layers);
    await domain.write(0x41, 100 * MiB, MiB);
    cli = startCli(mergeArgs(chain, [...live(), '--rate-limit', RATE]), {});
    await untilJob();
    await domain.write(0x42, 120 * MiB, MiB);
    const run = await cli.done;
    expect(run.exitCode, run.stderr).to.equal(0);
    expect(run.stdout).to.contain(`the volume above ${chain.top} is backed by ${chain.base} now`);
    expect(await domainChain(domain.name)).to.deep.equal([leaf, chain.base]);
    await domain.write(0x43, 140 * MiB, MiB);
    await domain.stop();
    const info = JSON.parse(await sh(['qemu-img', 'info', '--output', 'json', leaf])) as { 'backing-filename'?: string };
    expect(info['backing-filename']).to.equal('base.qcow2');
    await expectMergedBase(chain, raw, leaf);
    await expectCovers(leaf, 'leafmap', extentsOf(domain.writes));
  });

  it('merges the active layer on loop devices (block disk, block backing store)', async function () {
    if (!(await canUseLoopDevices())) this.skip();
    const baseDevice = await ws.blockDevice('base', 128 * MiB);
    const topDevice = await ws.blockDevice('top', 128 * MiB);
    const chain = await buildLiveChain(ws.dir, { baseDevice, topDevice });
    const raw = ws.path('guest.raw');
    await guestView(chain, raw);
    domain = await startDomain(ws.dir, chain.layers);
    await domain.write(0x71, 100 * MiB, MiB);
    cli = startCli(mergeArgs(chain, [...live(), '--rate-limit', RATE]), {});
    await untilJob();
    await domain.write(0x72, 110 * MiB, MiB);
    const run = await cli.done;
    expect(run.exitCode, run.stderr).to.equal(0);
    expect(await domainChain(domain.name)).to.deep.equal([baseDevice]);
    await domain.stop();
    await expectMergedBase(chain, raw, chain.base);
    await expectCovers(chain.base, 'toponly', extentsOf(domain.writes));
  });

  it('plans without changing anything (dry run), and refuses what it cannot merge; nothing changes', async () => {
    const chain = await buildLiveChain(ws.dir, { leaf: true });
    const leaf = chain.leaf ?? '';
    domain = await startDomain(ws.dir, chain.layers);
    const watched = [chain.base, chain.top, leaf];
    const before = await checksums(watched);
    const dry = await volmerge(mergeArgs(chain, [...live(), '--dry-run', '--json']));
    expect(dry.exitCode, dry.stderr).to.equal(0);
    const planned = JSON.parse(dry.stdout) as { status: string; plan: { prune: string[]; add: string[]; merge: string[] } };
    expect(planned.status).to.equal('planned');
    expect(planned.plan).to.deep.include({ prune: ['stale0', 'stale1'], add: ['toponly'], merge: ['shared', 'toponly'] });

    const other = ws.path('other.qcow2');
    await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', other]);
    const refusals: [string[], string, RegExp][] = [
      [['--top', chain.top, '--base', chain.base, '--domain', 'no-such-domain', '--connect', uri], 'not-found', /domain no-such-domain: libvirt at .* has no such domain/],
      [['--top', other, '--base', chain.base, ...live()], 'not-found', /^volmerge: top .*other\.qcow2: not in any disk of domain /],
      [['--top', leaf, '--base', chain.base, ...live()], 'bad-chain', /^volmerge: top .*leaf\.qcow2 is backed by top\.qcow2, not by base/],
      [['--top', chain.top, '--base', chain.base, ...live(), '--remove-top'], 'unsupported', /through libvirt \(--domain\) .* does not take --remove-top/],
      // A cold merge of the domain's volumes: refused before any job is kept, naming --domain.
      [['--top', chain.top, '--base', chain.base], 'busy', /--domain NAME/],
    ];
    for (const [args, code, pattern] of refusals) {
      const run = await volmerge(['merge', '--state-dir', stateDir(), '--json', ...args]);
      expect(run.exitCode, run.stderr).to.equal(1);
      expect(run.stderr.trim().split('\n'), 'one line on stderr').to.have.length(1);
      expect(run.stderr, run.stderr).to.match(pattern);
      expect((JSON.parse(run.stdout) as { error: { code: string } }).error.code, run.stderr).to.equal(code);
    }
    expect(await domainJob(domain.name), 'no job started').to.equal('');
    expect(await domainChain(domain.name)).to.deep.equal([leaf, chain.top, chain.base]);
    expect(await virshCheckpoints(domain.name)).to.deep.equal([]);
    expect(await readdir(ws.path('state/jobs')).catch(() => [])).to.deep.equal([]);
    expect(await checksums([chain.base, chain.top]), 'base and top unchanged').to.deep.equal(before.slice(0, 2));
    expect((await bitmapsIn(chain.base)).map((b) => b.name).sort()).to.deep.equal(['shared', 'stale0', 'stale1']);
  });

  it('refuses a disabled bitmap in top, which libvirt would drop silently, unless --drop-bitmaps says to drop it', async () => {
    const chain = await buildLiveChain(ws.dir);
    await sh(['qemu-img', 'bitmap', '--disable', chain.top, 'toponly']);
    domain = await startDomain(ws.dir, chain.layers);
    const refused = await volmerge(mergeArgs(chain, [...live(), '--json']));
    expect(refused.exitCode, refused.stderr).to.equal(1);
    expect(refused.stderr).to.match(/bitmap toponly of top .*: it is disabled in .*top\.qcow2, so libvirt would drop it silently/);
    expect(await domainChain(domain.name)).to.deep.equal([chain.top, chain.base]);
    const dropped = await volmerge(mergeArgs(chain, [...live(), '--drop-bitmaps']));
    expect(dropped.exitCode, dropped.stderr).to.equal(0);
    expect(dropped.stdout).to.contain("dropped top's bitmaps toponly as asked");
    await domain.stop();
    await expectValidBitmaps(chain.base, { shared: 64 * 1024 });
  });
});

/** The domain's checkpoints (none is left behind by a merge). */
async function virshCheckpoints(name: string): Promise<string[]> {
  const { virshTest } = await import('../helpers/libvirt.js');
  return (await virshTest(['checkpoint-list', name, '--name'])).split('\n').filter((line) => line.trim().length > 0);
}
