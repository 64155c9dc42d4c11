// Takes flock(2) on an open file descriptor through util-linux's flock binary, since Node itself cannot call flock.
//
// The child gets the descriptor as its fd 3: the same open file description as ours, so the lock it takes belongs to
// that description and stays after the child exits. It is released when we close the descriptor, or when the kernel
// closes it because this process died, whatever killed it (SIGKILL of the whole process group included). This is the
// one command run outside src/os/run.ts: run() cannot hand an open descriptor to a child.
import { spawn } from 'node:child_process';
import { VolmergeError } from '../errors.js';
import { log } from '../log.js';

const CONFLICT_EXIT = 75;

/** Tries an exclusive flock on fd without waiting: 'locked' when taken, 'busy' when another open file holds it. */
export async function tryExclusiveFlock(fd: number, what: string): Promise<'locked' | 'busy'> {
  const argv = ['flock', '--exclusive', '--nonblock', '--conflict-exit-code', String(CONFLICT_EXIT), '3'];
  log.debug(`run: ${argv.join(' ')} (fd 3 = ${what})`);
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0] ?? 'flock', argv.slice(1), { stdio: ['ignore', 'ignore', 'pipe', fd], env: { ...process.env, LC_ALL: 'C' } });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    child.on('error', (error) => {
      reject(new VolmergeError('internal', `cannot run flock to lock ${what}: ${error.message}; install util-linux`));
    });
    child.on('close', (code, signal) => {
      if (code === 0) resolve('locked');
      else if (code === CONFLICT_EXIT) resolve('busy');
      else reject(new VolmergeError('internal', `flock on ${what} failed (${signal ?? `exit ${code}`}): ${stderr.trim() || 'no message'}`));
    });
  });
}
