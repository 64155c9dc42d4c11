// The two-host harness seen from this machine: boots VMs with scripts/hosts/boot-host (one shared raw disk, one shared
// coordination folder), runs commands on each through its mailbox, kills a VM outright, and never leaves qemu behind.
import { execa, type ResultPromise } from 'execa';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { exists, sleep } from '../helpers/wait.js';

/** The repository root (dist/test/hosts -> ../../..). */
export const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const BOOT_HOST = join(REPO, 'scripts/hosts/boot-host');

/** What a command left on a host. */
export interface HostResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** A command still running on a host. */
export interface RunningCommand {
  id: string;
  startedAt: number;
  /** Its stderr so far. */
  stderr(): Promise<string>;
  /** Sends a signal (STOP, CONT, ...) to every process of the command on the host (its session: timeout makes its own process group). */
  signal(name: 'STOP' | 'CONT' | 'KILL'): Promise<void>;
  /** Resolves when it has ended (or the host died: exit code -1). */
  done: Promise<HostResult>;
}

async function waitUntil(predicate: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await predicate())) {
    if (Date.now() > deadline) throw new Error(`gave up after ${timeoutMs} ms`);
    await sleep(200);
  }
}

async function readOr(path: string, fallback: string): Promise<string> {
  return readFile(path, 'utf8').catch(() => fallback);
}

let serial = 0;

/** One VM of the cluster. */
export class GuestHost {
  private vm: ResultPromise | undefined;
  private ended = false;
  /** When the VM was killed (Date.now()), if it was. */
  killedAt: number | undefined;

  constructor(
    readonly name: string,
    readonly hostId: number,
    private readonly cluster: Cluster,
  ) {}

  private get box(): string {
    return join(this.cluster.coord, this.name);
  }

  /** Boots the VM (boot-host under setpriv --pdeathsig, so that it dies with this process). */
  boot(timeoutS: number): void {
    const args = [BOOT_HOST, '--name', this.name, '--host-id', String(this.hostId), '--dir', this.cluster.coord, '--disk', this.cluster.disk, '--timeout', String(timeoutS)];
    this.vm = execa('setpriv', ['--pdeathsig', 'TERM', '--', 'bash', ...args], { reject: false, stdin: 'ignore', all: true, buffer: true });
    void this.vm.then((result) => {
      this.ended = true;
      if (!this.killedAt && result.exitCode !== 0) console.error(`host ${this.name}: VM ended with ${result.exitCode}:\n${String(result.all ?? '').split('\n').slice(-40).join('\n')}`);
    });
  }

  /** Waits until the guest's daemons run; returns what the guest reported (uptime, sanlock and lvmlockd start times). */
  async ready(timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.ended) throw new Error(`host ${this.name}: the VM ended before it was ready`);
      const text = await readOr(join(this.box, 'ready'), '');
      if (text) return text.trim();
      await sleep(200);
    }
    throw new Error(`host ${this.name} was not ready after ${timeoutMs} ms`);
  }

  /** Starts argv on the host (killed there after timeoutS); returns at once. */
  async spawn(argv: readonly string[], timeoutS: number): Promise<RunningCommand> {
    serial += 1;
    const id = `${Date.now()}-${serial}`;
    const file = join(this.box, 'inbox', `${id}.argv`);
    await writeFile(`${file}.tmp`, ['timeout', '-k', '5', String(timeoutS), ...argv].map((a) => `${a}\0`).join(''));
    await rename(`${file}.tmp`, file);
    const startedAt = Date.now();
    const out = join(this.box, `${id}.out`);
    const err = join(this.box, `${id}.err`);
    const rc = join(this.box, `${id}.rc`);
    const pid = join(this.box, `${id}.pid`);
    const done = (async (): Promise<HostResult> => {
      const deadline = startedAt + (timeoutS + 30) * 1000;
      for (;;) {
        const code = await readOr(rc, '');
        if (code.trim() !== '') {
          const result = { exitCode: Number(code.trim()), stdout: await readOr(out, ''), stderr: await readOr(err, ''), ms: Date.now() - startedAt };
          await Promise.all([out, err, rc, pid].map((p) => rm(p, { force: true })));
          return result;
        }
        if (this.ended || this.killedAt || Date.now() > deadline) {
          return { exitCode: -1, stdout: await readOr(out, ''), stderr: `${await readOr(err, '')}\n(host ${this.name} gone or command timed out)`, ms: Date.now() - startedAt };
        }
        await sleep(200);
      }
    })();
    const signal = async (name: 'STOP' | 'CONT' | 'KILL'): Promise<void> => {
      let session = '';
      await waitUntil(async () => (session = (await readOr(pid, '')).trim()) !== '', 30_000);
      await this.must(['pkill', `-${name}`, '-s', session], 60);
    };
    return { id, startedAt, stderr: () => readOr(err, ''), signal, done };
  }

  /** Runs argv on the host and waits for it. */
  async run(argv: readonly string[], timeoutS = 300): Promise<HostResult> {
    return (await this.spawn(argv, timeoutS)).done;
  }

  /** Runs argv and throws with its output unless it exits 0. */
  async must(argv: readonly string[], timeoutS = 300): Promise<HostResult> {
    const result = await this.run(argv, timeoutS);
    if (result.exitCode !== 0) throw new Error(`host ${this.name}: ${argv.join(' ')} exited ${result.exitCode}:\n${result.stdout}\n${result.stderr}`);
    return result;
  }

  /** Kills the VM outright (SIGKILL to qemu): the host dies holding whatever it held. */
  async kill(): Promise<void> {
    const pid = Number((await readOr(join(this.box, 'qemu.pid'), '')).trim());
    if (!Number.isInteger(pid) || pid <= 1) throw new Error(`host ${this.name}: no qemu pid`);
    process.kill(pid, 'SIGKILL');
    this.killedAt = Date.now();
    await this.vm;
  }

  /** Stops the host: the mailbox service ends and the VM powers off; killed after graceMs. */
  async stop(graceMs = 30_000): Promise<void> {
    if (!this.vm || this.ended) return;
    await writeFile(join(this.box, 'stop'), '');
    const timer = setTimeout(() => this.vm?.kill('SIGTERM'), graceMs);
    await this.vm;
    clearTimeout(timer);
  }

  /** Last resort at exit (synchronous): TERM to boot-host (run-in-vm then stops qemu), KILL to qemu itself. */
  killNow(): void {
    if (this.ended) return;
    this.vm?.kill('SIGTERM');
    try {
      const pid = Number(readFileSync(join(this.box, 'qemu.pid'), 'utf8').trim());
      if (pid > 1) process.kill(pid, 'SIGKILL');
    } catch {
      // Not started yet, or gone already.
    }
  }
}

/** The work folder (shared raw disk, coordination folder) and the hosts. */
export class Cluster {
  readonly hosts: GuestHost[] = [];
  private readonly onExit = (): void => {
    for (const host of this.hosts) host.killNow();
  };

  private constructor(
    readonly dir: string,
    readonly coord: string,
    readonly disk: string,
  ) {
    process.on('exit', this.onExit);
  }

  /** A work folder with a sparse shared disk of diskBytes. */
  static async create(diskBytes: number): Promise<Cluster> {
    const dir = await mkdtemp(join(process.env.VOLMERGE_TEST_TMP || tmpdir(), 'volmerge-hosts-'));
    const coord = join(dir, 'coord');
    await execa('mkdir', ['-p', coord]);
    const disk = join(dir, 'shared.raw');
    await execa('truncate', ['-s', String(diskBytes), disk]);
    return new Cluster(dir, coord, disk);
  }

  /** Boots a host (name, sanlock host id). */
  host(name: string, hostId: number, timeoutS: number): GuestHost {
    const host = new GuestHost(name, hostId, this);
    this.hosts.push(host);
    host.boot(timeoutS);
    return host;
  }

  /** A path in the coordination folder (visible on every host at the same path). */
  path(name: string): string {
    return join(this.coord, name);
  }

  /** Whether a coordination file exists. */
  async has(name: string): Promise<boolean> {
    return exists(this.path(name));
  }

  /** Stops every host and removes the work folder. */
  async dispose(): Promise<void> {
    await Promise.all(this.hosts.map((h) => h.stop().catch(() => h.killNow())));
    for (const host of this.hosts) host.killNow();
    process.off('exit', this.onExit);
    await rm(this.dir, { recursive: true, force: true });
  }
}
