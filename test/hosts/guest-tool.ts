// Runs inside a host VM of the cluster harness (node dist/test/hosts/guest-tool.js COMMAND ...) and prints one JSON
// object: makes a chain of LVs on the shared VG, checks a merged chain, or describes what this host sees of the VG.
import { execa } from 'execa';
import { readFile, writeFile } from 'node:fs/promises';
import { covers, dirtyExtents, type Extent } from '../helpers/dirty-map.js';
import { bitmapsIn, makeChain, rawCopy, sameData } from '../helpers/images.js';
import { sh } from '../helpers/commands.js';

/** The bitmaps whose contents the scenarios follow (the chain's stale ones are pruned by the merge). */
const KEPT = ['shared', 'toponly'];

async function lvm(argv: string[]): Promise<string> {
  return sh(argv);
}

/** make-chain VG BASE TOP RAW EXTENTS: LVs BASE (32 MiB, too small) and TOP (64 MiB), the chain, a raw copy of top and its bitmaps' extents; both LVs deactivated again. */
async function makeChainCommand(vg: string, base: string, top: string, raw: string, extentsFile: string): Promise<object> {
  const started = Date.now();
  await lvm(['lvcreate', '-q', '-y', '-Wn', '-Zn', '-L', '32m', '-n', base, vg]);
  await lvm(['lvcreate', '-q', '-y', '-Wn', '-Zn', '-L', '64m', '-n', top, vg]);
  const basePath = `/dev/${vg}/${base}`;
  const topPath = `/dev/${vg}/${top}`;
  await makeChain(basePath, topPath, { virtualSize: '256M', stale: 2, shared: ['shared'], topOnly: ['toponly'], baseDataMiB: 2, topDataMiB: 24, topDataOffsetMiB: 2 });
  await rawCopy(topPath, raw);
  const extents: Record<string, Extent[]> = {};
  for (const name of KEPT) extents[name] = await dirtyExtents(topPath, name);
  await writeFile(extentsFile, JSON.stringify(extents));
  await lvm(['lvchange', '-an', `${vg}/${top}`, `${vg}/${base}`]);
  return { ms: Date.now() - started };
}

/** check VG BASE TOP RAW EXTENTS: base and top read as the raw copy; base's bitmaps are exactly the kept ones, none in-use, each covering what it covered in top. */
async function checkCommand(vg: string, base: string, top: string, raw: string, extentsFile: string): Promise<object> {
  await lvm(['lvchange', '-aey', `${vg}/${base}`, `${vg}/${top}`]);
  try {
    const basePath = `/dev/${vg}/${base}`;
    const topPath = `/dev/${vg}/${top}`;
    const before = JSON.parse(await readFile(extentsFile, 'utf8')) as Record<string, Extent[]>;
    const bitmaps = await bitmapsIn(basePath);
    const coverage: Record<string, boolean> = {};
    for (const name of KEPT) coverage[name] = bitmaps.some((b) => b.name === name) && covers(await dirtyExtents(basePath, name), before[name] ?? []);
    const result = {
      baseSameAsRaw: await sameData(basePath, raw),
      topSameAsRaw: await sameData(topPath, raw),
      baseBitmaps: bitmaps.map((b) => ({ name: b.name, flags: b.flags })).sort((a, b) => a.name.localeCompare(b.name)),
      coverage,
    };
    const ok =
      result.baseSameAsRaw &&
      result.topSameAsRaw &&
      KEPT.every((name) => coverage[name]) &&
      bitmaps.length === KEPT.length &&
      bitmaps.every((b) => !b.flags.includes('in-use') && b.flags.includes('auto'));
    return { ok, ...result };
  } finally {
    await lvm(['lvchange', '-an', `${vg}/${base}`, `${vg}/${top}`]);
  }
}

/**
 * state VG: what this host sees: the VG's sequence number, every LV with its UUID, tags, size and local activation,
 * the LV locks lvmlockd holds here (lvmlockctl --info: UUID -> ex or sh), and device-mapper devices.
 */
async function stateCommand(vg: string): Promise<object> {
  const seqno = (await lvm(['vgs', '--noheadings', '-o', 'vg_seqno', vg])).trim();
  const lvs = JSON.parse(await lvm(['lvs', '--reportformat', 'json', '--units', 'b', '--nosuffix', '-o', 'lv_name,lv_uuid,lv_tags,lv_size,lv_active_locally', vg])) as {
    report: { lv: Record<string, string>[] }[];
  };
  const locks: Record<string, string> = {};
  for (const line of (await lvm(['lvmlockctl', '--info'])).split('\n')) {
    const match = /^LK LV (ex|sh) (\S+)$/.exec(line.trim());
    if (match?.[1] && match[2]) locks[match[2]] = match[1];
  }
  const dm = await execa('dmsetup', ['ls'], { reject: false });
  return {
    seqno,
    locks,
    lvs: (lvs.report[0]?.lv ?? []).sort((a, b) => String(a.lv_name).localeCompare(String(b.lv_name))),
    dm: String(dm.stdout)
      .split('\n')
      .map((l) => l.split(/\s+/)[0] ?? '')
      .filter((n) => n.length > 0 && n !== 'No')
      .sort(),
  };
}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  let result: object;
  if (command === 'make-chain' && args.length === 5) result = await makeChainCommand(...(args as [string, string, string, string, string]));
  else if (command === 'check' && args.length === 5) result = await checkCommand(...(args as [string, string, string, string, string]));
  else if (command === 'state' && args.length === 1) result = await stateCommand(args[0] ?? '');
  else {
    console.error('usage: guest-tool make-chain|check VG BASE TOP RAW EXTENTS | state VG');
    return 2;
  }
  console.log(JSON.stringify(result));
  return 'ok' in result && result.ok === false ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exit(1);
  },
);
