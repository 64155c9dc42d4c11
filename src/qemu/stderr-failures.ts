// Recognises the bitmap-write failures that qemu-img 7.x prints while still exiting 0.

const SILENT_FAILURE_PATTERNS = [/Failed to write bitmap/i, /Lost persistent bitmaps/i, /No space left on device/i];

/** The first stderr line that reports a lost bitmap or a full device, or undefined when there is none. */
export function findBitmapWriteFailure(stderr: string): string | undefined {
  return stderr
    .split(/\r?\n/)
    .map((line) => line.trim())
    .find((line) => SILENT_FAILURE_PATTERNS.some((pattern) => pattern.test(line)));
}
