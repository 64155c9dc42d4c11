// How many processes one merge starts, counted independently of the spawn tracer: strace -f -e trace=execve.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { freshCopy, type GoldenChain, type Medium } from './chains.js';
import { exec } from './proc.js';
import type { Build } from './volmerge.js';
import type { Workspace } from './workspace.js';

/** What strace saw. */
export interface StraceCount {
  medium: Medium;
  dataMiB: number;
  /** Successful execve calls after node's own, i.e. programs started by the merge. */
  processes: number;
  byProgram: Record<string, number>;
}

/** Runs one merge of a fresh copy under strace and counts successful execve calls; undefined when strace is missing. */
export async function straceCount(build: Build, workspace: Workspace, golden: GoldenChain, medium: Medium): Promise<StraceCount | undefined> {
  if ((await exec(['strace', '-V'])).code !== 0) return undefined;
  const copy = await freshCopy(workspace, golden, medium, 'run-strace');
  const log = workspace.path('strace.txt');
  try {
    const result = await exec(
      ['strace', '-f', '-qq', '-e', 'trace=execve', '-e', 'status=successful', '-o', log, 'node', build.cli, 'merge', '--top', copy.top, '--base', copy.base, '--json'],
      { env: { VOLMERGE_STATE_DIR: workspace.path('state') } },
    );
    if (result.code !== 0) throw new Error(`volmerge merge under strace exited ${result.code}: ${result.stderr.trim().slice(0, 500)}`);
    const programs = (await readFile(log, 'utf8'))
      .split('\n')
      .map((line) => /execve\("([^"]+)"/.exec(line)?.[1])
      .filter((program): program is string => program !== undefined)
      .slice(1);
    const byProgram: Record<string, number> = {};
    for (const program of programs) byProgram[basename(program)] = (byProgram[basename(program)] ?? 0) + 1;
    return { medium, dataMiB: golden.dataMiB, processes: programs.length, byProgram };
  } finally {
    await copy.dispose();
  }
}
