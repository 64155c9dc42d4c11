// Fault injection over every step boundary and inside the commit: SIGKILL the CLI merge's whole process group there,
// run the same merge again, and it must finish with the right data and every bitmap a clean merge keeps.
import { expect } from 'chai';
import { chmod, readdir, writeFile } from 'node:fs/promises';
import { scanJournals } from '../../src/engine/host-store.js';
import { MERGE_STEPS } from '../../src/steps/cold-merge.js';
import { checkAgainst } from '../../src/schema.js';
import { sh } from '../helpers/commands.js';
import { bitmapsIn } from '../helpers/images.js';
import { canUseLoopDevices } from '../helpers/loop.js';
import { Workspace } from '../helpers/workspace.js';
import { expectMerged, prepareChain, type PreparedChain } from '../helpers/crash-harness.js';
import { freshWorkspaceEachTest } from '../helpers/hooks.js';
import { runCli } from '../helpers/cli.js';

/** Commit rate for the crashes inside the commit: 32 MiB at 16 MiB/s takes about two seconds. */
const SLOW_COMMIT = String(16 * 1024 * 1024);

// Inside the commit's qemu-storage-daemon session: during the copy, and once top's bitmaps are carried into base in
// memory but not yet written (carry:during); both leave base open read-write in the killed daemon.
const CRASH_POINTS = [...MERGE_STEPS.flatMap((step) => [`${step}:before`, `${step}:after`]), 'commit:during:30', 'commit:during:90', 'carry:during'];

/** VOLMERGE_QEMU_STORAGE_DAEMON pointing at nothing: qemu-img does every step, one run per bitmap. */
function noDaemon(ws: Workspace): Record<string, string> {
  return { VOLMERGE_QEMU_STORAGE_DAEMON: ws.path('no-qemu-storage-daemon') };
}

async function crashThenResume(chain: PreparedChain, crashAt: string, env: Record<string, string> = {}): Promise<void> {
  const args = ['merge', '--top', chain.top, '--base', chain.base];
  const crashed = await runCli([...args, ...(crashAt.includes(':during') ? ['--rate-limit', SLOW_COMMIT] : [])], {
    ...chain.env,
    ...env,
    VOLMERGE_CRASH_AT: crashAt,
  });
  expect(crashed.signal, `the merge was killed at ${crashAt}: ${crashed.stderr}`).to.equal('SIGKILL');
  if (crashAt.startsWith('commit:during') || crashAt === 'carry:during') {
    // What makes this hard: the killed writer leaves every bitmap of base in-use; qemu-img commit, which opens top
    // read-write, those of top too; qemu-storage-daemon opens top read-only and leaves them whole.
    const daemon = env.VOLMERGE_QEMU_STORAGE_DAEMON === undefined;
    const topBitmaps = await bitmapsIn(chain.top);
    expect(topBitmaps.every((b) => b.flags.includes('in-use') !== daemon), `top bitmaps ${daemon ? 'whole' : 'left in-use'} after the kill`).to.equal(true);
    expect((await bitmapsIn(chain.base)).every((b) => b.flags.includes('in-use')), 'base bitmaps left in-use by the kill').to.equal(true);
  }

  const resumed = await runCli([...args, '--json'], { ...chain.env, ...env });
  expect(resumed.exitCode, resumed.stderr).to.equal(0);
  const output = checkAgainst<{ status: string }>('merge-result.schema.json', JSON.parse(resumed.stdout), 'volmerge merge --json');
  expect(output.status).to.equal('done');
  await expectMerged(chain);
  expect(await readdir(`${chain.stateDir}/jobs`), 'the finished job leaves no journal or backup behind').to.deep.equal([]);
}

describe('crash at every step boundary and inside the commit, then the same merge again (files)', function () {
  this.timeout(120_000);
  let ws: Workspace;
  freshWorkspaceEachTest((fresh) => (ws = fresh), 'volmerge-crash-');

  for (const crashAt of CRASH_POINTS) {
    it(`finishes after a SIGKILL at ${crashAt}`, async () => {
      await crashThenResume(await prepareChain(ws, 'file'), crashAt);
    });
  }

  it('leaves no qemu-storage-daemon holding base after a SIGKILL inside the prune session: base opens at once, the merge finishes', async () => {
    const chain = await prepareChain(ws, 'file');
    const args = ['merge', '--top', chain.top, '--base', chain.base];
    const crashed = await runCli(args, { ...chain.env, VOLMERGE_CRASH_AT: 'prune:during:50' });
    expect(crashed.signal, crashed.stderr).to.equal('SIGKILL');
    // Without -U, qemu-img info is refused ("Failed to get shared write lock") while any process holds base read-write.
    await sh(['qemu-img', 'info', '--output', 'json', chain.base]);
    const [entry] = await scanJournals(chain.stateDir);
    expect(entry && 'journal' in entry ? entry.journal.steps.prune?.status : undefined).to.equal('started');
    const resumed = await runCli(args, chain.env);
    expect(resumed.exitCode, resumed.stderr).to.equal(0);
    await expectMerged(chain);
  });

  it('status shows an unfinished merge after a crash inside the commit, and idle once it is finished', async () => {
    const chain = await prepareChain(ws, 'file');
    const crashed = await runCli(['merge', '--top', chain.top, '--base', chain.base, '--rate-limit', SLOW_COMMIT], { ...chain.env, VOLMERGE_CRASH_AT: 'commit:during:50' });
    expect(crashed.signal).to.equal('SIGKILL');
    const status = await runCli(['status', '--base', chain.base, '--json'], chain.env);
    expect(status.exitCode, status.stderr).to.equal(0);
    const parsed = checkAgainst<{ state: string; mark: { jobId: string } | null; lock: unknown; job: { nextStep: string; jobId: string } | null }>(
      'status.schema.json',
      JSON.parse(status.stdout),
      'volmerge status --json',
    );
    expect(parsed.state).to.equal('unfinished');
    expect(parsed.lock, 'the killed merge holds no lock').to.equal(null);
    expect(parsed.job?.nextStep).to.equal('commit');
    expect(parsed.mark?.jobId).to.equal(parsed.job?.jobId);
    const human = await runCli(['status', '--base', chain.base], chain.env);
    expect(human.stdout).to.match(/unfinished merge/).and.to.match(/volmerge merge --top/);

    const dry = await runCli(['merge', '--top', chain.top, '--base', chain.base, '--dry-run'], chain.env);
    expect(dry.exitCode, dry.stderr).to.equal(0);
    expect(dry.stdout).to.match(/would be finished from step commit/);

    const resumed = await runCli(['merge', '--top', chain.top, '--base', chain.base], chain.env);
    expect(resumed.exitCode, resumed.stderr).to.equal(0);
    expect(resumed.stdout).to.match(/finished the merge that job .* had left at step commit/);
    const after = JSON.parse((await runCli(['status', '--base', chain.base, '--json'], chain.env)).stdout) as { state: string; mark: unknown };
    expect(after.state).to.equal('idle');
    expect(after.mark).to.equal(null);
    await expectMerged(chain);
  });
});

/**
 * A qemu-img wrapper that, on the run whose argv contains MATCH, runs it, then leaves every bitmap of IMAGE in-use
 * (qemu-io abort, as a crash in the middle of a bitmap write does) and SIGKILLs the merge's process group.
 */
async function crashingQemuImg(ws: Workspace): Promise<string> {
  const path = ws.path('qemu-img-crashing');
  await writeFile(
    path,
    [
      '#!/bin/bash',
      'qemu-img "$@"; status=$?',
      'if [[ " $* " == *" $CRASH_WRAP_MATCH "* ]]; then',
      '  qemu-io -f qcow2 -c abort "$CRASH_WRAP_IMAGE" >/dev/null 2>&1',
      '  kill -KILL -- -"$(ps -o pgid= $$ | tr -d " ")"',
      'fi',
      'exit $status',
      '',
    ].join('\n'),
  );
  await chmod(path, 0o755);
  return path;
}

describe('crash in the middle of a step that writes base bitmaps (files)', function () {
  this.timeout(120_000);
  let ws: Workspace;
  freshWorkspaceEachTest((fresh) => (ws = fresh), 'volmerge-crash-mid-');

  // Which qemu-img run to crash in: removing stale1 from base (prune), merging toponly from top into base (bitmaps).
  for (const [step, match] of [
    ['prune', (c: PreparedChain) => `${c.base} stale1`],
    ['bitmaps', (c: PreparedChain) => `${c.top} ${c.base} toponly`],
  ] as const) {
    it(`rebuilds base's bitmaps from the backup after a kill inside ${step}`, async () => {
      const chain = await prepareChain(ws, 'file');
      const wrapper = await crashingQemuImg(ws);
      const args = ['merge', '--top', chain.top, '--base', chain.base];
      // No qemu-storage-daemon: prune then removes one bitmap per qemu-img run, which the wrapper can crash in.
      const crashed = await runCli(args, {
        ...chain.env,
        ...noDaemon(ws),
        VOLMERGE_QEMU_IMG: wrapper,
        CRASH_WRAP_MATCH: match(chain),
        CRASH_WRAP_IMAGE: chain.base,
      });
      expect(crashed.signal, crashed.stderr).to.equal('SIGKILL');
      const [entry] = await scanJournals(chain.stateDir);
      expect(entry && 'journal' in entry ? entry.journal.steps[step]?.status : undefined).to.equal('started');
      const broken = await bitmapsIn(chain.base);
      expect(broken.length > 0 && broken.every((b) => b.flags.includes('in-use')), 'base bitmaps left in-use').to.equal(true);
      const resumed = await runCli(args, chain.env);
      expect(resumed.exitCode, resumed.stderr).to.equal(0);
      await expectMerged(chain);
    });
  }
});

describe('crash inside the steps that write bitmaps without qemu-storage-daemon (qemu-img does them), then the same merge again (files)', function () {
  this.timeout(120_000);
  let ws: Workspace;
  freshWorkspaceEachTest((fresh) => (ws = fresh), 'volmerge-crash-img-');

  // qemu-img commit opens top read-write: the commit step first backs top's bitmaps up, and a crash inside it is
  // repaired from that copy.
  for (const crashAt of ['prune:during:50', 'commit:before', 'commit:during:50', 'commit:after', 'bitmaps:before']) {
    it(`finishes after a SIGKILL at ${crashAt}`, async () => {
      await crashThenResume(await prepareChain(ws, 'file'), crashAt, noDaemon(ws));
    });
  }
});

describe('crash inside the commit on fixed-size block devices (mark kept in the state folder)', function () {
  this.timeout(120_000);
  let ws: Workspace;
  before(async function () {
    if (!(await canUseLoopDevices())) this.skip();
  });
  freshWorkspaceEachTest((fresh) => (ws = fresh), 'volmerge-crash-blk-');

  for (const crashAt of ['prune:before', 'commit:during:50', 'carry:during', 'bitmaps:before', 'verify:after']) {
    it(`finishes after a SIGKILL at ${crashAt}`, async () => {
      await crashThenResume(await prepareChain(ws, 'block'), crashAt);
    });
  }
});
