// Test helper: runs the built volmerge CLI as a user would, and a checksum of files to prove nothing changed.
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The CLI as installed: the bundle that package.json's bin names (dist/src/volmerge.cjs, made by npm run build). */
export const CLI = fileURLToPath(new URL('../../src/volmerge.cjs', import.meta.url));

/** What a CLI run left. */
export interface CliResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** Runs `volmerge ARGS` with node; never throws on a non-zero exit. */
export async function volmerge(args: readonly string[], env: Record<string, string> = {}): Promise<CliResult> {
  const result = await execa('node', [CLI, ...args], { reject: false, stdin: 'ignore', env });
  return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
}

/** SHA-256 of a file or block device's whole content. */
export async function checksum(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Checksums of several paths, to compare before and after a refused request. */
export async function checksums(paths: readonly string[]): Promise<string[]> {
  return Promise.all(paths.map(checksum));
}
