// A long-running command (argv array, never a shell string) whose stdout is read line by line as it comes: an event
// stream such as `virsh event --loop`. Started through runPiped (src/os/run.ts, where every command starts); stopped by
// the caller; its end (exit or failure to start) is reported once.
import { runPiped } from './run.js';

/** A running line process. */
export interface LineProcess {
  /** Resolves when the process has ended (by itself, or after stop), with its exit code (-1 when killed or not started). */
  readonly ended: Promise<number>;
  /** Ends the process (SIGTERM) and waits for it; harmless after it ended. */
  stop(): Promise<void>;
}

/** Starts argv and calls onLine with each whole line of its stdout (without the newline). */
export function startLineProcess(argv: readonly string[], onLine: (line: string) => void): LineProcess {
  const child = runPiped(argv);
  // It reads nothing: its stdin is closed at once, as for any command.
  child.stdin.end();
  child.stdout.setEncoding('utf8');
  let pending = '';
  child.stdout.on('data', (chunk: string) => {
    pending += chunk;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) onLine(line);
  });
  const ended = child.exited.then(
    (result) => (result.signal ? -1 : result.exitCode),
    () => -1,
  );
  return {
    ended,
    async stop() {
      child.kill('SIGTERM');
      await ended;
    },
  };
}
