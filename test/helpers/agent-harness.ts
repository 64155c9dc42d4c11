// Test harness for the agent: starts the real `volmerge agent` on a temporary socket, builds file-domain chains, polls jobs.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RpcClient } from '../../src/agent/client.js';
import { CLI } from './cli.js';
import { sh } from './commands.js';
import { makeChain, rawCopy, type ChainSpec } from './images.js';
import { processGroupGone, sleep } from './wait.js';
import { freshEachTest } from './hooks.js';

/** A job as Host.getJobs returns it. */
export interface JobView {
  id: string;
  job_type: string;
  description: string;
  status: string;
  progress: number;
  aborting?: true;
  step?: string;
  cli_job_id?: string;
  result?: { dropped_bitmaps: string[]; dropped_inconsistent: string[]; used_size: number | null };
  error?: { code: number; name: string; message: string };
}

/** A chain on a file domain, with the raw copy of what top showed before any merge. */
export interface DomainChain {
  subchain: { sd_id: string; img_id: string; top_id: string; base_id: string };
  top: string;
  base: string;
  raw: string;
}

/** A scratch folder with a file-domain root, a state dir and a socket path; it stops the agents started in it when disposed. */
export class AgentWorkspace {
  private readonly agents: AgentProcess[] = [];
  private constructor(readonly dir: string) {}

  /** Remembers an agent started in this workspace, for dispose() to stop. */
  track(agent: AgentProcess): void {
    this.agents.push(agent);
  }

  /** Makes the folder. */
  static async create(): Promise<AgentWorkspace> {
    const dir = await mkdtemp(join(process.env.VOLMERGE_TEST_TMP || tmpdir(), 'volmerge-agent-'));
    await mkdir(join(dir, 'domains'));
    return new AgentWorkspace(dir);
  }

  get domains(): string {
    return join(this.dir, 'domains');
  }

  get socket(): string {
    return join(this.dir, 'agent.sock');
  }

  get stateDir(): string {
    return join(this.dir, 'state');
  }

  /** Builds top -> base at <domains>/<sd>/images/<img>/<vol>, with top's backing file named relatively as vdsm does, and a raw copy. */
  async chain(spec: ChainSpec, sdId = 'sd-files'): Promise<DomainChain> {
    const imgId = randomUUID();
    const subchain = { sd_id: sdId, img_id: imgId, top_id: randomUUID(), base_id: randomUUID() };
    const imageDir = join(this.domains, sdId, 'images', imgId);
    await mkdir(imageDir, { recursive: true });
    const top = join(imageDir, subchain.top_id);
    const base = join(imageDir, subchain.base_id);
    await makeChain(base, top, spec);
    await sh(['qemu-img', 'rebase', '-u', '-f', 'qcow2', '-F', 'qcow2', '-b', subchain.base_id, top]);
    const raw = join(this.dir, `${imgId}.raw`);
    await rawCopy(top, raw);
    return { subchain, top, base, raw };
  }

  /** Stops every agent started in it (those already gone are fine), then removes the folder. */
  async dispose(): Promise<void> {
    for (const agent of this.agents.splice(0)) await agent.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * Registers hooks on the calling mocha suite: before each test a fresh AgentWorkspace, handed to use(); after it, the
 * workspace disposed of (which stops the agents started in it).
 */
export function freshAgentWorkspaceEachTest(use: (workspace: AgentWorkspace) => void): void {
  freshEachTest(() => AgentWorkspace.create(), use);
}

/** A running agent process and a client on its socket. */
export class AgentProcess {
  private stderrText = '';
  readonly client: RpcClient;
  private exited: Promise<number | null>;

  private constructor(
    readonly child: ChildProcess,
    readonly socket: string,
  ) {
    this.client = new RpcClient({ socketPath: socket }, 10_000);
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      this.stderrText += chunk;
    });
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  /** Starts `volmerge agent` with these extra arguments and environment; resolves once Host.ping answers. */
  static async start(workspace: AgentWorkspace, args: readonly string[] = [], env: Record<string, string> = {}): Promise<AgentProcess> {
    const child = spawn(
      'node',
      [CLI, 'agent', '--socket', workspace.socket, '--state-dir', workspace.stateDir, '--file-domains', workspace.domains, ...args],
      // Its own process group, so that killHard() takes its qemu-img children down with it, as a crash of the host would.
      { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env }, detached: true },
    );
    const agent = new AgentProcess(child, workspace.socket);
    workspace.track(agent);
    const deadline = Date.now() + 15_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`the agent exited ${child.exitCode}: ${agent.stderr}`);
      try {
        await agent.client.result('Host.ping');
        return agent;
      } catch {
        if (Date.now() > deadline) throw new Error(`the agent did not answer within 15 s: ${agent.stderr}`);
        await sleep(50);
      }
    }
  }

  /** Everything the agent logged so far. */
  get stderr(): string {
    return this.stderrText;
  }

  /** The log lines as parsed JSON objects. */
  logLines(): Record<string, unknown>[] {
    return this.stderrText
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** All jobs by id. */
  async jobs(params: Record<string, unknown> = {}): Promise<Record<string, JobView>> {
    return this.client.result<Record<string, JobView>>('Host.getJobs', params);
  }

  /** One job (fails when the agent does not know it). */
  async job(id: string): Promise<JobView> {
    const found = (await this.jobs({ job_ids: [id] }))[id];
    if (!found) throw new Error(`the agent does not know job ${id}`);
    return found;
  }

  /** Polls a job until the predicate holds; returns every state seen on the way (the last one holds). */
  async waitFor(id: string, predicate: (job: JobView) => boolean, timeoutMs = 60_000, everyMs = 25): Promise<JobView[]> {
    const seen: JobView[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const job = await this.job(id);
      seen.push(job);
      if (predicate(job)) return seen;
      if (Date.now() > deadline) throw new Error(`job ${id} still ${JSON.stringify(job)} after ${timeoutMs} ms`);
      await sleep(everyMs);
    }
  }

  /** Waits until the job has ended (done, failed, aborted). */
  async finished(id: string, timeoutMs = 60_000): Promise<JobView> {
    const seen = await this.waitFor(id, (j) => ['done', 'failed', 'aborted'].includes(j.status), timeoutMs);
    return seen[seen.length - 1] as JobView;
  }

  /** Sends SIGTERM and resolves with the exit code. */
  async stop(): Promise<number | null> {
    this.client.close();
    if (this.child.exitCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }

  /**
   * SIGKILLs the agent's whole process group (the agent and the qemu-img it runs) and waits until every process of the
   * group is gone: a qemu-img child that is still dying holds its image locks for a few milliseconds after the agent.
   */
  async killHard(): Promise<void> {
    this.client.close();
    const group = this.child.pid;
    if (this.child.exitCode === null && group !== undefined) process.kill(-group, 'SIGKILL');
    await this.exited;
    if (group !== undefined) await processGroupGone(group);
  }

  /** Resolves with the exit code once the process has ended. */
  async exit(): Promise<number | null> {
    return this.exited;
  }
}

/** A merge request's params for a chain. */
export function mergeParams(chain: DomainChain, jobId = randomUUID(), extra: Record<string, unknown> = {}): { job_id: string; subchain_info: Record<string, unknown> } {
  return { job_id: jobId, subchain_info: { ...chain.subchain, ...extra } };
}
