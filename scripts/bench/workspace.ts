// Benchmark helper: a scratch folder and the loop devices attached in it, all removed and detached at the end, even on failure.
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { exec, must } from './proc.js';

/** The scratch folder of one benchmark run. */
export class Workspace {
  private readonly loops = new Set<string>();
  private constructor(readonly dir: string) {}

  /** Makes a folder under parent (same file system as the chains that are measured). */
  static async create(parent: string): Promise<Workspace> {
    return new Workspace(await mkdtemp(join(parent, 'volmerge-bench-')));
  }

  /** A path inside the folder. */
  path(...parts: string[]): string {
    return join(this.dir, ...parts);
  }

  /** Grows (or makes) a sparse file to sizeBytes and attaches it with direct I/O; returns the device. */
  async attachLoop(file: string, sizeBytes: number): Promise<string> {
    await must(['truncate', '-s', String(sizeBytes), file]);
    const device = (await must(['losetup', '--find', '--show', '--direct-io=on', file])).stdout.trim();
    this.loops.add(device);
    return device;
  }

  /** Attaches a file as it is, read-only, with direct I/O; returns the device. */
  async attachReadOnly(file: string): Promise<string> {
    const device = (await must(['losetup', '--find', '--show', '--direct-io=on', '--read-only', file])).stdout.trim();
    this.loops.add(device);
    return device;
  }

  /** Detaches a loop device this workspace attached; one already gone is fine. */
  async detachLoop(device: string): Promise<void> {
    await exec(['losetup', '-d', device]);
    this.loops.delete(device);
  }

  /** Detaches every loop device still attached and removes the folder. */
  async dispose(): Promise<void> {
    for (const device of [...this.loops]) await this.detachLoop(device);
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** Runs body with a workspace that is disposed afterwards, also on SIGINT or SIGTERM. */
export async function withWorkspace<T>(parent: string, body: (workspace: Workspace) => Promise<T>): Promise<T> {
  const workspace = await Workspace.create(parent);
  const onSignal = (signal: NodeJS.Signals): void => {
    console.error(`bench: ${signal}: detaching loop devices and removing ${workspace.dir}`);
    void workspace.dispose().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await body(workspace);
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await workspace.dispose();
  }
}
