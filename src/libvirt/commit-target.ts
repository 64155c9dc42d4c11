// The commit's top and base as libvirt names them now (`vda[N]`, looked up from the live XML each time: a path is
// what identifies a layer), and whether the layer above top keeps a relative backing name afterwards.
import { isAbsolute } from 'node:path';
import { VolmergeError } from '../errors.js';
import { readInfo } from '../qemu/queries.js';
import { findDiskChain, type LibvirtChain } from './disk-chain.js';
import { readDomain } from './domain-xml.js';
import type { LibvirtRecord } from './record.js';
import type { DomainRef } from './virsh.js';

/** The chain top -> base of the record as the domain holds it now; 'bad-chain' when it no longer does. */
export async function commitTarget(ref: DomainRef, record: LibvirtRecord): Promise<LibvirtChain> {
  const chain = await findDiskChain(await readDomain(ref), ref, { top: record.topSource, base: record.baseSource });
  if (chain.target !== record.target || chain.active !== record.active) {
    throw new VolmergeError('bad-chain', `top ${record.topSource}: domain ${record.domain.name} now has it in disk ${chain.target} (${chain.active ? 'active' : 'inner'} layer), not where the merge was planned; merge again`);
  }
  return chain;
}

/** Whether top's header names base by a relative path (an internal merge then keeps the name above relative, as a cold merge does). */
export async function topRelative(record: LibvirtRecord): Promise<boolean> {
  if (record.active) return false;
  const name = (await readInfo(record.topSource, { forceShare: true }))['backing-filename'];
  return name !== undefined && !isAbsolute(name) && !name.startsWith('json:');
}
