// Test helper: run a real command (argv array) and fail loudly when it fails.
import { execa } from 'execa';

/** Runs argv and returns stdout; throws with stderr when the exit code is not 0. */
export async function sh(argv: readonly string[], options: { env?: Record<string, string> } = {}): Promise<string> {
  const [file, ...args] = argv;
  const result = await execa(file ?? '', args, { reject: false, env: options.env, stdin: 'ignore' });
  if (result.exitCode !== 0) {
    throw new Error(`${argv.join(' ')} exited ${result.exitCode}: ${String(result.stderr)}`);
  }
  return String(result.stdout);
}
