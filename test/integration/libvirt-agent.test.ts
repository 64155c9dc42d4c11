// The agent's VM.merge through libvirt (`volmerge agent --libvirt URI`) with a real libvirtd (scripts/test-libvirtd) and
// a TCG domain with no guest OS on a chain in a file domain (SDM-style addressing: sd, image and volume ids; vmID the
// domain's UUID): the job in Host.getJobs with progress to done, Job.abort before the pivot, an agent killed mid-job
// that finishes the job at its next start under the same id, and refusals that change nothing. After each merge the
// domain is stopped and qemu-img checks base: data as the guest saw it, bitmaps carried, valid and covering every write.
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { mkdir, readdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { AgentProcess, freshAgentWorkspaceEachTest, type AgentWorkspace, type JobView } from '../helpers/agent-harness.js';
import { checksums } from '../helpers/cli.js';
import { sh } from '../helpers/commands.js';
import { bitmapsIn } from '../helpers/images.js';
import { domainChain, domainJob, domainUuid, haveLibvirt, startDomain, testLibvirtd, type TestDomain } from '../helpers/libvirt.js';
import { applyWrites, BASE_DATA, buildLiveChain, expectCovers, expectSameData, expectValidBitmaps, extentsOf, guestView, TOP_DATA, type BuiltChain } from '../helpers/live-chain.js';
import { sleep } from '../helpers/wait.js';

const MiB = 1024 * 1024;
const ENDED = ['done', 'failed', 'aborted'];

describe('agent: VM.merge through libvirt (--libvirt)', function () {
  this.timeout(180_000);
  let ws: AgentWorkspace;
  let domain: TestDomain | undefined;
  let uri = '';
  before(async function () {
    if (!haveLibvirt()) this.skip();
    uri = await testLibvirtd();
  });
  freshAgentWorkspaceEachTest((fresh) => (ws = fresh));
  afterEach(async () => {
    await domain?.kill();
    domain = undefined;
  });

  /** A live chain in a file domain (volume ids as links to its images), a domain running it, and VM.merge's params. */
  async function setUp(): Promise<{ params: Record<string, unknown>; chain: BuiltChain; raw: string; jobId: string }> {
    const sdId = 'sd-libvirt';
    const imageId = randomUUID();
    const imageDir = join(ws.domains, sdId, 'images', imageId);
    await mkdir(imageDir, { recursive: true });
    const chain = await buildLiveChain(imageDir);
    const [topId, baseId] = [randomUUID(), randomUUID()];
    await symlink('top.qcow2', join(imageDir, topId));
    await symlink('base.qcow2', join(imageDir, baseId));
    const raw = join(ws.dir, 'guest.raw');
    await guestView(chain, raw);
    domain = await startDomain(ws.dir, chain.layers);
    const jobId = randomUUID();
    const params = { vmID: await domainUuid(domain.name), drive: { domainID: sdId, imageID: imageId, volumeID: topId }, baseVolUUID: baseId, topVolUUID: topId, bandwidth: 4, jobUUID: jobId };
    return { params, chain, raw, jobId };
  }

  /** Waits until libvirt shows the agent's block job on the disk; fails at once when the job ends first. */
  async function untilBlockJob(agent: AgentProcess, jobId: string): Promise<void> {
    for (const deadline = Date.now() + 60_000; ; await sleep(100)) {
      if ((await domainJob(domain?.name ?? '')).includes('Commit')) return;
      const job = await agent.job(jobId);
      if (ENDED.includes(job.status)) throw new Error(`job ended before libvirt showed its block job: ${JSON.stringify(job)}\n${agent.stderr}`);
      if (Date.now() > deadline) throw new Error('libvirt showed no block job within 60 s');
    }
  }

  /** Stops the domain, then base must read as the guest saw its disk, stale bitmaps gone, top's carried and covering every write. */
  async function stopAndExpectMerged(chain: BuiltChain, raw: string): Promise<void> {
    await domain?.stop();
    await applyWrites(raw, domain?.writes ?? []);
    await sh(['qemu-img', 'check', '-q', '-f', 'qcow2', chain.base]);
    await expectSameData(chain.base, raw);
    await expectValidBitmaps(chain.base, { shared: 64 * 1024, toponly: 128 * 1024 });
    await expectCovers(chain.base, 'toponly', [TOP_DATA, ...extentsOf(domain?.writes ?? [])]);
    await expectCovers(chain.base, 'shared', [BASE_DATA, TOP_DATA, ...extentsOf(domain?.writes ?? [])]);
  }

  /** The journals kept in the agent's state dir. */
  const keptJobs = async (): Promise<string[]> => readdir(join(ws.stateDir, 'jobs')).catch(() => []);

  it('merges the active layer as a job of Host.getJobs with progress, to done; the domain writes to base afterwards', async () => {
    const { params, chain, raw, jobId } = await setUp();
    const agent = await AgentProcess.start(ws, ['--libvirt', uri]);
    await domain?.write(0x21, 100 * MiB, MiB);
    expect(await agent.client.result('VM.merge', params)).to.equal(true);
    await untilBlockJob(agent, jobId);
    await domain?.write(0x22, 120 * MiB, MiB);
    const seen = await agent.waitFor(jobId, (j) => ENDED.includes(j.status), 120_000, 50);
    const last = seen[seen.length - 1] as JobView;
    expect(last.status, `${JSON.stringify(last)}\n${agent.stderr}`).to.equal('done');
    expect(last).to.include({ description: 'merge_subchain', job_type: 'storage' });
    expect(seen.some((j) => j.status === 'running' && j.progress > 0 && j.progress < 100), `progress seen: ${seen.map((j) => j.progress).join(',')}`).to.equal(true);
    expect(await domainChain(domain?.name ?? '')).to.deep.equal([chain.base]);
    expect(await domainJob(domain?.name ?? ''), 'no block job left').to.equal('');
    expect(await keptJobs(), 'no journal kept').to.deep.equal([]);
    await domain?.write(0x23, 140 * MiB, MiB);
    await stopAndExpectMerged(chain, raw);
  });

  it('cancels the block job on Job.abort before the pivot: the domain stays on top, the chain as it was, nothing kept', async () => {
    const { params, chain, raw, jobId } = await setUp();
    const agent = await AgentProcess.start(ws, ['--libvirt', uri]);
    expect(await agent.client.result('VM.merge', { ...params, bandwidth: 1 })).to.equal(true);
    await untilBlockJob(agent, jobId);
    await domain?.write(0x24, 120 * MiB, MiB);
    expect(await agent.client.result('Job.abort', { job_id: jobId })).to.equal(true);
    const job = await agent.finished(jobId, 60_000);
    expect(job.status, `${JSON.stringify(job)}\n${agent.stderr}`).to.equal('aborted');
    expect(await domainJob(domain?.name ?? ''), 'no block job left').to.equal('');
    expect(await domainChain(domain?.name ?? '')).to.deep.equal([chain.top, chain.base]);
    expect(await keptJobs(), 'no journal kept').to.deep.equal([]);
    await domain?.write(0x25, 140 * MiB, MiB);
    await domain?.stop();
    // The guest's disk is still top over base and reads as the guest saw it; top's bitmaps are where they were.
    await applyWrites(raw, domain?.writes ?? []);
    await expectSameData(chain.top, raw);
    await sh(['qemu-img', 'check', '-q', '-f', 'qcow2', chain.base]);
    await expectValidBitmaps(chain.base, { shared: 64 * 1024 });
    expect((await bitmapsIn(chain.top)).map((b) => [b.name, b.flags])).to.deep.equal([['shared', ['auto']], ['toponly', ['auto']]]);
  });

  it('finishes at its next start, under the same job id, a job whose agent was killed mid-job', async () => {
    const { params, chain, raw, jobId } = await setUp();
    const agent = await AgentProcess.start(ws, ['--libvirt', uri]);
    expect(await agent.client.result('VM.merge', { ...params, bandwidth: 2 })).to.equal(true);
    await untilBlockJob(agent, jobId);
    await agent.killHard();
    // The commit goes on inside the domain with no volmerge attached; the guest keeps writing.
    expect(await domainJob(domain?.name ?? '')).to.contain('Active Block Commit');
    await domain?.write(0x26, 120 * MiB, MiB);
    const again = await AgentProcess.start(ws, ['--libvirt', uri]);
    const job = await again.finished(jobId, 120_000);
    expect(job.status, `${JSON.stringify(job)}\n${again.stderr}`).to.equal('done');
    expect(again.stderr).to.match(/queued to finish from step/);
    expect(await domainChain(domain?.name ?? '')).to.deep.equal([chain.base]);
    expect(await domainJob(domain?.name ?? ''), 'no block job left').to.equal('');
    expect(await keptJobs(), 'no journal kept').to.deep.equal([]);
    await stopAndExpectMerged(chain, raw);
  });

  it('refuses VM.merge on an agent without --libvirt or --qmp-dir, and for an unknown vmID; nothing changes', async () => {
    const { params, chain } = await setUp();
    const before = await checksums([chain.base, chain.top]);
    const cases: [string[], Record<string, unknown>, string, RegExp][] = [
      [[], params, 'unsupported', /this agent runs no live merges; start it with --libvirt \[URI\]/],
      [['--libvirt', uri], { ...params, vmID: randomUUID() }, 'vm-gone', /has no such domain/],
      [['--libvirt', uri], { ...params, drop_inconsistent: true }, 'unsupported', /drop_inconsistent is not built for merges through libvirt/],
    ];
    for (const [args, call, name, pattern] of cases) {
      const agent = await AgentProcess.start(ws, args);
      const reply = await agent.client.call('VM.merge', call);
      const error = 'error' in reply ? reply.error : undefined;
      expect(error?.data?.name, JSON.stringify(reply)).to.equal(name);
      if (name === 'vm-gone') expect(error?.code, "vdsm's NoSuchVM, as vdsm answers for a VM it does not run").to.equal(1);
      expect(error?.message).to.match(pattern);
      expect(await agent.jobs(), 'no job added').to.deep.equal({});
      await agent.stop();
    }
    expect(await domainJob(domain?.name ?? ''), 'no block job').to.equal('');
    expect(await domainChain(domain?.name ?? '')).to.deep.equal([chain.top, chain.base]);
    expect(await keptJobs()).to.deep.equal([]);
    // Read while the domain still runs, as before (QEMU rewrites the bitmaps' flags when it closes the images).
    expect(await checksums([chain.base, chain.top]), 'base and top unchanged').to.deep.equal(before);
  });
});
