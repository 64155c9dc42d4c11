// The cold merge's qemu-storage-daemon session: top is only ever opened read-only (its bytes are the same afterwards),
// the daemon dies with volmerge even when volmerge alone is killed (no image stays held), and without the daemon
// qemu-img does every step to the same end.
import { expect } from 'chai';
import { scanJournals } from '../../src/engine/host-store.js';
import { writeLockedByOther } from '../../src/os/file-locks.js';
import { checksum, runCli, startCli } from '../helpers/cli.js';
import { expectMerged, prepareChain } from '../helpers/crash-harness.js';
import { freshWorkspaceEachTest } from '../helpers/hooks.js';
import { sleep, untilHeldOpen } from '../helpers/wait.js';
import type { Workspace } from '../helpers/workspace.js';

describe('the cold merge in one qemu-storage-daemon session (files)', function () {
  this.timeout(120_000);
  let ws: Workspace;
  freshWorkspaceEachTest((fresh) => (ws = fresh), 'volmerge-daemon-');

  it('never writes top: its bytes are the same after the merge, and base holds its data and exactly its kept bitmaps', async () => {
    const chain = await prepareChain(ws, 'file');
    const before = await checksum(chain.top);
    const merged = await runCli(['merge', '--top', chain.top, '--base', chain.base, '--json'], chain.env);
    expect(merged.exitCode, merged.stderr).to.equal(0);
    await expectMerged(chain);
    expect(await checksum(chain.top), 'top byte for byte as before').to.equal(before);
  });

  it('ends the same way without qemu-storage-daemon: qemu-img does every step', async () => {
    const chain = await prepareChain(ws, 'file');
    const env = { ...chain.env, VOLMERGE_QEMU_STORAGE_DAEMON: ws.path('no-qemu-storage-daemon') };
    const merged = await runCli(['merge', '--top', chain.top, '--base', chain.base, '--json'], env);
    expect(merged.exitCode, merged.stderr).to.equal(0);
    await expectMerged(chain);
  });

  it('takes the daemon down with volmerge when volmerge alone is SIGKILLed inside the commit: nothing holds base, the same command finishes', async () => {
    const chain = await prepareChain(ws, 'file');
    const args = ['merge', '--top', chain.top, '--base', chain.base];
    const merge = startCli([...args, '--rate-limit', String(8 * 1024 * 1024)], chain.env);
    for (let deadline = Date.now() + 60_000; ; ) {
      const [entry] = await scanJournals(chain.stateDir).catch(() => []);
      if (entry && 'journal' in entry && entry.journal.steps.commit) break;
      if (merge.exited() || Date.now() > deadline) throw new Error(`the merge never reached the commit: ${(await merge.done).stderr}`);
      await sleep(25);
    }
    await untilHeldOpen(chain.base, () => merge.exited());
    // volmerge's process only, not its group: nothing but the daemon's parent-death signal can stop the daemon now.
    if (merge.pid === undefined) throw new Error('no pid');
    process.kill(merge.pid, 'SIGKILL');
    // done resolves once the whole process group is gone, daemon included (it fails after 10 s otherwise).
    const crashed = await merge.done;
    expect(crashed.signal).to.equal('SIGKILL');
    expect(await writeLockedByOther(chain.base), 'no process holds base').to.equal(false);
    const resumed = await runCli([...args, '--json'], chain.env);
    expect(resumed.exitCode, resumed.stderr).to.equal(0);
    await expectMerged(chain);
  });
});
