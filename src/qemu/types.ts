// Shapes of the qemu-img JSON that volmerge reads (checked against schemas/ before use).

/** One persistent bitmap as qemu-img info reports it. */
export interface BitmapInfo {
  name: string;
  granularity: number;
  flags: string[];
}

/** qemu-img info of one image (the fields volmerge reads). */
export interface ImageInfo {
  filename: string;
  format: string;
  'virtual-size': number;
  'actual-size'?: number;
  'cluster-size'?: number;
  'backing-filename'?: string;
  'full-backing-filename'?: string;
  'backing-filename-format'?: string;
  'format-specific'?: { type: string; data?: { corrupt?: boolean; bitmaps?: BitmapInfo[] } };
}

/** qemu-img measure output. */
export interface MeasureInfo {
  required: number;
  'fully-allocated': number;
  bitmaps?: number;
}

/** qemu-img check output. */
export interface CheckInfo {
  filename: string;
  format: string;
  'check-errors': number;
  'image-end-offset'?: number;
  corruptions?: number;
  leaks?: number;
  /** With -r leaks: the leaked clusters given back. */
  'leaks-fixed'?: number;
}

/** The bitmaps of an image; none when qemu-img leaves the key out. */
export function bitmapsOf(info: ImageInfo): BitmapInfo[] {
  return info['format-specific']?.data?.bitmaps ?? [];
}

/** A bitmap volmerge may rely on: recording ('auto') and consistent (not 'in-use'). */
export function isValidBitmap(bitmap: BitmapInfo): boolean {
  return bitmap.flags.includes('auto') && !bitmap.flags.includes('in-use');
}

/** A bitmap that qemu marks inconsistent: its contents cannot be trusted. */
export function isInUse(bitmap: BitmapInfo): boolean {
  return bitmap.flags.includes('in-use');
}
