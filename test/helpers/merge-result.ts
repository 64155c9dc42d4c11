// Test helper: `volmerge merge --json` under issue 13's contract (plan.baseFormat, plan.drop, usedSize), what base uses
// after a merge (qemu-img check), and refusals that must leave every byte and mtime of the watched files as they were.
import { expect } from 'chai';
import { execa } from 'execa';
import { stat } from 'node:fs/promises';
import { parseAgainst } from '../../src/schema.js';
import { checksums, volmerge, type CliResult } from './cli.js';
import { sh } from './commands.js';

const STACK_TRACE = /\bat .*\.c?js:\d+|^\s+at /m;

/** The plan that --json prints. */
export interface MergeJsonPlan {
  neededSize: number;
  baseSize: number;
  extendTo: number | null;
  prune: string[];
  add: string[];
  merge: string[];
  baseFormat?: 'qcow2' | 'raw';
  drop?: string[];
  finalize?: { shrink: { planned: boolean; reason?: string } | null };
}

/** The one object that `volmerge merge --json` prints. */
export interface MergeJson {
  status: 'done' | 'planned' | 'failed';
  plan: MergeJsonPlan | null;
  usedSize?: number | null;
  error?: { code: string; message: string };
}

/** A merge run: what the process left and its JSON, checked against schemas/merge-result.schema.json. */
export interface MergeRun {
  cli: CliResult;
  json: MergeJson;
}

/** Runs `volmerge merge ARGS --json` and validates what it printed. */
export async function mergeJson(args: readonly string[], env: Record<string, string> = {}): Promise<MergeRun> {
  const cli = await volmerge(['merge', ...args, '--json'], env);
  if (!cli.stdout.trim().startsWith('{')) throw new Error(`volmerge merge ${args.join(' ')} --json exited ${cli.exitCode} without JSON: ${cli.stderr.trim()}`);
  const json = parseAgainst<MergeJson>('merge-result.schema.json', cli.stdout, `volmerge merge ${args.join(' ')} --json`);
  return { cli, json };
}

/** Expects a run that merged (exit 0, status done, no stack trace) and returns its plan. */
export function expectDone(run: MergeRun): MergeJsonPlan {
  expect(run.cli.exitCode, `${run.cli.stderr}${run.json.error?.message ?? ''}`).to.equal(0);
  expect(run.json.status).to.equal('done');
  expect(run.cli.stderr, 'no stack trace').not.to.match(STACK_TRACE);
  expect(run.json.plan, 'a done merge has a plan').to.be.an('object');
  return run.json.plan as MergeJsonPlan;
}

/** base's image-end-offset from qemu-img check (exit 0 clean, 3 leaks only): the bytes its qcow2 image really uses. */
export async function imageEndOffset(image: string): Promise<number> {
  const result = await execa('qemu-img', ['check', '--output', 'json', '-f', 'qcow2', image], { reject: false, stdin: 'ignore' });
  expect(result.exitCode, `qemu-img check ${image}: ${String(result.stderr)}`).to.be.oneOf([0, 3]);
  const check = parseAgainst<{ 'image-end-offset'?: number; 'check-errors': number }>('qemu-img-check.schema.json', String(result.stdout), `qemu-img check ${image}`);
  expect(check['check-errors'], `qemu-img check ${image}`).to.equal(0);
  expect(check['image-end-offset'], `image-end-offset of ${image}`).to.be.a('number');
  return check['image-end-offset'] as number;
}

/** An image's virtual size, opened as `format` (raw: the file's or device's size). */
export async function virtualSize(image: string, format: 'qcow2' | 'raw'): Promise<number> {
  const out = await sh(['qemu-img', 'info', '--output', 'json', '-U', '-f', format, image]);
  return parseAgainst<{ 'virtual-size': number }>('qemu-img-info.schema.json', out, `qemu-img info ${image}`)['virtual-size'];
}

/** Checksums and modification times of files, to prove a refusal touched nothing. */
export async function fingerprints(paths: readonly string[]): Promise<{ sums: string[]; mtimes: number[] }> {
  const sums = await checksums(paths);
  const mtimes = await Promise.all(paths.map(async (p) => (await stat(p)).mtimeMs));
  return { sums, mtimes };
}

/**
 * Runs the merge and expects a refusal: exit 1, one line on stderr that matches every pattern and carries no stack
 * trace, status failed with `code`, and every watched path byte for byte (and mtime) as before. Returns the error message.
 */
export async function expectRefused(args: readonly string[], code: string, patterns: RegExp[], watched: readonly string[]): Promise<string> {
  const before = await fingerprints(watched);
  const run = await mergeJson(args);
  expect(run.cli.exitCode, `a refusal, not: ${run.cli.stdout.trim()} ${run.cli.stderr.trim()}`).to.equal(1);
  const lines = run.cli.stderr.trim().split('\n');
  expect(lines, `one line on stderr: ${run.cli.stderr}`).to.have.length(1);
  expect(run.cli.stderr, 'no stack trace').not.to.match(STACK_TRACE);
  expect(run.json.status).to.equal('failed');
  expect(run.json.error?.code, run.cli.stderr).to.equal(code);
  for (const pattern of patterns) expect(lines[0]).to.match(pattern);
  const after = await fingerprints(watched);
  expect(after.sums, 'every byte of every watched file unchanged').to.deep.equal(before.sums);
  expect(after.mtimes, 'no watched file written').to.deep.equal(before.mtimes);
  return lines[0] ?? '';
}
