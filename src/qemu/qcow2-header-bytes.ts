// Reads the bytes that hold a qcow2 image's header, its extensions and its backing name: the first cluster, as large
// as the header declares it (4 KiB first, then the rest when the cluster is larger), bounded by MAX_HEADER_BYTES.
import { readRange } from '../os/read-range.js';
import { declaredClusterSize, MAX_HEADER_BYTES } from './qcow2-header.js';

/** Reads an image's first cluster (fewer bytes where the image is shorter). */
export async function readHeaderBytes(path: string): Promise<Buffer> {
  const first = await readRange(path, 0, 4096);
  const clusterSize = declaredClusterSize(first);
  if (clusterSize === undefined || clusterSize <= first.length) return first;
  return readRange(path, 0, Math.min(clusterSize, MAX_HEADER_BYTES));
}
