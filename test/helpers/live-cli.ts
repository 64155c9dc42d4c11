// Test helper: watching a live merge that the CLI runs, through the test's own QMP monitor of the VM.
import { queryJobs, type JobInfo } from '../../src/live/queries.js';
import type { QmpClient } from '../../src/qemu/qmp-client.js';
import type { StartedCli } from './cli.js';
import { sleep } from './wait.js';

/**
 * Waits until qemu lists volmerge's block job in one of the statuses; fails at once, with what the CLI printed, when
 * the CLI exits first (a refusal or a crash would otherwise look like a slow job).
 */
export async function waitForQemuJob(qmp: QmpClient, cli: StartedCli, statuses: readonly string[] = ['running'], timeoutMs = 60_000): Promise<JobInfo> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const job = (await queryJobs(qmp)).find((candidate) => candidate.id.startsWith('volmerge-'));
    if (job && statuses.includes(job.status)) return job;
    if (cli.exited()) {
      const run = await cli.done;
      throw new Error(`the CLI exited (${run.exitCode ?? run.signal}) before qemu listed its job as ${statuses.join('/')}: ${run.stderr.trim() || run.stdout.trim()}`);
    }
    if (Date.now() > deadline) throw new Error(`qemu did not list volmerge's job as ${statuses.join('/')} within ${timeoutMs} ms (last: ${job?.status ?? 'none'})`);
    await sleep(50);
  }
}
