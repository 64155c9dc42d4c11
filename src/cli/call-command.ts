// `volmerge call METHOD [JSON]`: sends one JSON-RPC request to the agent and prints its result (or its error) as JSON.
import type { Argv, ArgumentsCamelCase } from 'yargs';
import { clientFor, clientOptions, type ClientArgs } from '../agent/client-options.js';

/** Options of `volmerge call`. */
export interface CallArgs extends ClientArgs {
  method: string;
  params?: string;
}

/** Declares the arguments of `volmerge call`. */
export function callBuilder(yargs: Argv): Argv<CallArgs> {
  return clientOptions(yargs)
    .positional('method', { type: 'string', demandOption: true, describe: 'The method, e.g. Host.getJobs' })
    .positional('params', { type: 'string', describe: 'Its params as one JSON object' })
    .example('$0 call Host.ping', "Print the agent's version")
    .example(`$0 call Job.abort '{"job_id":"..."}'`, 'Abort a job') as unknown as Argv<CallArgs>;
}

/** Runs `volmerge call`; prints the result on stdout and returns 0, or prints the error object and returns 1. */
export async function callHandler(args: ArgumentsCamelCase<CallArgs>): Promise<number> {
  const { asVolmergeError } = await import('../errors.js');
  let params: unknown;
  if (args.params !== undefined) {
    try {
      params = JSON.parse(args.params);
    } catch (error) {
      console.error(`volmerge: the params are not JSON: ${(error as Error).message}`);
      return 2;
    }
  }
  let client;
  try {
    client = await clientFor(args);
    const response = await client.call(args.method, params);
    if ('error' in response) {
      console.log(JSON.stringify(response.error));
      console.error(`volmerge: ${args.method} failed (code ${response.error.code}): ${response.error.message}`);
      return 1;
    }
    console.log(JSON.stringify(response.result));
    return 0;
  } catch (thrown) {
    console.error(`volmerge: ${asVolmergeError(thrown).message}`);
    return 1;
  } finally {
    client?.close();
  }
}
