// A one-line progress bar on stderr, drawn only when stderr is a terminal.

/** Draws and clears a progress bar for one long step. */
export class ProgressBar {
  private lastDrawn = -1;
  constructor(
    private readonly stream: NodeJS.WriteStream = process.stderr,
    private readonly width = 30,
  ) {}

  /** Whether drawing makes sense (a terminal, not a pipe or a file). */
  get enabled(): boolean {
    return Boolean(this.stream.isTTY);
  }

  /** Draws the bar at percent (0-100) with a label. */
  update(percent: number, label: string): void {
    if (!this.enabled) return;
    const rounded = Math.floor(percent);
    if (rounded === this.lastDrawn) return;
    this.lastDrawn = rounded;
    this.stream.write(`\r${renderBar(percent, this.width)} ${rounded.toString().padStart(3)}% ${label}`);
  }

  /** Ends the bar's line. */
  finish(): void {
    if (this.enabled && this.lastDrawn >= 0) this.stream.write('\n');
    this.lastDrawn = -1;
  }
}

/** The bar itself, e.g. "[######--------]". */
export function renderBar(percent: number, width: number): string {
  const filled = Math.round((Math.min(100, Math.max(0, percent)) / 100) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}]`;
}

/** Reports progress in steps of 10% (for logs, when there is no terminal to draw a bar on). */
export class ProgressLog {
  private lastStep = -1;
  constructor(private readonly report10: (percent: number) => void) {}

  /** Reports when progress crossed the next multiple of 10. */
  report(percent: number): void {
    const stepReached = Math.floor(percent / 10) * 10;
    if (stepReached <= this.lastStep) return;
    this.lastStep = stepReached;
    this.report10(stepReached);
  }
}
