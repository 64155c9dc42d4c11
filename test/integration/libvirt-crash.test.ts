// A live merge through libvirt cut short: aborted before the pivot (the chain and the domain as they were), volmerge
// SIGKILLed mid-job (the same command re-attaches and finishes it), libvirtd restarted mid-job (the merge rides it
// out), the domain destroyed mid-job (a cold merge finishes the chain), and libvirt losing a bitmap at the pivot while
// saying it succeeded (volmerge fails loudly with bitmap-write-failed). Checked with qemu-img after the domain stops.
import { expect } from 'chai';
import { readdir } from 'node:fs/promises';
import { startCli, volmerge, type StartedCli } from '../helpers/cli.js';
import { sh } from '../helpers/commands.js';
import { bitmapsIn } from '../helpers/images.js';
import { domainChain, domainJob, haveLibvirt, restartLibvirtd, startDomain, testLibvirtd, virshTest, type TestDomain } from '../helpers/libvirt.js';
import { applyWrites, BASE_DATA, buildLiveChain, expectCovers, expectSameData, expectValidBitmaps, extentsOf, guestView, TOP_DATA, type BuiltChain } from '../helpers/live-chain.js';
import { sleep } from '../helpers/wait.js';
import { Workspace } from '../helpers/workspace.js';
import { runMergeJob } from '../../src/jobs/run-merge.js';

const MiB = 1024 * 1024;
const RATE = String(3 * MiB);

describe('volmerge merge --domain: aborts and crashes', function () {
  this.timeout(240_000);
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

  const env = (): Record<string, string> => ({ VOLMERGE_LOCK_DIR: ws.path('locks') });
  const stateDir = (): string => ws.path('state');
  const mergeArgs = (chain: BuiltChain, extra: string[] = []): string[] => ['merge', '--top', chain.top, '--base', chain.base, '--state-dir', stateDir(), ...extra];
  const live = (): string[] => ['--domain', domain?.name ?? '', '--connect', uri];
  const keptJobs = (): Promise<string[]> => readdir(ws.path('state/jobs')).catch(() => []);

  /** Waits until libvirt shows a block job on the disk (or gives up when stop says so). */
  async function untilJob(stop: () => boolean = () => cli?.exited() ?? false): Promise<void> {
    for (const deadline = Date.now() + 60_000; ; await sleep(100)) {
      if ((await domainJob(domain?.name ?? '')).includes('Commit')) return;
      if (stop()) throw new Error(`the merge ended before libvirt showed its job: ${cli ? (await cli.done).stderr : ''}`);
      if (Date.now() > deadline) throw new Error('libvirt showed no block job within 60 s');
    }
  }

  /** The status of the chain as `volmerge status --json` reads it. */
  async function status(chain: BuiltChain): Promise<{ state: string; advice: string; job: { kind: string; domain?: string } | null }> {
    const run = await volmerge(['status', '--base', chain.base, '--state-dir', stateDir(), '--json'], env());
    expect(run.exitCode, run.stderr).to.equal(0);
    return JSON.parse(run.stdout) as { state: string; advice: string; job: { kind: string; domain?: string } | null };
  }

  /** After the domain stopped: base reads as the guest saw its disk, top's bitmaps carried and marking every write. */
  async function expectMergedBase(chain: BuiltChain, raw: string): Promise<void> {
    await applyWrites(raw, domain?.writes ?? []);
    await sh(['qemu-img', 'check', '-q', '-f', 'qcow2', chain.base]);
    await expectSameData(chain.base, raw);
    await expectValidBitmaps(chain.base, { shared: 64 * 1024, toponly: 128 * 1024 });
    await expectCovers(chain.base, 'toponly', [TOP_DATA, ...extentsOf(domain?.writes ?? [])]);
    await expectCovers(chain.base, 'shared', [BASE_DATA, TOP_DATA, ...extentsOf(domain?.writes ?? [])]);
    expect(await keptJobs(), 'no journal kept').to.deep.equal([]);
  }

  /** A domain on a fresh chain, a raw copy of its disk, and a first guest write. */
  async function start(): Promise<{ chain: BuiltChain; raw: string }> {
    const chain = await buildLiveChain(ws.dir);
    const raw = ws.path('guest.raw');
    await guestView(chain, raw);
    domain = await startDomain(ws.dir, chain.layers);
    await domain.write(0x61, 100 * MiB, MiB);
    return { chain, raw };
  }

  it('aborts before the pivot (request.signal): libvirt cancels the commit, the chain and the domain are as they were', async () => {
    const { chain, raw } = await start();
    const stop = new AbortController();
    let ended = false;
    const merging = runMergeJob({ jobId: 'libvirt-abort', stateDir: stateDir(), top: chain.top, base: chain.base, domain: domain?.name ?? '', connect: uri, rateLimit: MiB, signal: stop.signal })
      .then(
        (): Error & { code?: string } => new Error('the merge finished'),
        (error: unknown) => error as Error & { code?: string },
      )
      .finally(() => (ended = true));
    await untilJob(() => ended);
    await domain?.write(0x62, 120 * MiB, MiB);
    stop.abort();
    const error = await merging;
    expect(error.code, error.message).to.equal('aborted');
    expect(await domainJob(domain?.name ?? ''), 'no job left').to.equal('');
    expect(await domainChain(domain?.name ?? '')).to.deep.equal([chain.top, chain.base]);
    expect(await keptJobs()).to.deep.equal([]);
    await domain?.write(0x63, 140 * MiB, MiB);
    await domain?.stop();
    await applyWrites(raw, domain?.writes ?? []);
    await expectSameData(chain.top, raw);
    // Base's stale bitmaps went before the commit began (a prune changes nothing the guest sees); shared as it was.
    await expectValidBitmaps(chain.base, { shared: 64 * 1024 });
    expect((await bitmapsIn(chain.top)).map((b) => [b.name, b.flags])).to.deep.equal([['shared', ['auto']], ['toponly', ['auto']]]);
  });

  it('finishes, when the same command runs again, a merge whose volmerge was SIGKILLed mid-job', async () => {
    const { chain, raw } = await start();
    const args = mergeArgs(chain, [...live(), '--rate-limit', RATE]);
    cli = startCli(args, env());
    await untilJob();
    cli.kill('SIGKILL');
    expect((await cli.done).signal).to.equal('SIGKILL');
    expect(await domainJob(domain?.name ?? ''), 'the commit goes on in libvirt').to.contain('Active Block Commit');
    await domain?.write(0x62, 120 * MiB, MiB);
    const cold = await volmerge(mergeArgs(chain), env());
    expect(cold.exitCode).to.equal(1);
    expect(cold.stderr).to.contain('is unfinished and its domain runs').and.to.contain('--domain ');
    const unfinished = await status(chain);
    expect(unfinished.state).to.equal('unfinished');
    expect(unfinished.job?.kind).to.equal('libvirt');
    expect(unfinished.advice).to.contain('--domain ');

    cli = startCli(args, env());
    const again = await cli.done;
    expect(again.exitCode, again.stderr).to.equal(0);
    expect(again.stdout).to.contain('finished the merge that job').and.to.contain('done (live, libvirt)');
    expect(again.stderr).to.contain('re-attaching');
    await domain?.write(0x63, 140 * MiB, MiB);
    await domain?.stop();
    await expectMergedBase(chain, raw);
    expect((await status(chain)).state).to.equal('idle');
  });

  it('rides out a libvirtd restarted mid-job and finishes the merge', async () => {
    const { chain, raw } = await start();
    cli = startCli(mergeArgs(chain, [...live(), '--rate-limit', RATE, '--log-level', 'info']), env());
    await untilJob();
    await restartLibvirtd();
    await domain?.write(0x62, 120 * MiB, MiB);
    const run = await cli.done;
    expect(run.exitCode, run.stderr).to.equal(0);
    expect(await domainChain(domain?.name ?? '')).to.deep.equal([chain.base]);
    await domain?.stop();
    await expectMergedBase(chain, raw);
  });

  it('leaves a merge whose domain was destroyed mid-job to a cold merge, which finishes the chain', async () => {
    const { chain, raw } = await start();
    const args = mergeArgs(chain, [...live(), '--rate-limit', RATE]);
    cli = startCli(args, env());
    await untilJob();
    await domain?.write(0x62, 120 * MiB, MiB);
    await domain?.kill();
    const failed = await cli.done;
    expect(failed.exitCode, failed.stderr).to.equal(1);
    expect((await status(chain)).job?.kind).to.equal('libvirt');
    const refused = await volmerge(args, env());
    expect(refused.exitCode).to.equal(1);
    const cold = await volmerge(mergeArgs(chain), env());
    expect(cold.stderr).to.contain('the live merge through libvirt ended before its pivot and a cold merge finishes the chain');
    expect(cold.exitCode, cold.stderr).to.equal(0);
    await expectMergedBase(chain, raw);
  });

  it('fails with bitmap-write-failed when libvirt drops a bitmap at the pivot and says it succeeded', async () => {
    const { chain } = await start();
    cli = startCli(mergeArgs(chain, [...live(), '--rate-limit', RATE, '--json']), env());
    await untilJob();
    // Test only: a bitmap disabled behind libvirt's back after the plan; libvirt then drops it silently at the pivot.
    const node = JSON.parse(await virshTest(['qemu-monitor-command', domain?.name ?? '', '{"execute":"query-named-block-nodes","arguments":{"flat":true}}'])) as {
      return: { 'node-name': string; drv: string; file: string }[];
    };
    // libvirt names a layer's nodes libvirt-N-storage and libvirt-N-format.
    const topNode = node.return.find((n) => n.drv === 'file' && n.file === chain.top)?.['node-name'].replace(/-storage$/, '-format');
    await virshTest(['qemu-monitor-command', domain?.name ?? '', JSON.stringify({ execute: 'block-dirty-bitmap-disable', arguments: { node: topNode, name: 'toponly' } })]);
    expect(topNode, 'top\'s node').to.be.a('string');
    const run = await cli.done;
    expect(run.exitCode, run.stdout + run.stderr).to.equal(1);
    const error = (JSON.parse(run.stdout) as { error: { code: string; message: string } }).error;
    expect(error.code).to.equal('bitmap-write-failed');
    expect(error.message).to.match(/bitmap toponly is missing, disabled or inconsistent after libvirt's commit .* though libvirt reported success/);
    // The merge itself is done, and nothing is left to finish.
    expect(await domainChain(domain?.name ?? '')).to.deep.equal([chain.base]);
    expect(await keptJobs()).to.deep.equal([]);
    await domain?.stop();
    expect((await bitmapsIn(chain.base)).map((b) => b.name)).to.deep.equal(['shared']);
  });
});
