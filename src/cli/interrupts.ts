// Ctrl-C and SIGTERM while a command runs: the first signal aborts the AbortSignal that the command hands to the merge
// (MergeJobRequest.signal), which stops where it safely can; a second one leaves at once, after saying what is left.
// A terminal's Ctrl-C sends SIGINT to the whole foreground process group, so a running qemu-img ends with volmerge;
// `kill -INT PID` and `kill -TERM PID` reach volmerge alone, and the aborted signal stops its running qemu-storage-daemon or qemu-img.
// An interrupted command ends by the signal it got (the shell then shows 130 or 143 and a calling script stops too).

import { VolmergeError } from '../errors.js';

/** The signals that interrupt a command, and the exit status a shell shows for a process that they end. */
export const STOP_SIGNALS = { SIGINT: 130, SIGTERM: 143 } as const;

/** SIGINT or SIGTERM. */
export type StopSignal = keyof typeof STOP_SIGNALS;

/** What the command does on a signal. */
export interface InterruptHandlers {
  /** The first signal, once the abort is sent: tell the operator what happens now. */
  first(signal: StopSignal): void;
  /** The second signal, just before the process leaves: tell the operator what is left. */
  second(signal: StopSignal): void;
}

const installed = new Set<(signal: NodeJS.Signals) => void>();

/** Ends the process by signal (listeners removed first, so that the default action runs); exits with its code if it survives. */
export function endBySignal(signal: StopSignal): never {
  for (const listener of installed) {
    process.removeListener('SIGINT', listener);
    process.removeListener('SIGTERM', listener);
  }
  installed.clear();
  process.kill(process.pid, signal);
  // Another listener (none of ours) kept the process alive: leave with the status the signal would have given.
  process.exit(STOP_SIGNALS[signal]);
}

/** Exits with code; an exit code of an interrupted command (130, 143) ends the process by its signal instead. */
export function exitWith(code: number): never {
  const signal = (Object.keys(STOP_SIGNALS) as StopSignal[]).find((name) => STOP_SIGNALS[name] === code);
  if (signal) endBySignal(signal);
  process.exit(code);
}

/** SIGINT and SIGTERM turned into one AbortSignal for a command, with the second signal handled. */
export class Interrupts {
  private readonly controller = new AbortController();
  private got: StopSignal | undefined;
  private readonly listener = (signal: NodeJS.Signals): void => this.onSignal(signal as StopSignal);

  constructor(private readonly handlers: InterruptHandlers) {}

  /** Aborted by the first signal; its reason names it ("interrupted by SIGINT"). */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** The first signal received, if any. */
  get received(): StopSignal | undefined {
    return this.got;
  }

  /**
   * Starts listening. The listeners stay installed until the process ends (never `once`): execa's exit hook re-raises
   * a signal that no other listener handles, which would kill volmerge before the merge has stopped.
   */
  install(): this {
    installed.add(this.listener);
    process.on('SIGINT', this.listener);
    process.on('SIGTERM', this.listener);
    return this;
  }

  private onSignal(signal: StopSignal): void {
    if (this.got) {
      this.handlers.second(signal);
      endBySignal(signal);
    }
    this.got = signal;
    this.controller.abort(new VolmergeError('aborted', `interrupted by ${signal}`));
    this.handlers.first(signal);
  }
}
