// A long-running command (argv array, never a shell string) whose stdout is read line by line as it comes: an event
// stream such as `virsh event --loop`. Stopped by the caller; its end (exit or failure to start) is reported once.
import { execa } from 'execa';
import { log } from '../log.js';

/** A running line process. */
export interface LineProcess {
  /** Resolves when the process has ended (by itself, or after stop), with its exit code (-1 when killed or not started). */
  readonly ended: Promise<number>;
  /** Ends the process (SIGTERM) and waits for it; harmless after it ended. */
  stop(): Promise<void>;
}

/** Starts argv and calls onLine with each whole line of its stdout (without the newline). */
export function startLineProcess(argv: readonly string[], onLine: (line: string) => void): LineProcess {
  const [file, ...args] = argv;
  if (!file) throw new Error('startLineProcess: empty argv');
  log.debug(`run (lines): ${argv.join(' ')}`);
  const child = execa(file, args, { reject: false, stdin: 'ignore', stderr: 'ignore', encoding: 'utf8', buffer: false, env: { LC_ALL: 'C' } });
  let pending = '';
  child.stdout?.on('data', (chunk: Buffer | string) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) onLine(line);
  });
  const ended = child.then(
    (result) => result.exitCode ?? -1,
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
