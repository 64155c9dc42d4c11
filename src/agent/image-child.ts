// For an internal merge the agent finds top's child itself among the image's volumes: the image folder of a file domain,
// the LVs tagged IU_<img_id> of a block domain. Each candidate's own header says whether it is backed by top.
import { readdir, realpath, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { VolmergeError } from '../errors.js';
import { childrenAmong } from '../merge/children.js';
import { listLvs as lvmListLvs, type LvFacts } from '../storage/lvm.js';
import { IMAGE_TAG_PREFIX, type ResolvedSubchain, type SubchainInfo } from './address.js';

/** vdsm's prefix of the tag that names a block volume's parent. */
export const PARENT_TAG_PREFIX = 'PU_';

/** The image's other volumes: regular files in the image folder. */
async function fileCandidates(chain: ResolvedSubchain): Promise<string[]> {
  const dir = dirname(chain.top);
  const found: string[] = [];
  for (const name of (await readdir(dir)).sort()) {
    const path = join(dir, name);
    if (path === chain.top || path === chain.base) continue;
    if ((await stat(path).catch(() => undefined))?.isFile()) found.push(path);
  }
  return found;
}

/** The image's other LVs (tag IU_<img_id>) that are active here; an inactive one tagged as top's child (PU_<top_id>) is refused. */
function blockCandidates(lvs: readonly LvFacts[], info: SubchainInfo): string[] {
  const found: string[] = [];
  for (const lv of lvs) {
    if (lv.name === info.top_id || lv.name === info.base_id || !lv.tags.includes(`${IMAGE_TAG_PREFIX}${info.img_id}`)) continue;
    if (lv.activeLocally === false) {
      if (lv.tags.includes(`${PARENT_TAG_PREFIX}${info.top_id}`)) {
        throw new VolmergeError('not-found', `volume ${lv.vg}/${lv.name} of image ${info.img_id} is top's child (tag ${PARENT_TAG_PREFIX}${info.top_id}) but not active here; activate it (lvchange -ay ${lv.vg}/${lv.name}) and merge again`);
      }
      continue;
    }
    found.push(`/dev/${lv.vg}/${lv.name}`);
  }
  return found;
}

/** Top's child among the image's volumes, or undefined when top is the image's leaf; more than one child is refused. */
export async function findImageChild(
  chain: ResolvedSubchain,
  info: SubchainInfo,
  listLvs: (vg: string) => Promise<LvFacts[]> = lvmListLvs,
): Promise<string | undefined> {
  const candidates = chain.domain === 'file' ? await fileCandidates(chain) : blockCandidates(await listLvs(info.sd_id), info);
  // On a shared VG top may be inactive here until the job activates it: then no active volume can resolve to it.
  const children = await childrenAmong(candidates, await realpath(chain.top).catch(() => chain.top));
  if (children.length > 1) {
    throw new VolmergeError('bad-chain', `top volume ${info.top_id} of image ${info.img_id} backs ${children.length} volumes (${children.join(', ')}); a merge can rebase only one child`);
  }
  return children[0];
}
