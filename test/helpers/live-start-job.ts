// Test helper run as its own process: starts a live merge's job as volmerge would (chain, plan, bitmaps disabled,
// stale bitmaps pruned, block-commit at one byte per second), prints "started", and holds the monitor until killed.
// Usage: node live-start-job.js SOCKET TOP BASE JOB_ID
import { disableForJob, findLiveChain, planLiveBitmaps, pruneLiveBitmaps, QmpClient, startCommit } from '../../src/live/index.js';

const [socket, top, base, jobId] = process.argv.slice(2);
if (!socket || !top || !base || !jobId) {
  console.error('usage: live-start-job SOCKET TOP BASE JOB_ID');
  process.exit(2);
}
const client = await QmpClient.connect(socket);
const chain = await findLiveChain(client, { top, base });
const plan = planLiveBitmaps(chain);
await disableForJob(client, chain, plan);
await pruneLiveBitmaps(client, chain, plan);
await startCommit(client, chain, { jobId, speed: 1 });
console.log('started');
// Hold the monitor (and the process) until the test kills it.
setInterval(() => undefined, 60_000);
