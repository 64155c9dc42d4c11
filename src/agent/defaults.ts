// Defaults of the agent and its clients, and the test-only knobs read from the environment.
import { readFileSync } from 'node:fs';
import { PACKAGE_ROOT } from '../package-root.js';

/** The agent's unix socket unless --socket says otherwise (VOLMERGE_SOCKET overrides it for clients and the agent). */
export function defaultSocketPath(): string {
  return process.env.VOLMERGE_SOCKET || '/run/volmerge/agent.sock';
}

/** At most this many merges run at once unless --max-jobs says otherwise. */
export const DEFAULT_MAX_JOBS = 2;
/** Finished jobs are forgotten after this many seconds unless --job-ttl says otherwise (vdsm keeps them an hour too). */
export const DEFAULT_JOB_TTL_SECONDS = 3600;
/** On SIGTERM, running merges get this many seconds to finish before they are interrupted. */
export const DEFAULT_STOP_TIMEOUT_SECONDS = 30;

/**
 * TEST-ONLY: VOLMERGE_TEST_COMMIT_RATE (bytes per second) slows every commit down with qemu-img commit -r so that tests
 * can watch progress and abort mid-commit. Never set it in production; undefined unless set to a positive whole number.
 */
export function testCommitRateLimit(): number | undefined {
  const text = process.env.VOLMERGE_TEST_COMMIT_RATE;
  if (!text || !/^[1-9][0-9]*$/.test(text)) return undefined;
  return Number(text);
}

/** The package version (package.json beside dist/). */
export function packageVersion(): string {
  try {
    const text = readFileSync(new URL('package.json', PACKAGE_ROOT), 'utf8');
    return String((JSON.parse(text) as { version?: unknown }).version ?? 'unknown');
  } catch {
    return 'unknown';
  }
}
