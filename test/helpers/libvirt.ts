// Test helper: a private libvirtd (scripts/test-libvirtd: its own mount namespace, sockets and state under one folder)
// started once per test process and stopped when it exits, and transient TCG domains with no guest OS on a qcow2 chain
// (files or block devices), whose "guest" writes go through the test-only HMP qemu-io path (which taints the domain;
// the product never uses qemu-monitor-command).
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { sh } from './commands.js';
import type { GuestWrite } from './live-vm.js';
import { sleep } from './wait.js';

/** The daemon script, from the repository (dist/test/helpers -> scripts/). */
const SCRIPT = fileURLToPath(new URL('../../../scripts/test-libvirtd', import.meta.url));
/** The daemon's folder: short (its socket path must fit), one per test process. */
const DIR = `/tmp/vmlv-${process.pid}`;

let started: Promise<string> | undefined;
let domains = 0;

/** Whether libvirtd is installed here (scripts/setup installs it). */
export function haveLibvirt(): boolean {
  return spawnSync('sh', ['-c', 'command -v libvirtd && command -v virsh'], { stdio: 'ignore' }).status === 0;
}

/** Starts this process's libvirtd (once) and resolves with its URI; it is stopped when the process exits. */
export function testLibvirtd(): Promise<string> {
  started ??= (async () => {
    process.once('exit', () => spawnSync(SCRIPT, ['stop', DIR], { stdio: 'ignore' }));
    return (await sh([SCRIPT, 'start', DIR])).trim();
  })();
  return started;
}

/** Stops libvirtd alone and starts it again (domains and their block jobs go on meanwhile). */
export async function restartLibvirtd(): Promise<void> {
  await sh([SCRIPT, 'restart', DIR]);
}

/** virsh against this process's libvirtd; throws with its stderr when it fails. */
export async function virshTest(args: readonly string[]): Promise<string> {
  return sh(['virsh', '-q', '-c', await testLibvirtd(), ...args]);
}

/** A running domain and what its guest wrote. */
export interface TestDomain {
  name: string;
  uri: string;
  writes: GuestWrite[];
  /** Writes a pattern through the guest's disk; fails unless qemu-io reports the whole write. */
  write(pattern: number, offset: number, length: number): Promise<void>;
  /** SIGTERM to QEMU, as a shutdown does: it closes its images (bitmaps stored) and exits; the domain is gone. */
  stop(): Promise<void>;
  /** virsh destroy, harmless when the domain is gone already. */
  kill(): Promise<void>;
}

/** The domain's XML: one virtio disk on the chain's active layer (libvirt finds the backing chain in the headers). */
function domainXml(name: string, active: string): string {
  const block = active.startsWith('/dev/');
  const source = block ? `<source dev='${active}'/>` : `<source file='${active}'/>`;
  const driver = block ? `<driver name='qemu' type='qcow2' cache='none' io='native'/>` : `<driver name='qemu' type='qcow2'/>`;
  return `<domain type='qemu'><name>${name}</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='${block ? 'block' : 'file'}' device='disk'>${driver}${source}<target dev='vda' bus='virtio'/></disk>
    <controller type='usb' model='none'/><memballoon model='none'/>
  </devices></domain>`;
}

/** How many complete qemu-io writes the domain's log shows, and the last result line. */
async function writeResults(name: string): Promise<string[]> {
  const text = await readFile(`${DIR}/log/qemu/${name}.log`, 'utf8').catch(() => '');
  return text.split('\n').filter((line) => /^(wrote |write failed)/.test(line));
}

/** Creates a transient domain on layers (base first; the last is the active layer), with its XML written in dir. */
export async function startDomain(dir: string, layers: readonly string[]): Promise<TestDomain> {
  const uri = await testLibvirtd();
  domains += 1;
  const name = `volmerge-libvirt-${process.pid}-${domains}`;
  const xml = `${dir}/${name}.xml`;
  await writeFile(xml, domainXml(name, layers[layers.length - 1] ?? ''));
  await virshTest(['create', xml]);
  const writes: GuestWrite[] = [];
  let gone = false;
  return {
    name,
    uri,
    writes,
    async write(pattern, offset, length) {
      const before = (await writeResults(name)).length;
      await virshTest(['qemu-monitor-command', name, '--hmp', `qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "write -P ${pattern} ${offset} ${length}"`]);
      for (const deadline = Date.now() + 30_000; ; await sleep(20)) {
        const results = await writeResults(name);
        const result = results[before];
        if (result !== undefined) {
          if (!result.startsWith(`wrote ${length}/${length} bytes at offset ${offset}`)) throw new Error(`guest write at ${offset} failed: ${result}`);
          break;
        }
        if (Date.now() > deadline) throw new Error(`domain ${name}: qemu-io did not answer within 30 s`);
      }
      writes.push({ pattern, offset, length });
    },
    async stop() {
      if (gone) return;
      gone = true;
      await virshTest(['destroy', name, '--graceful']);
    },
    async kill() {
      if (gone) return;
      gone = true;
      await virshTest(['destroy', name]).catch(() => undefined);
    },
  };
}

/** The disk's chain as the domain's live XML has it: source paths, active first. */
export async function domainChain(name: string): Promise<string[]> {
  const xml = await virshTest(['dumpxml', name]);
  const disk = xml.slice(xml.indexOf('<disk'), xml.indexOf('</disk>')).replace(/<mirror[\s\S]*?<\/mirror>/, '');
  return [...disk.matchAll(/<source (?:file|dev)='([^']+)'/g)].map((match) => match[1] ?? '');
}

/** The disk's block job, as `virsh blockjob --info --raw` prints it ('' when none). */
export async function domainJob(name: string): Promise<string> {
  return (await virshTest(['blockjob', name, 'vda', '--info', '--raw'])).trim();
}
