// A domain's XML as libvirt gives it (virsh dumpxml: the live XML while it runs), parsed and checked against
// schemas/libvirt-domain.schema.json before it is believed, then read into plain data: each disk's chain of layers
// (active layer first, with libvirt's backing indices), and the mirror of a block job that shows one.
import { XMLParser } from 'fast-xml-parser';
import { VolmergeError } from '../errors.js';
import { checkAgainst } from '../schema.js';
import { virsh, type DomainRef } from './virsh.js';

/** One layer of a disk's chain: libvirt's index (vda[N]) and the volume it opens. */
export interface DiskLayer {
  /** libvirt's backing index; the active layer's is in its source (absent in a domain that is not running). */
  index: number | undefined;
  /** file or block (network and other sources have no path volmerge can merge). */
  type: string;
  path: string | undefined;
  /** qcow2, raw, ... as libvirt knows it. */
  format: string | undefined;
}

/** One disk: its target (vda), its chain (active layer first) and the mirror of a running copy or active commit. */
export interface DomainDisk {
  target: string;
  device: string;
  layers: DiskLayer[];
  /** Shown by an active commit (job 'active-commit') or a copy; ready once its copy is done. */
  mirror?: { job: string; ready: boolean };
}

/** A domain as volmerge reads it. */
export interface DomainFacts {
  name: string;
  uuid: string;
  /** Whether it runs (the live XML carries an id). */
  running: boolean;
  disks: DomainDisk[];
}

interface XmlSource {
  file?: string;
  dev?: string;
  index?: string;
}
interface XmlStore {
  type: string;
  index?: string;
  format?: { type?: string };
  source?: XmlSource;
  backingStore?: XmlStore | '';
}
interface XmlDisk {
  type: string;
  device?: string;
  driver?: { type?: string };
  source?: XmlSource;
  backingStore?: XmlStore | '';
  target: { dev: string };
  mirror?: { job?: string; ready?: string };
}
interface XmlDomain {
  domain: { name: string; uuid: string; id?: string; devices?: { disk?: XmlDisk[] } };
}

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseAttributeValue: false,
  parseTagValue: false,
  isArray: (_name, jpath) => String(jpath) === 'domain.devices.disk',
});

function numberOf(text: string | undefined): number | undefined {
  return text === undefined ? undefined : Number(text);
}

/** The layers of a disk: its source, then each backingStore down to the empty one. */
function layersOf(disk: XmlDisk): DiskLayer[] {
  const layers: DiskLayer[] = [];
  if (!disk.source) return layers;
  layers.push({ index: numberOf(disk.source.index), type: disk.type, path: disk.source.file ?? disk.source.dev, format: disk.driver?.type });
  // Bounded: a chain deeper than this is not one libvirt would give.
  for (let store = disk.backingStore, depth = 0; store && depth < 1000; store = store.backingStore, depth += 1) {
    layers.push({ index: numberOf(store.index), type: store.type, path: store.source?.file ?? store.source?.dev, format: store.format?.type });
  }
  return layers;
}

/** Parses a domain's XML text (see the file comment); 'bad-output' when it is not a domain's XML. */
export function parseDomainXml(text: string, source: string): DomainFacts {
  let parsed: unknown;
  try {
    parsed = parser.parse(text, true);
  } catch (error) {
    throw new VolmergeError('bad-output', `${source}: not well-formed XML (${(error as Error).message})`);
  }
  const { domain } = checkAgainst<XmlDomain>('libvirt-domain.schema.json', parsed, source);
  return {
    name: domain.name,
    uuid: domain.uuid,
    running: domain.id !== undefined,
    disks: (domain.devices?.disk ?? []).map((disk) => ({
      target: disk.target.dev,
      device: disk.device ?? 'disk',
      layers: layersOf(disk),
      ...(disk.mirror ? { mirror: { job: disk.mirror.job ?? '', ready: disk.mirror.ready === 'yes' } } : {}),
    })),
  };
}

/** The domain as libvirt holds it now (its live XML while it runs). */
export async function readDomain(ref: DomainRef): Promise<DomainFacts> {
  const text = await virsh(ref, ['dumpxml', '--domain', ref.domain], 'reading its XML (virsh dumpxml)');
  return parseDomainXml(text, `the XML of domain ${ref.domain}`);
}
