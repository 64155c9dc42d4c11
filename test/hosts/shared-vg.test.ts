// Two hosts on one shared VG (lvmlockd + sanlock), in two VMs sharing one raw disk (npm run test:hosts): a merge on one
// host refuses the same chain on the other with locked-by-other-host and changes nothing; two chains merge at once on the
// two hosts; an agent killed mid-commit and started again resumes its job from the VG's job LV under the same job id and
// leaves base and top as they were before the job, and a recovered job that the other host finishes ends; a host killed
// mid-commit leaves the chain to the other, which finishes it once the dead host's lease expires.
import { expect } from 'chai';
import { Cluster, type GuestHost, type HostResult, type RunningCommand } from './cluster.js';

const VG = 'vgshared';
/** Give up on the cluster after this long (the whole run stays well under it). */
const VM_TIMEOUT_S = 1500;
/** How long a dead host's sanlock lease may take to expire before the test gives up on the take-over. */
const TAKEOVER_LIMIT_MS = 420_000;

const CLI = ['node', 'dist/src/volmerge.cjs'];
/** The agent's socket and state folder inside a host (guest-local /tmp). */
const AGENT_SOCKET = '/tmp/volmerge-agent.sock';
const AGENT_STATE = '/tmp/volmerge-agent-state';

/** A job as Host.getJobs shows it (the fields this suite reads). */
interface JobView {
  id: string;
  status: string;
  progress: number;
  step?: string;
  cli_job_id?: string;
  error?: { code: number; message: string; name?: string };
}
const TOOL = ['node', 'dist/test/hosts/guest-tool.js'];

/** What a host sees of the VG (guest-tool state): LVs, the LV locks lvmlockd holds there (UUID -> ex or sh), device-mapper devices. */
interface VgState {
  seqno: string;
  locks: Record<string, string>;
  lvs: Record<string, string>[];
  dm: string[];
}

/** How an LV is active on the host whose state this is: lvs' lv_active_locally, and the lock lvmlockctl --info names. */
function activation(state: VgState, lv: string): { active: string; lock: string } {
  const row = state.lvs.find((r) => r.lv_name === lv);
  if (!row) throw new Error(`no LV ${lv} in ${JSON.stringify(state.lvs.map((r) => r.lv_name))}`);
  return { active: row.lv_active_locally ?? '', lock: state.locks[row.lv_uuid ?? ''] ?? 'none' };
}

interface MergeJson {
  status: 'done' | 'planned' | 'failed';
  error?: { code: string; message: string };
}

/** What the scenarios measured, printed at the end. */
const timings: [string, number][] = [];

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function note(what: string, ms: number): void {
  timings.push([what, ms]);
  console.log(`      ${what}: ${seconds(ms)}`);
}

function mergeArgs(top: string, base: string, extra: string[] = []): string[] {
  return [...CLI, 'merge', '--top', `/dev/${VG}/${top}`, '--base', `/dev/${VG}/${base}`, '--json', '--log-level', 'info', ...extra];
}

function parseMerge(result: HostResult): MergeJson {
  const line = result.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line) as MergeJson;
  } catch {
    throw new Error(`merge printed no JSON (exit ${result.exitCode}):\n${result.stdout}\n${result.stderr}`);
  }
}

async function waitFor(predicate: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

describe('two hosts on one shared VG (lvmlockd + sanlock)', function () {
  this.timeout(600_000);
  let cluster: Cluster;
  let a: GuestHost;
  let b: GuestHost;
  const runStarted = Date.now();

  /** Files of a chain in the coordination folder: its raw copy and its top's bitmap extents, taken before any merge. */
  function files(chain: string): { raw: string; extents: string } {
    return { raw: cluster.path(`${chain}.raw`), extents: cluster.path(`${chain}.extents.json`) };
  }

  async function makeChain(host: GuestHost, chain: string): Promise<void> {
    const { raw, extents } = files(chain);
    const result = await host.must([...TOOL, 'make-chain', VG, `${chain}base`, `${chain}top`, raw, extents], 300);
    note(`make chain ${chain} on host ${host.name}`, result.ms);
  }

  async function check(host: GuestHost, chain: string): Promise<void> {
    const { raw, extents } = files(chain);
    const result = await host.run([...TOOL, 'check', VG, `${chain}base`, `${chain}top`, raw, extents], 300);
    const facts = JSON.parse(result.stdout.trim() || '{}') as { ok?: boolean };
    expect(facts.ok, `chain ${chain} as host ${host.name} sees it: ${result.stdout}${result.stderr}`).to.equal(true);
  }

  async function vgState(host: GuestHost): Promise<VgState> {
    const result = await host.must([...TOOL, 'state', VG], 120);
    return JSON.parse(result.stdout) as VgState;
  }

  before(async function () {
    this.timeout(600_000);
    cluster = await Cluster.create(3 * 1024 ** 3);
    let t = Date.now();
    a = cluster.host('a', 1, VM_TIMEOUT_S);
    b = cluster.host('b', 2, VM_TIMEOUT_S);
    const ready = await Promise.all([a.ready(240_000), b.ready(240_000)]);
    note('both VMs booted, sanlock and lvmlockd running', Date.now() - t);
    console.log(`      (a: ${ready[0]}; b: ${ready[1]})`);
    t = Date.now();
    await a.must(['vgcreate', '-q', '--shared', '-s', '4m', VG, '/dev/vda'], 240);
    note(`host a: vgcreate --shared ${VG} (joins the new lockspace)`, Date.now() - t);
    t = Date.now();
    // Without udev the first lockstart on a second host can fail ("invalid parameters for sanlock"): retried.
    await b.must(['sh', '-c', `for i in 1 2 3 4 5; do vgchange --lockstart ${VG} && exit 0; sleep 2; done; exit 1`], 400);
    note(`host b: vgchange --lockstart ${VG}`, Date.now() - t);
  });

  after(async function () {
    this.timeout(120_000);
    await cluster?.dispose();
    console.log('\n    timings (two TCG VMs, one core and 768 MiB each):');
    for (const [what, ms] of timings) console.log(`      ${seconds(ms).padStart(8)}  ${what}`);
    console.log(`      ${seconds(Date.now() - runStarted).padStart(8)}  whole run`);
  });

  it('refuses the same chain on host b while host a merges it (locked-by-other-host, nothing changed); then b sees it merged', async () => {
    const started = Date.now();
    await makeChain(a, 'c1');
    const merge = await a.spawn(mergeArgs('c1top', 'c1base', ['--rate-limit', String(1024 * 1024)]), 500);
    await waitFor(async () => /commit: [1-9]0%/.test(await merge.stderr()), "host a's commit to pass 10%", 240_000);
    // Host a's merge is paused mid-commit (its locks stay held): b's refusal and a's progress cannot race.
    await merge.signal('STOP');
    expect(await merge.stderr(), "host a was paused inside its commit").to.not.match(/step: (bitmaps|verify)/);
    const before = await vgState(b);
    const refusedAt = Date.now();
    const refused = await b.run(mergeArgs('c1top', 'c1base'), 180);
    note('host b refused (one CLI run)', Date.now() - refusedAt);
    const after = await vgState(b);
    await merge.signal('CONT');
    expect(refused.exitCode, refused.stderr).to.equal(1);
    const json = parseMerge(refused);
    expect(json.status).to.equal('failed');
    expect(json.error?.code, json.error?.message).to.equal('locked-by-other-host');
    expect(refused.stderr).to.match(/c1base.*locked by another host/);
    expect(after, 'the refusal changed nothing that host b sees of the VG').to.deep.equal(before);
    expect(after.dm.filter((d) => d.includes('c1')), 'host b activated nothing').to.deep.equal([]);
    expect(after.lvs.filter((lv) => String(lv.lv_name).startsWith('volmerge_job_')), "only host a's job LV").to.have.length(1);

    const done = await merge.done;
    expect(done.exitCode, done.stderr).to.equal(0);
    expect(parseMerge(done).status).to.equal('done');
    note('host a: merge of c1 (commit at 1 MiB/s, paused while b was refused)', done.ms);
    const aState = await vgState(a);
    expect(aState.dm.filter((d) => d.includes('c1') || d.includes('volmerge_job')), 'host a put back what it activated').to.deep.equal([]);
    expect(aState.lvs.filter((lv) => String(lv.lv_name).startsWith('volmerge_job_')), 'the job LV is removed').to.deep.equal([]);
    expect(aState.lvs.find((lv) => lv.lv_name === 'c1base')?.lv_tags ?? '').to.not.contain('VOLMERGE_MERGING_');
    await check(b, 'c1');
    note('scenario 1 (same chain, refusal, merged chain seen from b)', Date.now() - started);
  });

  it('merges two different chains on the two hosts at the same time', async () => {
    const started = Date.now();
    await Promise.all([makeChain(a, 'c2'), makeChain(b, 'c3')]);
    const t = Date.now();
    const [onA, onB] = await Promise.all([
      a.run(mergeArgs('c2top', 'c2base', ['--rate-limit', String(2 * 1024 * 1024)]), 500),
      b.run(mergeArgs('c3top', 'c3base', ['--rate-limit', String(2 * 1024 * 1024)]), 500),
    ]);
    expect(onA.exitCode, onA.stderr).to.equal(0);
    expect(onB.exitCode, onB.stderr).to.equal(0);
    note('merges of c2 on a and c3 on b, at once', Date.now() - t);
    await Promise.all([check(b, 'c2'), check(a, 'c3')]);
    note('scenario 2 (two chains at once, each checked from the other host)', Date.now() - started);
  });

  /** An agent running on a host: its command, and the PID of its node process (written by the wrapper before it execs node). */
  interface GuestAgent {
    command: RunningCommand;
    pid: number;
  }

  /** Starts the agent on a host (killed there after 600 s); env entries as NAME=VALUE. Resolves once it answers Host.ping2. */
  async function startAgent(host: GuestHost, env: string[] = []): Promise<GuestAgent> {
    const pidFile = '/tmp/volmerge-agent.pid';
    await host.must(['rm', '-f', pidFile], 60);
    // sh records its own PID, then execs env, which execs node: the PID is the agent's.
    const agentArgv = ['env', ...env, ...CLI, 'agent', '--socket', AGENT_SOCKET, '--state-dir', AGENT_STATE, '--log-level', 'info'];
    const command = await host.spawn(['sh', '-c', 'echo $$ > "$0" && exec "$@"', pidFile, ...agentArgv], 600);
    await waitFor(async () => (await host.run([...CLI, 'call', '--socket', AGENT_SOCKET, 'Host.ping2'], 60)).exitCode === 0, `the agent on host ${host.name} to serve`, 180_000);
    const pid = Number((await host.must(['cat', pidFile], 60)).stdout.trim());
    expect(pid, 'the agent wrote its PID').to.be.above(1);
    return { command, pid };
  }

  /** Host.getJobs through the agent's unix socket, from inside the host. */
  async function getJobs(host: GuestHost): Promise<Record<string, JobView>> {
    const result = await host.must([...CLI, 'call', '--socket', AGENT_SOCKET, 'Host.getJobs', '{}'], 60);
    return JSON.parse(result.stdout) as Record<string, JobView>;
  }

  /** The job LV of a chain's base, as a host sees the VG. */
  function jobLvOf(state: VgState, base: string): string {
    const found = state.lvs.filter((lv) => String(lv.lv_tags).split(',').includes(`VOLMERGE_JOB_BASE_${base}`)).map((lv) => String(lv.lv_name));
    expect(found, `one job LV of ${base}`).to.have.length(1);
    return found[0] as string;
  }

  it('resumes under the same job id a merge whose agent was killed mid-commit and leaves base and top as before the job; ends a recovered job that another host finished', async function () {
    this.timeout(900_000);
    const started = Date.now();
    const jobId = '3f6b1c2a-9d4e-4f7a-8b5c-1e2d3c4b5a69';
    const params = { job_id: jobId, subchain_info: { sd_id: VG, img_id: '8c1e4d2b-5a6f-4b3c-9d7e-0f1a2b3c4d5e', top_id: 'c5top', base_id: 'c5base' }, merge_bitmaps: true };
    // TEST-ONLY rate limit: the commit of 24 MiB takes about 12 s, long enough to kill the agent inside it (the resumed
    // job keeps the rate its journal recorded).
    // The agent starts while the chains are made. Chain c6 gets a merge killed inside its commit (the crash switch kills
    // the CLI with its qemu-img): a second unfinished job for the restarted agent to find, which host b will finish.
    let crashed: HostResult | undefined;
    const [first] = await Promise.all([
      startAgent(a, [`VOLMERGE_TEST_COMMIT_RATE=${2 * 1024 * 1024}`]),
      makeChain(a, 'c5'),
      (async () => {
        await makeChain(a, 'c6');
        crashed = await a.run(['setsid', 'env', 'VOLMERGE_CRASH_AT=commit:during:40', ...mergeArgs('c6top', 'c6base', ['--rate-limit', String(2 * 1024 * 1024)])], 300);
      })(),
    ]);
    expect(crashed?.exitCode, `the c6 merge was killed inside its commit:\n${crashed?.stderr}`).to.equal(137);
    // Before the job: base and top inactive on host a, as make-chain leaves them.
    const beforeJob = await vgState(a);
    for (const lv of ['c5base', 'c5top']) expect(activation(beforeJob, lv), `${lv} before the job`).to.deep.equal({ active: '', lock: 'none' });
    let t = Date.now();
    await a.must([...CLI, 'call', '--socket', AGENT_SOCKET, 'SDM.merge', JSON.stringify(params)], 60);
    let seen: JobView | undefined;
    let polls = 0;
    // Inside the commit: qemu-img has reported progress and has not finished.
    await waitFor(async () => {
      polls += 1;
      seen = (await getJobs(a))[jobId];
      if (seen?.status === 'failed' || seen?.status === 'done') throw new Error(`the merge ended before the kill: ${JSON.stringify(seen)}\n${await first.command.stderr()}`);
      return seen?.step === 'commit' && seen.progress > 0 && seen.progress < 100;
    }, 'the job to be inside its commit', 240_000);
    // The agent dies with its children (qemu-img), as a service manager's kill leaves it: frozen first so that it starts
    // nothing more, its children killed, then itself (SIGKILL: nothing runs on the way out).
    const pid = String(first.pid);
    await a.must(['sh', '-c', 'kill -STOP "$0"; pkill -KILL -P "$0"; kill -KILL "$0"', pid], 60);
    note('host a: SDM.merge to the kill inside the commit', Date.now() - t);
    const killedRun = await first.command.done;
    expect(killedRun.exitCode, 'the agent died of SIGKILL').to.equal(137);
    console.log(`      agent on host a killed inside the commit (job at ${seen?.progress ?? '?'}%, step ${seen?.step ?? '?'}, after ${polls} polls)`);
    const killed = await vgState(a);
    expect(killed.lvs.filter((lv) => String(lv.lv_name).startsWith('volmerge_job_')), 'the job LVs stay for the next agent').to.have.length(2);
    for (const lv of ['c5base', 'c5top']) expect(activation(killed, lv).lock, `${lv}: the killed agent left it locked here`).to.equal('ex');

    // Chain c6 goes to host b, as when host a loses its locks: a lets go of it, b holds its base (so that a's recovery
    // can read c6's job but not resume it: the job waits, pending).
    const c6JobLv = jobLvOf(killed, 'c6base');
    const c6Cli = c6JobLv.slice('volmerge_job_'.length);
    await a.must(['lvchange', '-an', `${VG}/c6base`, `${VG}/c6top`, `${VG}/${c6JobLv}`], 120);
    await b.must(['lvchange', '-aey', `${VG}/c6base`], 120);

    t = Date.now();
    const second = await startAgent(a);
    note('host a: agent started again (with recovery of the shared VG)', Date.now() - t);
    const jobs = await getJobs(a);
    const recovered = jobs[jobId];
    expect(recovered, `the restarted agent shows job ${jobId}:\n${await second.command.stderr()}`).to.not.equal(undefined);
    expect(recovered?.status).to.be.oneOf(['pending', 'running', 'done']);
    expect(await second.command.stderr()).to.contain(`recovery: job ${jobId} queued to finish from step commit`);
    const waitingId = Object.keys(jobs).find((id) => jobs[id]?.cli_job_id === c6Cli);
    expect(waitingId, `the restarted agent shows c6's job ${c6Cli}: ${JSON.stringify(jobs)}`).to.not.equal(undefined);
    expect(jobs[waitingId ?? '']?.status, 'c6 waits: host b holds its base').to.equal('pending');

    // Host b finishes c6 (retried while a's recovery looks at c6's job LV every 30 s: locked-by-other-host is retriable).
    let bEndedAt = 0;
    const finishOnB = (async (): Promise<HostResult> => {
      for (let attempt = 1; ; attempt += 1) {
        const result = await b.run(mergeArgs('c6top', 'c6base'), 400);
        bEndedAt = Date.now();
        if (result.exitCode === 0 || parseMerge(result).error?.code !== 'locked-by-other-host' || attempt >= 20) return result;
        await new Promise((resolve) => setTimeout(resolve, 2000));
      }
    })();
    let last: JobView | undefined;
    await waitFor(async () => {
      last = (await getJobs(a))[jobId];
      return last?.status === 'done' || last?.status === 'failed';
    }, `job ${jobId} to end`, 300_000);
    expect(last?.status, `${JSON.stringify(last)}\n${await second.command.stderr()}`).to.equal('done');
    note('host a: the recovered job, restart to done', Date.now() - t);
    const afterJob = await vgState(a);
    for (const lv of ['c5base', 'c5top']) expect(activation(afterJob, lv), `${lv} after the recovered job: as before the job`).to.deep.equal({ active: '', lock: 'none' });
    expect(afterJob.dm.filter((d) => d.includes('c5')), 'nothing of c5 left active on host a').to.deep.equal([]);

    const onB = await finishOnB;
    expect(onB.exitCode, onB.stderr).to.equal(0);
    expect(onB.stderr).to.match(/left this merge unfinished at step commit/);
    note('host b: the merge of c6 that finishes its job', onB.ms);
    let ended: JobView | undefined;
    await waitFor(async () => {
      ended = (await getJobs(a))[waitingId ?? ''];
      return ended?.status !== 'pending';
    }, `c6's job ${c6Cli} to end on host a`, 240_000);
    note("host a: c6's job ended, after b's merge had ended", Date.now() - bEndedAt);
    // b's command-line merge does not move base's generation: nothing shows a that the merge it was asked for is done.
    expect(ended?.status, JSON.stringify(ended)).to.equal('failed');
    expect(ended?.error?.name).to.equal('job-gone');
    expect(ended?.error?.code).to.equal(3138);
    expect(ended?.error?.message).to.contain(`LV ${VG}/${c6JobLv}`).and.to.contain('is gone while it waited');
    await a.must(['kill', '-TERM', String(second.pid)], 60);
    const stopped = await second.command.done;
    expect(stopped.exitCode, stopped.stderr.slice(-2000)).to.be.oneOf([0, 143]);

    const after = await vgState(a);
    expect(after.lvs.filter((lv) => String(lv.lv_name).startsWith('volmerge_job_')), 'the job LVs are removed').to.deep.equal([]);
    expect(after.dm.filter((d) => d.includes('volmerge_job') || d.includes('c6')), 'no job LV and nothing of c6 left active on host a').to.deep.equal([]);
    expect(after.lvs.find((lv) => lv.lv_name === 'c5base')?.lv_tags ?? '').to.not.contain('VOLMERGE_MERGING_');
    expect(after.lvs.find((lv) => lv.lv_name === 'c6base')?.lv_tags ?? '').to.not.contain('VOLMERGE_MERGING_');
    await b.must(['lvchange', '-an', `${VG}/c6base`], 120);
    await Promise.all([check(a, 'c5'), check(b, 'c6')]);
    note('scenario 3 (agent killed mid-commit, restarted, job resumed; a recovered job finished by host b)', Date.now() - started);
  });

  it('finishes on host b a merge whose host a was killed mid-commit, once a\'s lease has expired', async function () {
    this.timeout(900_000);
    const started = Date.now();
    await makeChain(a, 'c4');
    const merge = await a.spawn(mergeArgs('c4top', 'c4base', ['--rate-limit', String(1024 * 1024)]), 500);
    await waitFor(async () => /commit: [2-9]0%/.test(await merge.stderr()), "host a's commit to pass 20%", 240_000);
    // Paused first, so that the VM surely dies inside the commit however loaded this machine is.
    await merge.signal('STOP');
    expect(await merge.stderr(), 'host a was paused inside its commit').to.not.match(/step: (bitmaps|verify)/);
    await a.kill();
    const deathAt = a.killedAt ?? Date.now();
    console.log(`      host a killed during the commit (its log: ${(await merge.stderr()).match(/commit: \d+%/g)?.pop() ?? '?'})`);

    const before = await vgState(b);
    let refusals = 0;
    let lastRefusalAt = deathAt;
    let success: HostResult | undefined;
    let successStartedAt = 0;
    while (!success) {
      expect(Date.now() - deathAt, 'the dead host\'s lease should have expired by now').to.be.below(TAKEOVER_LIMIT_MS);
      const attemptAt = Date.now();
      const attempt = await b.run(mergeArgs('c4top', 'c4base'), 600);
      if (attempt.exitCode === 0) {
        success = attempt;
        successStartedAt = attemptAt;
        break;
      }
      const json = parseMerge(attempt);
      expect(json.error?.code, `attempt ${refusals + 1}: ${json.error?.message}`).to.equal('locked-by-other-host');
      refusals += 1;
      lastRefusalAt = attemptAt;
      if (refusals === 1) {
        const after = await vgState(b);
        expect(after, 'a refusal changes nothing').to.deep.equal(before);
        // What an operator on host b sees meanwhile.
        const status = await b.must([...CLI, 'status', '--base', `/dev/${VG}/c4base`], 120);
        console.log(`      volmerge status on host b while a's lease runs:\n${status.stdout.trimEnd().replace(/^/gm, '        ')}`);
        const json = JSON.parse((await b.must([...CLI, 'status', '--base', `/dev/${VG}/c4base`, '--json'], 120)).stdout) as { state: string; mark: { jobId: string } | null };
        expect(json.state).to.equal('unfinished');
        expect(json.mark?.jobId, 'base carries the dead host\'s mark').to.match(/^cli-/);
      }
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
    console.log(`      host b was refused ${refusals} times (locked-by-other-host), then took over`);
    note('death of host a to its last refused attempt on b', lastRefusalAt - deathAt);
    note('death of host a to the start of the successful take-over', successStartedAt - deathAt);
    note('host b: the take-over merge (resume from the commit)', success.ms);
    expect(parseMerge(success).status).to.equal('done');
    expect(success.stderr).to.match(/left this merge unfinished at step commit/);
    const bState = await vgState(b);
    expect(bState.lvs.filter((lv) => String(lv.lv_name).startsWith('volmerge_job_')), 'the job LV is removed').to.deep.equal([]);
    expect(bState.lvs.find((lv) => lv.lv_name === 'c4base')?.lv_tags ?? '').to.not.contain('VOLMERGE_MERGING_');
    expect(bState.dm.filter((d) => d.includes('c4') || d.includes('volmerge_job')), 'host b put back what it activated').to.deep.equal([]);
    await check(b, 'c4');
    note('scenario 4 (host killed mid-commit, take-over)', Date.now() - started);
  });
});
