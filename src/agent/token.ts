// Reads the bearer token that TCP clients of the agent must send.
import { readFile, stat } from 'node:fs/promises';
import { VolmergeError } from '../errors.js';
import { log } from '../log.js';

/** Shortest token accepted: a guessable token is worse than none. */
export const MIN_TOKEN_LENGTH = 16;

/** Reads a token file (its first line, trimmed); warns when others may read it, refuses an empty or short token. */
export async function readTokenFile(path: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new VolmergeError('usage', `--token-file ${path}: ${(error as Error).message}`);
  }
  const token = (text.split('\n')[0] ?? '').trim();
  if (token.length < MIN_TOKEN_LENGTH || /\s/.test(token)) {
    throw new VolmergeError('usage', `--token-file ${path}: the token must be one line of at least ${MIN_TOKEN_LENGTH} characters without spaces (e.g. openssl rand -hex 32)`);
  }
  const { mode } = await stat(path);
  if ((mode & 0o077) !== 0) log.warn(`--token-file ${path} can be read by others (mode ${(mode & 0o777).toString(8)}); chmod 600 it`);
  return token;
}
