// Parses the progress that `qemu-img commit -p` prints as "    (42.00/100%)" separated by carriage returns.

const PROGRESS_PATTERN = /\((\d+(?:\.\d+)?)\/100%\)/g;

/** The last percentage found in a chunk of qemu-img -p output, or undefined when the chunk has none. */
export function lastProgress(chunk: string): number | undefined {
  let last: number | undefined;
  for (const match of chunk.matchAll(PROGRESS_PATTERN)) last = Number(match[1]);
  return last === undefined ? undefined : Math.min(100, Math.max(0, last));
}

/** Keeps the tail of a stream so that a progress token split across chunks is still found. */
export class ProgressParser {
  private tail = '';
  constructor(private readonly onProgress: (percent: number) => void) {}

  /** Feeds one chunk of stdout; reports progress when it moved. */
  push(chunk: string): void {
    const text = this.tail + chunk;
    const percent = lastProgress(text);
    if (percent !== undefined) this.onProgress(percent);
    const cut = text.lastIndexOf(')');
    this.tail = cut >= 0 ? text.slice(cut + 1) : text.slice(-64);
  }
}
