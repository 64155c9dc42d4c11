#!/usr/bin/env node
// The volmerge command line: parses argv with yargs and is the only place that calls process.exit.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { mergeBuilder, mergeHandler, type MergeArgs } from './merge-command.js';
import { agentBuilder, agentHandler, type AgentArgs } from './agent-command.js';
import { jobsBuilder, jobsHandler, type JobsArgs } from './jobs-command.js';
import { callBuilder, callHandler, type CallArgs } from './call-command.js';
import { statusBuilder, statusHandler, type StatusArgs } from './status-command.js';
// Further commands (agent, jobs, call, status) register below, each in a file of its own.

const EXIT_USAGE = 2;

/** Parses argv, runs the command, and exits with its code. */
async function main(argv: string[]): Promise<void> {
  let exitCode = 0;
  await yargs(argv)
    .scriptName('volmerge')
    .usage('$0 <command> [options]\n\nCold-merge a qcow2 snapshot (top) into its backing volume (base), keeping dirty bitmaps valid.')
    .command<MergeArgs>(
      'merge',
      'Merge top into base: prune stale bitmaps, extend base, commit, copy bitmaps, verify',
      mergeBuilder,
      async (args) => {
        exitCode = await mergeHandler(args);
      },
    )
    .command<AgentArgs>('agent', 'Run the host agent: merge jobs over JSON-RPC 2.0 on a unix socket (TCP with a token)', agentBuilder, async (args) => {
      exitCode = await agentHandler(args);
    })
    .command<JobsArgs>('jobs', "List the agent's jobs with their progress", jobsBuilder, async (args) => {
      exitCode = await jobsHandler(args);
    })
    .command<CallArgs>('call <method> [params]', 'Send one JSON-RPC request to the agent and print its result', callBuilder, async (args) => {
      exitCode = await callHandler(args);
    })
    .command<StatusArgs>('status', 'Show whether a chain is being merged, left unfinished by a crash, or needs attention', statusBuilder, async (args) => {
      exitCode = await statusHandler(args);
    })
    .demandCommand(1, 'Name a command; see volmerge --help')
    .strict()
    .help()
    .alias('help', 'h')
    .version()
    .wrap(Math.min(110, process.stdout.columns || 110))
    .epilogue('Exit codes: 0 merged (or planned), 1 refused or failed (one line on stderr says why), 2 usage error.')
    .fail((message, error) => {
      if (error) throw error;
      console.error(`volmerge: ${message}\nRun volmerge --help for usage.`);
      process.exit(EXIT_USAGE);
    })
    .parseAsync();
  process.exit(exitCode);
}

main(hideBin(process.argv)).catch((error: unknown) => {
  console.error(`volmerge: internal error: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
