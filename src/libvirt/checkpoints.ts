// Bitmaps through libvirt's checkpoints, the only way libvirt lets a client touch them (never qemu-img on an image that
// QEMU holds: on block devices libvirt's private /dev hides the lock, the write succeeds and breaks the next commit).
// A checkpoint is redefined (metadata only) for a bitmap of the same name; with --redefine-validate libvirt checks
// that the bitmap is in the disk's active layer and in consecutive layers below, persistent, recording and consistent
// (exactly what it will carry at a commit); deleting the checkpoint removes the bitmap from every layer that has it.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { virsh, virshError, virshRaw, type DomainRef } from './virsh.js';

/** The checkpoint names the domain has. */
export async function listCheckpoints(ref: DomainRef): Promise<string[]> {
  const text = await virsh(ref, ['checkpoint-list', '--domain', ref.domain, '--name'], 'listing its checkpoints');
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line.length > 0);
}

/** A checkpoint of one disk whose bitmap has the checkpoint's name (libvirt requires the two to match). */
export function checkpointXml(name: string, target: string): string {
  const escaped = name.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/'/g, '&apos;');
  // creationTime is required by a redefine; its value does not matter for a checkpoint that lives a moment.
  return `<domaincheckpoint><name>${escaped}</name><creationTime>1</creationTime><disks><disk name='${target}' checkpoint='bitmap' bitmap='${escaped}'/></disks></domaincheckpoint>`;
}

/** Redefines a checkpoint from XML; 'invalid' when validate is asked and libvirt finds its bitmap missing or broken. */
async function redefine(ref: DomainRef, xml: string, validate: boolean, what: string): Promise<'defined' | 'invalid'> {
  const dir = await mkdtemp(join(tmpdir(), 'volmerge-checkpoint-'));
  try {
    const file = join(dir, 'checkpoint.xml');
    await writeFile(file, xml, { mode: 0o600 });
    const result = await virshRaw(ref.uri, ['checkpoint-create', '--domain', ref.domain, '--xmlfile', file, '--redefine', ...(validate ? ['--redefine-validate'] : [])]);
    if (result.exitCode === 0) return 'defined';
    if (validate && /checkpoint inconsistent|missing or broken bitmap/i.test(result.stderr)) return 'invalid';
    throw virshError(ref, result, what);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Deletes a checkpoint: its metadata only, or with its bitmap from every layer (libvirt reopens them writable). */
export async function deleteCheckpoint(ref: DomainRef, name: string, metadataOnly: boolean): Promise<void> {
  await virsh(ref, ['checkpoint-delete', '--domain', ref.domain, '--checkpointname', name, ...(metadataOnly ? ['--metadata'] : [])], `deleting checkpoint ${name}`);
}

/**
 * Whether libvirt finds bitmap name valid from the disk's active layer down (see the file comment). A checkpoint of
 * that name that the domain has already is redefined as it is (its own XML: nothing changes); otherwise one is
 * redefined for the check and its metadata deleted at once (leftovers after a crash: removeCheckpointMetadata).
 */
export async function bitmapValidInLibvirt(ref: DomainRef, target: string, name: string, existing: ReadonlySet<string>): Promise<boolean> {
  if (existing.has(name)) {
    const xml = await virsh(ref, ['checkpoint-dumpxml', '--domain', ref.domain, '--checkpointname', name], `reading checkpoint ${name}`);
    return (await redefine(ref, xml, true, `checking checkpoint ${name}`)) === 'defined';
  }
  const verdict = await redefine(ref, checkpointXml(name, target), true, `checking bitmap ${name} of ${target} through a checkpoint`);
  if (verdict === 'defined') await deleteCheckpoint(ref, name, true);
  return verdict === 'defined';
}

/** Deletes the metadata of the checkpoints named (those a crash may have left), except the domain's own. */
export async function removeCheckpointMetadata(ref: DomainRef, names: readonly string[], keep: ReadonlySet<string>): Promise<void> {
  const now = new Set(await listCheckpoints(ref));
  for (const name of names) if (now.has(name) && !keep.has(name)) await deleteCheckpoint(ref, name, true);
}

/**
 * Removes bitmap name from the disk's layers that have it (base's stale bitmap: the caller made sure no other layer
 * has it): a checkpoint redefined for it, then deleted. A checkpoint left by a crash between the two is deleted; a
 * bitmap already gone counts as removed.
 */
export async function removeBitmap(ref: DomainRef, target: string, name: string): Promise<void> {
  if (!(await listCheckpoints(ref)).includes(name)) await redefine(ref, checkpointXml(name, target), false, `redefining checkpoint ${name} to remove its bitmap`);
  const result = await virshRaw(ref.uri, ['checkpoint-delete', '--domain', ref.domain, '--checkpointname', name]);
  if (result.exitCode === 0) return;
  if (!/not found in backing chain/i.test(result.stderr)) throw virshError(ref, result, `removing bitmap ${name} of ${target} (virsh checkpoint-delete)`);
  await deleteCheckpoint(ref, name, true);
}
