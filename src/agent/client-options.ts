// The options that every client command (jobs, call) uses to find the agent: a unix socket, or TCP with a token file.
import type { Argv } from 'yargs';
import { defaultSocketPath } from './defaults.js';

/** How a client command reaches the agent. */
export interface ClientArgs {
  socket: string;
  connect?: string;
  tokenFile?: string;
}

/** Declares --socket, --connect and --token-file. */
export function clientOptions<T>(yargs: Argv<T>): Argv<T & ClientArgs> {
  return yargs
    .option('socket', { type: 'string', default: defaultSocketPath(), describe: "The agent's unix socket (VOLMERGE_SOCKET)" })
    .option('connect', { type: 'string', describe: 'Reach the agent on TCP HOST:PORT instead (needs --token-file)' })
    .option('token-file', { type: 'string', describe: 'File holding the bearer token, for --connect' })
    .check((args) => {
      if (args.connect && !args['token-file']) throw new Error('--connect needs --token-file');
      return true;
    }) as unknown as Argv<T & ClientArgs>;
}

/** Builds a client from the parsed options (loads the client module only now, to keep --help fast). */
export async function clientFor(args: ClientArgs): Promise<import('./client.js').RpcClient> {
  const { RpcClient, parseHostPort } = await import('./client.js');
  if (args.connect) {
    const { readFile } = await import('node:fs/promises');
    const token = ((await readFile(args.tokenFile ?? '', 'utf8')).split('\n')[0] ?? '').trim();
    return new RpcClient({ ...parseHostPort(args.connect), token });
  }
  return new RpcClient({ socketPath: args.socket });
}
