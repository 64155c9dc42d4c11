// Test helper: reads what a bitmap marks, through qemu-nbd -B and nbdinfo --map (libnbd-bin).
import { execa } from 'execa';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A dirty extent: [offset, offset+length). */
export interface Extent {
  offset: number;
  length: number;
}

/** The extents that bitmap NAME of IMAGE marks dirty (read-only, image opened alone: backing not followed). */
export async function dirtyExtents(image: string, name: string): Promise<Extent[]> {
  const dir = await mkdtemp(join(tmpdir(), 'volmerge-nbd-'));
  const socket = join(dir, 'nbd.sock');
  const server = execa('qemu-nbd', ['--read-only', '--persistent', '-f', 'qcow2', '-B', name, '-k', socket, image], {
    reject: false,
    stdin: 'ignore',
  });
  try {
    for (let i = 0; i < 100; i += 1) {
      const probe = await execa('nbdinfo', ['--can', 'connect', `nbd+unix:///?socket=${socket}`], { reject: false });
      if (probe.exitCode === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const map = await execa('nbdinfo', ['--json', `--map=qemu:dirty-bitmap:${name}`, `nbd+unix:///?socket=${socket}`], {
      reject: false,
      stdin: 'ignore',
    });
    if (map.exitCode !== 0) throw new Error(`nbdinfo --map of ${name} in ${image} failed: ${String(map.stderr)}`);
    const rows = JSON.parse(String(map.stdout)) as { offset: number; length: number; type: number }[];
    return rows.filter((r) => (r.type & 1) === 1).map((r) => ({ offset: r.offset, length: r.length }));
  } finally {
    server.kill('SIGTERM');
    await server;
    await rm(dir, { recursive: true, force: true });
  }
}

/** Whether every byte range of `inner` lies inside the union of `outer`. */
export function covers(outer: Extent[], inner: Extent[]): boolean {
  const sorted = [...outer].sort((a, b) => a.offset - b.offset);
  return inner.every((piece) => {
    let position = piece.offset;
    const end = piece.offset + piece.length;
    for (const range of sorted) {
      if (range.offset > position) break;
      if (range.offset + range.length > position) position = range.offset + range.length;
      if (position >= end) return true;
    }
    return position >= end;
  });
}
