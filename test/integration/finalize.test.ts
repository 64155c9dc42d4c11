// The end of a merge on files: internal merge (child rebased onto base), top removed or retired, shrink skipped for files,
// a failing rebase that leaves the chain as it was, refusals that change nothing, and the agent finding the child itself.
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { chmod, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { checkAgainst } from '../../src/schema.js';
import { checksums, runCli } from '../helpers/cli.js';
import { sh } from '../helpers/commands.js';
import { bitmapsIn, makeChain, rawCopy, sameData } from '../helpers/images.js';
import { canUseLoopDevices } from '../helpers/loop.js';
import { Workspace } from '../helpers/workspace.js';
import { AgentProcess, AgentWorkspace, freshAgentWorkspaceEachTest, mergeParams } from '../helpers/agent-harness.js';

import { backingOf, expectChainAsBefore, expectInternalMerged, prepareInternalChain, type InternalChain } from '../helpers/finalize-harness.js';
import { exists, untilHeldOpen } from '../helpers/wait.js';
import { freshWorkspaceEachTest } from '../helpers/hooks.js';

interface Result {
  status: string;
  plan: { finalize?: { child: string | null; retireTop: boolean; removeTop: boolean; shrink: { planned: boolean; reason?: string } | null } } | null;
  error?: { code: string; message: string };
}

async function merge(chain: InternalChain, extra: string[]): Promise<{ exitCode: number | undefined; result: Result; stderr: string; stdout: string }> {
  const run = await runCli(['merge', '--top', chain.top, '--base', chain.base, '--json', ...extra], chain.env);
  const result = checkAgainst<Result>('merge-result.schema.json', JSON.parse(run.stdout), 'volmerge merge --json');
  return { exitCode: run.exitCode, result, stderr: run.stderr, stdout: run.stdout };
}

/** Whether `chattr +i` works in this folder (not on tmpfs, say). */
async function canMakeImmutable(path: string): Promise<boolean> {
  const probe = `${path}.probe`;
  await writeFile(probe, '');
  const set = await execa('chattr', ['+i', probe], { reject: false });
  if (set.exitCode !== 0) return false;
  await execa('chattr', ['-i', probe], { reject: false });
  return true;
}

/** A qemu-img that fails every rebase, as a child on read-only storage would. */
async function failingRebaseQemuImg(ws: Workspace): Promise<string> {
  const path = ws.path('qemu-img-no-rebase');
  await writeFile(path, '#!/bin/bash\nif [[ "$1" == rebase ]]; then echo "qemu-img: Could not open child: Permission denied" >&2; exit 1; fi\nexec qemu-img "$@"\n');
  await chmod(path, 0o755);
  return path;
}

describe('finishing a merge on files', function () {
  this.timeout(120_000);
  let ws: Workspace;
  freshWorkspaceEachTest((fresh) => (ws = fresh), 'volmerge-finalize-');

  it('internal merge with --remove-top: child backed by base and reading as before, top and its sidecars gone, bitmaps as in a merge', async () => {
    const chain = await prepareInternalChain(ws, { relative: true });
    const { exitCode, result, stderr } = await merge(chain, ['--child', chain.child, '--remove-top', '--shrink']);
    expect(exitCode, stderr).to.equal(0);
    expect(result.status).to.equal('done');
    expect(result.plan?.finalize).to.deep.include({ child: chain.child, retireTop: true, removeTop: true });
    expect(result.plan?.finalize?.shrink).to.deep.include({ planned: false });
    expect(result.plan?.finalize?.shrink?.reason).to.match(/is a file/);
    await expectInternalMerged(chain);
    expect((await execa('qemu-img', ['info', '--output', 'json', chain.child])).stdout, 'the relative name style is kept').to.match(/"backing-filename": "base\.qcow2"/);
    expect(await exists(chain.top), 'top removed').to.equal(false);
    const left = (await readdir(ws.dir)).filter((name) => name.includes('volmerge'));
    expect(left, 'no mark or sidecar left beside the volumes').to.deep.equal([]);
    expect(await readdir(join(chain.stateDir, 'jobs')), 'the finished job leaves no journal').to.deep.equal([]);
  });

  it('internal merge without --remove-top: top stays, retired, and a later merge of it is refused without a change', async () => {
    const chain = await prepareInternalChain(ws);
    const { exitCode, stderr } = await merge(chain, ['--child', chain.child]);
    expect(exitCode, stderr).to.equal(0);
    await expectInternalMerged(chain);
    expect(await sameData(chain.top, chain.rawTop), 'top kept and reading the same').to.equal(true);
    expect(await exists(`${chain.top}.volmerge-retired`), 'top carries the retired mark').to.equal(true);
    const before = await checksums([chain.base, chain.top, chain.child]);
    const again = await merge(chain, []);
    expect(again.exitCode).to.equal(1);
    expect(again.result.error?.code).to.equal('volume-retired');
    expect(again.stderr.trim().split('\n')).to.have.length(1);
    expect(again.stderr).to.match(/top .*top\.qcow2 was merged into its base and retired by job .*remove it \(rm /);
    expect(await checksums([chain.base, chain.top, chain.child]), 'nothing changed').to.deep.equal(before);
  });

  it('a plain merge with --remove-top removes the leaf top; base becomes the leaf', async () => {
    const base = ws.path('base.qcow2');
    const top = ws.path('top.qcow2');
    await makeChain(base, top, { virtualSize: '64M', shared: ['shared'], baseDataMiB: 2, topDataMiB: 4 });
    const raw = ws.path('top.raw');
    await rawCopy(top, raw);
    const run = await runCli(['merge', '--top', top, '--base', base, '--remove-top'], { VOLMERGE_STATE_DIR: ws.path('state'), VOLMERGE_LOCK_DIR: ws.path('locks') });
    expect(run.exitCode, run.stderr).to.equal(0);
    expect(run.stdout).to.match(/remove top: .*top\.qcow2, once nothing is backed by it/).and.to.match(/top .*top\.qcow2 removed/);
    expect(await exists(top)).to.equal(false);
    expect(await sameData(base, raw)).to.equal(true);
    expect((await bitmapsIn(base)).map((b) => `${b.name}:${b.flags.join('+')}`)).to.deep.equal(['shared:auto']);
  });

  it('--dry-run shows the end of the merge and changes nothing', async () => {
    const chain = await prepareInternalChain(ws, { relative: true });
    const before = await checksums([chain.base, chain.top, chain.child]);
    const human = await runCli(['merge', '--top', chain.top, '--base', chain.base, '--child', chain.child, '--remove-top', '--shrink', '--dry-run'], chain.env);
    expect(human.exitCode, human.stderr).to.equal(0);
    expect(human.stdout).to.match(/rebase child: +.*child\.qcow2 onto base \(backing "top\.qcow2" -> "base\.qcow2"\)/);
    expect(human.stdout).to.match(/retire top: /).and.to.match(/remove top: /).and.to.match(/shrink base: +no: base .* is a file/);
    const { exitCode, result } = await merge(chain, ['--child', chain.child, '--dry-run']);
    expect(exitCode).to.equal(0);
    expect(result.status).to.equal('planned');
    expect(result.plan?.finalize).to.deep.equal({ child: chain.child, retireTop: true, removeTop: false, shrink: null });
    expect(await checksums([chain.base, chain.top, chain.child]), 'nothing changed').to.deep.equal(before);
    expect(await exists(`${chain.top}.volmerge-retired`)).to.equal(false);
  });

  describe('refusals change nothing', () => {
    async function expectRefused(chain: InternalChain, extra: string[], code: string, pattern: RegExp, watched: string[]): Promise<void> {
      const before = await checksums(watched);
      const { exitCode, result, stderr } = await merge(chain, extra);
      expect(exitCode, stderr).to.equal(1);
      expect(result.status).to.equal('failed');
      expect(result.error?.code).to.equal(code);
      const lines = stderr.trim().split('\n');
      expect(lines, 'one line on stderr').to.have.length(1);
      expect(lines[0]).to.match(pattern);
      expect(await checksums(watched), 'volumes unchanged').to.deep.equal(before);
      expect((await readdir(ws.dir)).filter((name) => name.includes('volmerge')), 'no mark left').to.deep.equal([]);
    }

    it('refuses a child that is not backed by top', async () => {
      const chain = await prepareInternalChain(ws);
      const stranger = ws.path('stranger.qcow2');
      await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', chain.base, '-F', 'qcow2', stranger]);
      await expectRefused(chain, ['--child', stranger], 'bad-chain', /child .*stranger\.qcow2 is backed by .*base\.qcow2, not by top .*top\.qcow2/, [chain.base, chain.top, chain.child, stranger]);
    });

    it('refuses top given as its own child', async () => {
      const chain = await prepareInternalChain(ws);
      await expectRefused(chain, ['--child', chain.top], 'bad-chain', /child .*top\.qcow2 is the top volume itself/, [chain.base, chain.top, chain.child]);
    });

    it('refuses --remove-top while a volume backed by top is not given as --child', async () => {
      const chain = await prepareInternalChain(ws);
      await expectRefused(chain, ['--remove-top'], 'bad-chain', /top .*top\.qcow2 cannot be removed: .*child\.qcow2 is backed by it; give its child as --child/, [chain.base, chain.top, chain.child]);
    });

    it('refuses a child that another process holds open (a running VM), naming it', async () => {
      const chain = await prepareInternalChain(ws);
      const holder = execa('qemu-io', ['-f', 'qcow2', '-c', 'sleep 60000', chain.child], { reject: false, stdin: 'ignore' });
      try {
        await untilHeldOpen(chain.child, () => holder.exitCode !== null);
        await expectRefused(chain, ['--child', chain.child], 'busy', /child .*child\.qcow2: another process holds it open and lets nobody write it .*a cold merge needs it unused/, [chain.base, chain.top]);
      } finally {
        holder.kill('SIGKILL');
        await holder;
      }
    });

    it('refuses --remove-top when top has a second child besides the one given', async () => {
      const chain = await prepareInternalChain(ws);
      const second = ws.path('second.qcow2');
      await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', chain.top, '-F', 'qcow2', second]);
      await expectRefused(chain, ['--child', chain.child, '--remove-top'], 'bad-chain', /cannot be removed: .*second\.qcow2 is backed by it/, [chain.base, chain.top, chain.child, second]);
    });
  });

  it('on fixed-size block devices: --shrink is skipped with the reason in the plan, --remove-top is refused and changes nothing', async function () {
    if (!(await canUseLoopDevices())) this.skip();
    const volumes = { base: await ws.blockDevice('base', 64 * 1024 * 1024), top: await ws.blockDevice('top', 64 * 1024 * 1024), child: ws.path('child.qcow2') };
    const chain = await prepareInternalChain(ws, { volumes, skipBitmapContents: true });
    const dry = await merge(chain, ['--child', chain.child, '--shrink', '--dry-run']);
    expect(dry.exitCode, dry.stderr).to.equal(0);
    expect(dry.result.plan?.finalize?.shrink?.reason).to.match(/is a fixed-size block device: it cannot be shrunk/);
    const before = await checksums([chain.base, chain.top, chain.child]);
    const refused = await merge(chain, ['--child', chain.child, '--remove-top']);
    expect(refused.exitCode).to.equal(1);
    expect(refused.result.error?.code).to.equal('unsupported');
    expect(refused.stderr).to.match(/top \/dev\/loop\d+ is a plain block device: volmerge removes only LVs and files/);
    expect(await checksums([chain.base, chain.top, chain.child]), 'nothing changed').to.deep.equal(before);
  });

  it('a rebase that fails leaves child -> top -> base reading as before with top unmarked, and a rerun completes', async () => {
    const chain = await prepareInternalChain(ws);
    const immutable = await canMakeImmutable(chain.child);
    const env = { ...chain.env };
    if (immutable) await sh(['chattr', '+i', chain.child]);
    else env.VOLMERGE_QEMU_IMG = await failingRebaseQemuImg(ws);
    let failed: Awaited<ReturnType<typeof runCli>>;
    try {
      failed = await runCli(['merge', '--top', chain.top, '--base', chain.base, '--child', chain.child, '--remove-top', '--json'], env);
    } finally {
      if (immutable) await sh(['chattr', '-i', chain.child]);
    }
    expect(failed.exitCode, failed.stderr).to.equal(1);
    const result = JSON.parse(failed.stdout) as Result;
    expect(result.error?.code).to.equal('rebase-failed');
    expect(failed.stderr).to.match(/still reads through top .*top\.qcow2, which is no longer marked: fix the cause and run the merge again/);
    await expectChainAsBefore(chain);
    expect(await exists(`${chain.top}.volmerge-retired`), 'top unmarked').to.equal(false);
    expect(await exists(`${chain.base}.volmerge-merging`), 'base unmarked (verified before the rebase)').to.equal(false);
    expect(await sameData(chain.base, chain.rawTop), 'base already holds top').to.equal(true);

    const status = JSON.parse((await runCli(['status', '--base', chain.base, '--json'], chain.env)).stdout) as { state: string; job: { nextStep: string } | null };
    expect(status.state).to.equal('unfinished');
    expect(status.job?.nextStep, 'the rerun retires top again before rebasing').to.equal('retire');

    const rerun = await runCli(['merge', '--top', chain.top, '--base', chain.base, '--child', chain.child, '--remove-top'], chain.env);
    expect(rerun.exitCode, rerun.stderr).to.equal(0);
    await expectInternalMerged(chain);
    expect(await exists(chain.top)).to.equal(false);
    expect(await readdir(join(chain.stateDir, 'jobs'))).to.deep.equal([]);
  });
});

describe('agent: internal merge on a file domain', function () {
  this.timeout(120_000);
  let workspace: AgentWorkspace;
  let agent: AgentProcess | undefined;
  freshAgentWorkspaceEachTest((fresh) => (workspace = fresh));

  it('finds top\'s child in the image folder, rebases it onto base and removes top when remove_top is set', async () => {
    agent = await AgentProcess.start(workspace);
    const chain = await workspace.chain({ virtualSize: '64M', shared: ['shared'], baseDataMiB: 2, topDataMiB: 4, topDataOffsetMiB: 1 });
    const imageDir = join(workspace.domains, chain.subchain.sd_id, 'images', chain.subchain.img_id);
    const childId = randomUUID();
    const child = join(imageDir, childId);
    await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', chain.subchain.top_id, '-F', 'qcow2', child]);
    await sh(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0x33 3M 2M', child]);
    await writeFile(join(imageDir, `${childId}.meta`), 'vdsm metadata stand-in\n');
    const rawChild = join(workspace.dir, 'child.raw');
    await rawCopy(child, rawChild);

    const params = { ...mergeParams(chain), remove_top: true, shrink: true };
    expect(await agent.client.result('SDM.merge', params)).to.equal(true);
    const job = await agent.finished(params.job_id);
    expect(job.status, JSON.stringify(job.error)).to.equal('done');
    expect(await backingOf(child)).to.equal(chain.base);
    expect(await sameData(child, rawChild)).to.equal(true);
    expect(await sameData(chain.base, chain.raw)).to.equal(true);
    expect(await exists(chain.top), 'top removed').to.equal(false);
    expect((await execa('qemu-img', ['info', '--output', 'json', child])).stdout).to.include(`"backing-filename": "${chain.subchain.base_id}"`);
  });

  it('refuses remove_top on a file domain image whose top has two children, changing nothing', async () => {
    agent = await AgentProcess.start(workspace);
    const chain = await workspace.chain({ virtualSize: '64M', topDataMiB: 2 });
    const imageDir = join(workspace.domains, chain.subchain.sd_id, 'images', chain.subchain.img_id);
    const children = [join(imageDir, randomUUID()), join(imageDir, randomUUID())];
    for (const child of children) await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', chain.subchain.top_id, '-F', 'qcow2', child]);
    const before = await checksums([chain.base, chain.top, ...children]);
    const error = await agent.client.call('SDM.merge', { ...mergeParams(chain), remove_top: true });
    expect(error).to.have.nested.property('error.data.name', 'bad-chain');
    expect(await checksums([chain.base, chain.top, ...children])).to.deep.equal(before);
  });
});
