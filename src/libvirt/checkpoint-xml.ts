// A libvirt checkpoint's XML, parsed and checked against schemas/libvirt-checkpoint.schema.json before it is believed:
// which bitmap, if any, it has on a disk. A checkpoint made while the domain runs adds its bitmap to the active layer,
// where the image does not show it until QEMU closes it: the checkpoints are how volmerge learns of such bitmaps.
import { XMLParser } from 'fast-xml-parser';
import { VolmergeError } from '../errors.js';
import { checkAgainst } from '../schema.js';
import { virsh, type DomainRef } from './virsh.js';

interface XmlCheckpoint {
  domaincheckpoint: { name: string; disks?: { disk?: { name: string; checkpoint?: string; bitmap?: string }[] } };
}

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseAttributeValue: false,
  parseTagValue: false,
  isArray: (_name, jpath) => String(jpath) === 'domaincheckpoint.disks.disk',
});

/** The bitmap a checkpoint's XML gives the disk target, or undefined (no bitmap there). */
export function bitmapOnDisk(text: string, target: string, source: string): string | undefined {
  let parsed: unknown;
  try {
    parsed = parser.parse(text, true);
  } catch (error) {
    throw new VolmergeError('bad-output', `${source}: not well-formed XML (${(error as Error).message})`);
  }
  const checkpoint = checkAgainst<XmlCheckpoint>('libvirt-checkpoint.schema.json', parsed, source).domaincheckpoint;
  const disk = checkpoint.disks?.disk?.find((candidate) => candidate.name === target);
  if (!disk || (disk.checkpoint !== undefined && disk.checkpoint !== 'bitmap')) return undefined;
  return disk.bitmap ?? checkpoint.name;
}

/** The bitmaps that the domain's checkpoints (names given) have on disk target. */
export async function checkpointBitmaps(ref: DomainRef, target: string, names: readonly string[]): Promise<string[]> {
  const bitmaps: string[] = [];
  for (const name of names) {
    const text = await virsh(ref, ['checkpoint-dumpxml', '--domain', ref.domain, '--checkpointname', name, '--no-domain'], `reading checkpoint ${name}`);
    const bitmap = bitmapOnDisk(text, target, `checkpoint ${name} of domain ${ref.domain}`);
    if (bitmap !== undefined) bitmaps.push(bitmap);
  }
  return bitmaps;
}
