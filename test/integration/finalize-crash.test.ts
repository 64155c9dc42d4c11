// Crash points at the boundaries of the end-of-merge steps (retire, rebase, shrink, remove-top): SIGKILL the CLI merge's
// process group there, run the same merge again, and it must finish: child backed by base and reading as before, top gone.
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { scanJournals } from '../../src/engine/host-store.js';
import { sh } from '../helpers/commands.js';
import { rawCopy, sameData } from '../helpers/images.js';
import { Workspace } from '../helpers/workspace.js';
import { AgentProcess, AgentWorkspace, freshAgentWorkspaceEachTest, mergeParams } from '../helpers/agent-harness.js';

import { backingOf, expectInternalMerged, prepareInternalChain } from '../helpers/finalize-harness.js';
import { exists } from '../helpers/wait.js';
import { freshWorkspaceEachTest } from '../helpers/hooks.js';
import { runCli } from '../helpers/cli.js';

const FINALIZE_STEPS = ['retire', 'rebase', 'shrink', 'remove-top'];

describe('crash at the boundaries of the end-of-merge steps, then the same merge again (files)', function () {
  this.timeout(120_000);
  let ws: Workspace;
  freshWorkspaceEachTest((fresh) => (ws = fresh), 'volmerge-finalize-crash-');

  for (const crashAt of FINALIZE_STEPS.flatMap((step) => [`${step}:before`, `${step}:after`])) {
    it(`finishes an internal merge with --remove-top after a SIGKILL at ${crashAt}`, async () => {
      const chain = await prepareInternalChain(ws, { relative: true });
      const args = ['merge', '--top', chain.top, '--base', chain.base, '--child', chain.child, '--remove-top', '--shrink'];
      const crashed = await runCli(args, { ...chain.env, VOLMERGE_CRASH_AT: crashAt });
      expect(crashed.signal, `killed at ${crashAt}: ${crashed.stderr}`).to.equal('SIGKILL');
      const [entry] = await scanJournals(chain.stateDir);
      const step = crashAt.split(':')[0] as 'retire' | 'rebase' | 'shrink' | 'remove-top';
      // A file base is never shrunk: that step is idle, so it is journaled only with the next step's write and a crash
      // around it finds no record of it (the resumed job runs it again). The other steps are journaled as they go, except
      // that a step's done goes to disk with the next durable start: retire's with rebase's, and rebase's, past the idle
      // shrink, with remove-top's. Right after retire or rebase the journal still says started, and the resumed job does
      // it again (top marked retired again, the child found on base already: harmless).
      const recorded = step === 'shrink' ? undefined : crashAt.endsWith(':before') || crashAt === 'retire:after' || crashAt === 'rebase:after' ? 'started' : 'done';
      expect(entry && 'journal' in entry ? entry.journal.steps[step]?.status : undefined).to.equal(recorded);
      const topGone = crashAt === 'remove-top:after';
      expect(await exists(chain.top), 'top is removed only by remove-top').to.equal(!topGone);

      const status = await runCli(['status', '--base', chain.base, '--json'], chain.env);
      expect((JSON.parse(status.stdout) as { state: string }).state).to.equal('unfinished');

      const resumed = await runCli([...args, '--json'], chain.env);
      expect(resumed.exitCode, resumed.stderr).to.equal(0);
      expect((JSON.parse(resumed.stdout) as { status: string }).status).to.equal('done');
      await expectInternalMerged(chain);
      expect(await exists(chain.top), 'top removed').to.equal(false);
      expect((await readdir(ws.dir)).filter((name) => name.includes('volmerge')), 'no mark left').to.deep.equal([]);
      expect(await readdir(join(chain.stateDir, 'jobs')), 'no journal left').to.deep.equal([]);
    });
  }
});

describe('agent killed right after removing top, then started again', function () {
  this.timeout(120_000);
  let workspace: AgentWorkspace;
  let agent: AgentProcess | undefined;
  freshAgentWorkspaceEachTest((fresh) => (workspace = fresh));

  it('resumes the job under its id with top already gone (not volume-deleted), and bumps the generation once', async () => {
    const env = { VOLMERGE_LOCK_DIR: join(workspace.dir, 'locks') };
    const chain = await workspace.chain({ virtualSize: '64M', shared: ['shared'], baseDataMiB: 2, topDataMiB: 4 });
    const child = join(workspace.domains, chain.subchain.sd_id, 'images', chain.subchain.img_id, randomUUID());
    await sh(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', chain.subchain.top_id, '-F', 'qcow2', child]);
    await sh(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0x44 1M 1M', child]);
    const rawChild = join(workspace.dir, 'child.raw');
    await rawCopy(child, rawChild);

    agent = await AgentProcess.start(workspace, [], { ...env, VOLMERGE_CRASH_AT: 'remove-top:after' });
    const params = { ...mergeParams(chain, undefined, { base_generation: 0 }), remove_top: true };
    await agent.client.result('SDM.merge', params);
    await agent.exit();
    agent = undefined;
    expect(await exists(chain.top), 'top was removed before the crash').to.equal(false);

    agent = await AgentProcess.start(workspace, [], env);
    const job = await agent.finished(params.job_id);
    expect(job.status, JSON.stringify(job.error)).to.equal('done');
    expect(await backingOf(child)).to.equal(chain.base);
    expect(await sameData(child, rawChild)).to.equal(true);
    expect(await sameData(chain.base, chain.raw)).to.equal(true);
    expect(await readFile(`${chain.base}.volmerge-gen`, 'utf8')).to.equal('1\n');
  });
});
