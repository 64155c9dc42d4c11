// The ENOSPC reproducer on real LVM: for N stale bitmaps, the bare qemu-img sequence against `volmerge merge`.
// Run through scripts/reproduce-enospc (which boots the LVM test VM where there is no device-mapper).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CLI = join(ROOT, 'dist/src/volmerge.cjs');
const STALE_COUNTS = (process.env.REPRODUCE_STALE ?? '0 5 6 11 13 14 32').split(/\s+/).filter(Boolean).map(Number);

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs argv; returns status and output whatever the exit code. */
function run(argv: string[]): Run {
  const result = spawnSync(argv[0] ?? '', argv.slice(1), { encoding: 'utf8', env: { ...process.env, LVM_SUPPRESS_FD_WARNINGS: '1' } });
  return { status: result.status ?? -1, stdout: result.stdout ?? '', stderr: result.stderr ?? '' };
}

/** Runs argv and stops the reproducer when it fails (set-up steps only). */
function must(argv: string[]): string {
  const result = run(argv);
  if (result.status !== 0) throw new Error(`${argv.join(' ')} failed (${result.status}): ${result.stderr.trim()}`);
  return result.stdout;
}

/** The bitmaps of an image as "name[flags]". */
function bitmaps(image: string): { name: string; flags: string[] }[] {
  const info = JSON.parse(must(['qemu-img', 'info', '--output', 'json', '-f', 'qcow2', image])) as {
    'format-specific'?: { data?: { bitmaps?: { name: string; flags: string[] }[] } };
  };
  return info['format-specific']?.data?.bitmaps ?? [];
}

/** Describes the base's bitmaps after a run: "good ok", "all in-use", "good missing". */
function bitmapVerdict(image: string): { text: string; good: boolean } {
  const list = bitmaps(image);
  const inUse = list.filter((b) => b.flags.includes('in-use')).length;
  const good = list.find((b) => b.name === 'good');
  if (!good) return { text: inUse ? `good missing, ${inUse} in-use` : 'good missing', good: false };
  if (good.flags.includes('in-use')) return { text: `in-use (${inUse}/${list.length} bitmaps)`, good: false };
  return { text: inUse ? `good ok, ${inUse} other in-use` : 'good ok', good: inUse === 0 };
}

/** Base with N stale bitmaps (1 GiB virtual) under top with bitmap "good" and 126 MiB of data. */
function buildChain(base: string, top: string, stale: number): void {
  must(['qemu-img', 'create', '-q', '-f', 'qcow2', base, '1G']);
  for (let i = 0; i < stale; i += 1) must(['qemu-img', 'bitmap', '--add', '-f', 'qcow2', base, `stale${i}`]);
  must(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', top]);
  must(['qemu-img', 'bitmap', '--add', '-f', 'qcow2', top, 'good']);
  const writes: string[] = [];
  for (let mib = 0; mib < 126; mib += 14) writes.push('-c', `write -P 0x5a ${mib}M 14M`);
  must(['qemu-io', '-f', 'qcow2', ...writes, top]);
}

function main(): number {
  const dir = mkdtempSync(join(process.env.VOLMERGE_TEST_TMP || tmpdir(), 'volmerge-repro-'));
  const vg = `repro${process.pid}`;
  const rows: string[] = [];
  let failures = 0;
  try {
    must(['bash', join(ROOT, 'lvm-fixtures/vg/make-vg'), '--dir', dir, '--vg', vg, '--pv-size', '2G', '--extent-size', '4m']);
    for (const stale of STALE_COUNTS) {
      const lv = (name: string): string => {
        must(['lvcreate', '-q', '-y', '-Wn', '-Zn', '-L', '128m', '-n', name, vg]);
        return `/dev/${vg}/${name}`;
      };
      const [bareBase, bareTop, vmBase, vmTop] = [lv(`bb${stale}`), lv(`bt${stale}`), lv(`vb${stale}`), lv(`vt${stale}`)];
      buildChain(bareBase, bareTop, stale);
      buildChain(vmBase, vmTop, stale);

      const commitRun = run(['qemu-img', 'commit', '-q', '-f', 'qcow2', '-t', 'none', '-b', bareBase, '-d', bareTop]);
      const add = run(['qemu-img', 'bitmap', '--add', '-f', 'qcow2', bareBase, 'good']);
      const merge = run(['qemu-img', 'bitmap', '--merge', 'good', '-F', 'qcow2', '-b', bareTop, '-f', 'qcow2', bareBase, 'good']);
      const bareBitmapExit = add.status !== 0 ? add.status : merge.status;
      const bare = bitmapVerdict(bareBase);

      const merged = run(['node', CLI, 'merge', '--top', vmTop, '--base', vmBase, '--json']);
      let status = 'no JSON';
      try {
        status = (JSON.parse(merged.stdout) as { status: string }).status;
      } catch {
        /* reported as "no JSON" */
      }
      const ours = bitmapVerdict(vmBase);
      const same = run(['qemu-img', 'compare', '-q', '-f', 'qcow2', '-F', 'qcow2', vmBase, vmTop]).status === 0;
      const size = Number(must(['lvs', '--noheadings', '--units', 'b', '--nosuffix', '-o', 'lv_size', `${vg}/vb${stale}`]).trim());
      const claimedDone = status === 'done';
      const bad = (claimedDone && (!ours.good || !same)) || merged.status !== 0 || !ours.good;
      if (bad) failures += 1;
      rows.push(
        `| ${stale} | ${commitRun.status} | ${bareBitmapExit} | ${bare.text} | ${merged.status} | ${status}: ${ours.text}, data ${same ? 'same' : 'DIFFERENT'}, LV ${size / 1048576} MiB |`,
      );
      console.error(`reproduce-enospc: N=${stale} done${bad ? ' (FAILED)' : ''}`);
      for (const name of [`bt${stale}`, `bb${stale}`, `vt${stale}`, `vb${stale}`]) run(['lvremove', '-q', '-y', `${vg}/${name}`]);
    }
  } finally {
    run(['bash', join(ROOT, 'lvm-fixtures/vg/remove-vg'), '--dir', dir, '--vg', vg]);
    rmSync(dir, { recursive: true, force: true });
  }
  console.log('| N stale | bare commit exit | bare bitmap exit | bare result | volmerge exit | volmerge result |');
  console.log('|---|---|---|---|---|---|');
  for (const row of rows) console.log(row);
  if (failures > 0) console.log(`\n${failures} run(s) of volmerge ended without valid bitmaps or claimed done wrongly`);
  return failures > 0 ? 1 : 0;
}

try {
  process.exit(main());
} catch (error) {
  console.error(`reproduce-enospc: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(2);
}
