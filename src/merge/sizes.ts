// Size arithmetic of a merge: what base must hold afterwards, from its own qcow2 layout, rounded to the VG's extents.

/** Rounds bytes up to a multiple of unit. */
export function roundUp(bytes: number, unit: number): number {
  if (unit <= 0) return bytes;
  return Math.ceil(bytes / unit) * unit;
}

/** The parts of a qcow2 base's layout that change how much room the merged image takes. */
export interface Qcow2Layout {
  clusterSize: number;
  extendedL2: boolean;
  refcountBits: number;
  compressionType: 'zlib' | 'zstd';
  /** qcow2 version: 2 is compat=0.10 (no persistent bitmaps), 3 is compat=1.1. */
  version: 2 | 3;
}

/** The -o options that make qemu-img measure size an image laid out like base (qemu's defaults otherwise). */
export function measureOptions(layout: Qcow2Layout): string {
  const options = [`compat=${layout.version === 2 ? '0.10' : '1.1'}`, `cluster_size=${layout.clusterSize}`, `refcount_bits=${layout.refcountBits}`];
  if (layout.version === 3) {
    options.push(`extended_l2=${layout.extendedL2 ? 'on' : 'off'}`, `compression_type=${layout.compressionType}`);
  }
  return options.join(',');
}

/** A persistent bitmap's name and granularity, as sizing needs them. */
export interface SizedBitmap {
  name: string;
  granularity: number;
}

/**
 * Bytes that qcow2 stores for these persistent bitmaps of a disk of virtualSize: each bitmap's data clusters (all of
 * them, as if every bit were set), its table of cluster pointers, and the bitmap directory (the qcow2 format's layout).
 */
export function persistentBitmapBytes(bitmaps: readonly SizedBitmap[], virtualSize: number, clusterSize: number): number {
  if (bitmaps.length === 0) return 0;
  let total = 0;
  let directory = 0;
  for (const bitmap of bitmaps) {
    const bits = Math.ceil(virtualSize / bitmap.granularity);
    const clusters = Math.ceil(Math.ceil(bits / 8) / clusterSize);
    total += clusters * clusterSize + roundUp(clusters * 8, clusterSize);
    // A directory entry: 24 bytes, the name, padded to 8 bytes.
    directory += roundUp(24 + Buffer.byteLength(bitmap.name, 'utf8'), 8);
  }
  return total + roundUp(directory, clusterSize);
}

/** Bytes of the L1 table of a disk of virtualSize in this layout. */
export function l1TableBytes(virtualSize: number, layout: Pick<Qcow2Layout, 'clusterSize' | 'extendedL2'>): number {
  const l2Entries = layout.clusterSize / (layout.extendedL2 ? 16 : 8);
  return Math.ceil(virtualSize / (layout.clusterSize * l2Entries)) * 8;
}

/** What sizing a qcow2 base found: each part is recorded in the plan, so that a wrong estimate can be traced. */
export interface Qcow2SizeEstimate {
  /** qemu-img measure of top over base with base's layout: data and metadata of the merged image, laid out compactly. */
  required: number;
  /** The bitmaps base keeps, at the merged disk's size, in base's clusters. */
  bitmaps: number;
  /** Where base's image ends now (its used clusters, holes included). */
  baseEnd: number;
  /** Room for a second copy of the kept bitmaps (qemu writes new copies before it frees the old ones) and two clusters. */
  rewrite: number;
  /** A grown disk: base's old L1 table stays allocated while the new one is written, and one cluster more. */
  growth: number;
  /**
   * Base already holds part of top (an interrupted live commit): the bytes top may still bring, each in a new cluster
   * at worst, since the commit left holes that a compact measure misses. Then the first term is at least
   * baseEnd + partialTop + bitmaps.
   */
  partialTop?: number;
  /**
   * Clusters base has leaked (counted in its refcounts, pointed at by nothing: what a killed writer, such as an
   * interrupted commit, leaves), in bytes. No write reuses them until the leaks step gives them back, after the commit:
   * the merged image holds them on top of what measure counts. Absent in plans made before leaks were counted.
   */
  leaked?: number;
  /** Bytes base must hold: max(required + bitmaps + leaked, baseEnd) + rewrite + growth. */
  needed: number;
}

/** What qcow2 sizing needs. */
export interface Qcow2SizeInput {
  required: number;
  keptBitmaps: readonly SizedBitmap[];
  layout: Qcow2Layout;
  baseEnd: number;
  baseVirtualSize: number;
  topVirtualSize: number;
  /** See Qcow2SizeEstimate.partialTop. */
  partialTop?: number;
  /** Clusters base has leaked (see Qcow2SizeEstimate.leaked). */
  leakedClusters?: number;
}

/** The bytes a qcow2 base must hold during and after the merge. */
export function qcow2Needed(input: Qcow2SizeInput): Qcow2SizeEstimate {
  const { layout } = input;
  const finalSize = Math.max(input.baseVirtualSize, input.topVirtualSize);
  const bitmaps = layout.version === 3 ? persistentBitmapBytes(input.keptBitmaps, finalSize, layout.clusterSize) : 0;
  const rewrite = bitmaps + 2 * layout.clusterSize;
  const grows = input.topVirtualSize > input.baseVirtualSize;
  const growth = grows ? roundUp(l1TableBytes(input.baseVirtualSize, layout), layout.clusterSize) + layout.clusterSize : 0;
  const partial = input.partialTop === undefined ? 0 : input.baseEnd + input.partialTop + bitmaps;
  const leaked = (input.leakedClusters ?? 0) * layout.clusterSize;
  const needed = Math.max(input.required + bitmaps + leaked, input.baseEnd, partial) + rewrite + growth;
  return {
    required: input.required,
    bitmaps,
    baseEnd: input.baseEnd,
    rewrite,
    growth,
    ...(input.partialTop === undefined ? {} : { partialTop: input.partialTop }),
    ...(input.leakedClusters === undefined ? {} : { leaked }),
    needed,
  };
}

/** The size to extend an LV to, or null when it is big enough already. */
export function lvExtendTarget(needed: number, leafRoom: number, extentSize: number, currentSize: number): number | null {
  const target = roundUp(needed + leafRoom, extentSize);
  return target > currentSize ? target : null;
}
