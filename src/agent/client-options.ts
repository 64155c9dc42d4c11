// The options that every client command (jobs, call) uses to find the agent: its unix socket, or its TLS listener with a
// client certificate (and a bearer token when the agent asks for one).
import type { Argv } from 'yargs';
import { defaultSocketPath } from './defaults.js';

/** How a client command reaches the agent. */
export interface ClientArgs {
  socket: string;
  connect?: string;
  tlsCert?: string;
  tlsKey?: string;
  tlsCa?: string;
  tokenFile?: string;
}

/** Declares --socket, --connect, --tls-cert, --tls-key, --tls-ca and --token-file. */
export function clientOptions<T>(yargs: Argv<T>): Argv<T & ClientArgs> {
  return yargs
    .option('socket', { type: 'string', default: defaultSocketPath(), describe: "The agent's unix socket (VOLMERGE_SOCKET)" })
    .option('connect', { type: 'string', describe: "Reach the agent's TLS listener on HOST:PORT instead (needs --tls-cert, --tls-key, --tls-ca)" })
    .option('tls-cert', { type: 'string', describe: "This client's certificate (PEM), signed by the CA the agent trusts" })
    .option('tls-key', { type: 'string', describe: "This client's private key (PEM)" })
    .option('tls-ca', { type: 'string', describe: "The CA (PEM) that signed the agent's certificate" })
    .option('token-file', { type: 'string', describe: 'File holding the bearer token, when the agent also asks for one' })
    .check((args) => {
      const tlsFlags = ['tls-cert', 'tls-key', 'tls-ca'] as const;
      if (args.connect && tlsFlags.some((f) => !args[f])) throw new Error('--connect needs --tls-cert, --tls-key and --tls-ca: the agent speaks TLS with client certificates on TCP');
      if (!args.connect && [...tlsFlags, 'token-file' as const].some((f) => args[f])) throw new Error('--tls-cert, --tls-key, --tls-ca and --token-file go with --connect');
      return true;
    }) as unknown as Argv<T & ClientArgs>;
}

/** Builds a client from the parsed options (loads the client module only now, to keep --help fast). */
export async function clientFor(args: ClientArgs): Promise<import('./client.js').RpcClient> {
  const { RpcClient, parseHostPort } = await import('./client.js');
  if (args.connect) {
    const { readTlsMaterial } = await import('./tls.js');
    const tls = await readTlsMaterial({ cert: args.tlsCert ?? '', key: args.tlsKey ?? '', ca: args.tlsCa ?? '' });
    const token = args.tokenFile ? await readClientToken(args.tokenFile) : undefined;
    return new RpcClient({ ...parseHostPort(args.connect), tls, ...(token ? { token } : {}) });
  }
  return new RpcClient({ socketPath: args.socket });
}

/** The first line of a token file, trimmed. */
async function readClientToken(path: string): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  const { VolmergeError } = await import('../errors.js');
  try {
    return ((await readFile(path, 'utf8')).split('\n')[0] ?? '').trim();
  } catch (error) {
    throw new VolmergeError('usage', `--token-file ${path}: ${(error as Error).message}`);
  }
}
