// Base's write threshold through libvirt (virsh domblkthreshold on `vda[N]`, one-shot) as a driver of the shared space
// watch (src/merge/space-watch.ts): libvirt's block-threshold event wakes it, and, since an event is lost while
// libvirtd restarts, base's highest written offset (domstats block.N.allocation) is also looked at every few seconds.
import { log } from '../log.js';
import type { ThresholdDriver } from '../merge/space-watch.js';
import { layerName } from './disk-chain.js';
import { readDomain } from './domain-xml.js';
import { thresholdLayer, type DomainEvents } from './events.js';
import type { LibvirtRecord } from './record.js';
import { virsh, type DomainRef } from './virsh.js';

/** How often base's allocation is looked at, in case an event was lost. */
const LOOK_MS = 3000;

/** Base's layer name now (`vda[N]`): indices never change, but a path is what identifies the layer. */
async function baseLayer(ref: DomainRef, record: LibvirtRecord): Promise<string> {
  const disk = (await readDomain(ref)).disks.find((candidate) => candidate.target === record.target);
  const index = disk?.layers.find((layer) => layer.path === record.baseSource)?.index;
  if (index === undefined) throw new Error(`base ${record.baseSource} is no longer in disk ${record.target}`);
  return layerName(record.target, index);
}

/** Base's highest written offset as libvirt reports it (domstats --block --backing), or undefined. */
export async function baseAllocation(ref: DomainRef, record: LibvirtRecord): Promise<number | undefined> {
  const text = await virsh(ref, ['domstats', '--domain', ref.domain, '--block', '--backing'], 'reading block statistics');
  const fields = new Map(text.split('\n').flatMap((line) => {
    const match = /^\s*(block\.\d+\.[a-zA-Z.]+)=(.*)$/.exec(line);
    return match?.[1] && match[2] !== undefined ? [[match[1], match[2]] as const] : [];
  }));
  for (const [key, value] of fields) {
    if (!key.endsWith('.path') || value !== record.baseSource) continue;
    const allocation = Number(fields.get(key.replace(/\.path$/, '.allocation')));
    return Number.isSafeInteger(allocation) ? allocation : undefined;
  }
  return undefined;
}

/** The space watch's driver through libvirt for the base of record. */
export function libvirtThresholdDriver(ref: DomainRef, record: LibvirtRecord, events: DomainEvents): ThresholdDriver {
  let armedAt = 0;
  return {
    basePath: record.baseSource,
    async setThreshold(bytes) {
      const layer = await baseLayer(ref, record);
      await virsh(ref, ['domblkthreshold', '--domain', ref.domain, '--dev', layer, '--threshold', String(bytes)], `setting the write threshold of ${layer}`);
      armedAt = bytes;
    },
    async clearThreshold() {
      armedAt = 0;
      await baseLayer(ref, record)
        .then((layer) => virsh(ref, ['domblkthreshold', '--domain', ref.domain, '--dev', layer, '--threshold', '0'], `clearing the write threshold of ${layer}`))
        .catch((error: unknown) => log.debug(`clearing base's threshold: ${(error as Error).message}`));
    },
    subscribe(handlers) {
      let crossedAt = -1;
      const crossed = (): void => {
        if (armedAt === 0 || crossedAt === armedAt) return;
        crossedAt = armedAt;
        handlers.crossed();
      };
      const unsubscribe = events.subscribe((event) => {
        const layer = thresholdLayer(event);
        if (layer?.startsWith(`${record.target}[`)) crossed();
      });
      const timer = setInterval(() => {
        void baseAllocation(ref, record)
          .then((allocation) => {
            if (allocation !== undefined && armedAt > 0 && allocation >= armedAt) crossed();
          })
          .catch(() => undefined);
      }, LOOK_MS);
      timer.unref();
      return () => {
        clearInterval(timer);
        unsubscribe();
      };
    },
  };
}
