// Recognises the failures that qemu-img 7.x prints while still exiting 0: lost bitmaps, and a device that ran full.

const BITMAP_LOSS_PATTERNS = [/Failed to write bitmap/i, /Lost persistent bitmaps/i];
const NO_SPACE_PATTERN = /No space left on device/i;

function stderrLines(stderr: string): string[] {
  return stderr.split(/\r?\n/).map((line) => line.trim());
}

/** The first stderr line that reports a lost bitmap, or undefined when there is none. */
export function findBitmapWriteFailure(stderr: string): string | undefined {
  return stderrLines(stderr).find((line) => BITMAP_LOSS_PATTERNS.some((pattern) => pattern.test(line)));
}

/** The first stderr line that reports a full device (without a lost bitmap: see findBitmapWriteFailure), or undefined. */
export function findNoSpace(stderr: string): string | undefined {
  return stderrLines(stderr).find((line) => NO_SPACE_PATTERN.test(line));
}
