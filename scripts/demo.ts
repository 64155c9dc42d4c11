// The demo merge: builds a chain with stale, shared and top-only bitmaps, shows the plan, merges, and proves the result.
import { spawnSync } from 'node:child_process';
import { dir } from 'tmp-promise';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const CLI = fileURLToPath(new URL('../src/volmerge.cjs', import.meta.url));

/** Runs a command (shown with its output on the terminal, or quietly to capture stdout); stops the demo if it fails. */
function step(argv: string[], options: { show?: boolean } = {}): string {
  const show = options.show !== false;
  if (show) console.log(`\n$ ${argv.map((a) => (a.includes(' ') ? `'${a}'` : a)).join(' ')}`);
  const result = spawnSync(argv[0] ?? '', argv.slice(1), { encoding: 'utf8', stdio: ['ignore', show ? 'inherit' : 'pipe', 'inherit'] });
  if (result.status !== 0) {
    console.error(`demo: ${argv[0]} failed (exit ${result.status})`);
    process.exit(1);
  }
  return result.stdout ?? '';
}

/** The bitmaps of an image as "name [flags]". */
function bitmaps(image: string): string {
  const info = JSON.parse(step(['qemu-img', 'info', '--output', 'json', '-f', 'qcow2', image], { show: false })) as {
    'format-specific'?: { data?: { bitmaps?: { name: string; flags: string[] }[] } };
  };
  const list = info['format-specific']?.data?.bitmaps ?? [];
  return list.map((b) => `${b.name} [${b.flags.join(',')}]`).join(', ') || '(none)';
}

async function main(): Promise<void> {
  const scratch = await dir({ prefix: 'volmerge-demo-', unsafeCleanup: true });
  try {
    const base = join(scratch.path, 'base.qcow2');
    const top = join(scratch.path, 'top.qcow2');
    const before = join(scratch.path, 'top-before.raw');
    console.log(`volmerge demo in ${scratch.path}: base (1 GiB virtual, 16 MiB data, 8 stale bitmaps, bitmap "daily")`);
    console.log('  <- top (bitmaps "daily" and "incr-42", 256 MiB of new data)');
    step(['qemu-img', 'create', '-q', '-f', 'qcow2', base, '1G'], { show: false });
    step(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0x11 0 16M', base], { show: false });
    for (let i = 0; i < 8; i += 1) step(['qemu-img', 'bitmap', '--add', '-f', 'qcow2', base, `stale-${i}`], { show: false });
    step(['qemu-img', 'bitmap', '--add', '-f', 'qcow2', base, 'daily'], { show: false });
    step(['qemu-img', 'create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', top], { show: false });
    step(['qemu-img', 'bitmap', '--add', '-f', 'qcow2', top, 'daily'], { show: false });
    step(['qemu-img', 'bitmap', '--add', '-f', 'qcow2', top, 'incr-42'], { show: false });
    const writes: string[] = [];
    for (let mib = 8; mib < 264; mib += 16) writes.push('-c', `write -P 0x5a ${mib}M 16M`);
    step(['qemu-io', '-f', 'qcow2', ...writes, top], { show: false });
    step(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', top, before], { show: false });
    console.log(`  base bitmaps: ${bitmaps(base)}`);
    console.log(`  top bitmaps:  ${bitmaps(top)}`);

    step(['node', CLI, 'merge', '--top', top, '--base', base, '--dry-run']);
    step(['node', CLI, 'merge', '--top', top, '--base', base, '--log-level', 'info']);

    console.log('\nVerifying independently of volmerge:');
    const same = spawnSync('qemu-img', ['compare', '-f', 'qcow2', '-F', 'raw', base, before], { encoding: 'utf8' });
    console.log(`  qemu-img compare base vs. top before the merge: ${same.status === 0 ? 'identical' : `DIFFERENT (${same.stdout.trim()})`}`);
    console.log(`  base bitmaps now: ${bitmaps(base)}`);
    if (same.status !== 0) process.exitCode = 1;
  } finally {
    await scratch.cleanup();
  }
}

main().catch((error: unknown) => {
  console.error(`demo: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
