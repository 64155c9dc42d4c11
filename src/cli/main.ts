#!/usr/bin/env node
// The volmerge command line: parses argv with yargs and is the only place that calls process.exit.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { exitWith } from './interrupts.js';
// Each command's module is imported only when that command runs (its builder is async), so `volmerge --help` and every
// command load no more than they use: winston, the agent and the merge pipeline cost start-up time.
import type { MergeArgs } from './merge-command.js';
import type { AgentArgs } from './agent-command.js';
import type { JobsArgs } from './jobs-command.js';
import type { CallArgs } from './call-command.js';
import type { StatusArgs } from './status-command.js';
// Further commands (agent, jobs, call, status) register below, each in a file of its own; `completion` is yargs' own.

const EXIT_USAGE = 2;

/** Parses argv, runs the command, and exits with its code. */
async function main(argv: string[]): Promise<void> {
  let exitCode = 0;
  await yargs(argv)
    .scriptName('volmerge')
    .usage('$0 <command> [options]\n\nCold-merge a qcow2 snapshot (top) into its backing volume (base), keeping dirty bitmaps valid.')
    .command<MergeArgs>(
      'merge',
      "Merge top into base: prune stale bitmaps, extend base, commit, copy bitmaps, verify; then, when asked, rebase top's child, shrink base, remove top",
      async (y) => (await import('./merge-command.js')).mergeBuilder(y),
      async (args) => {
        exitCode = await (await import('./merge-command.js')).mergeHandler(args);
      },
    )
    .command<AgentArgs>(
      'agent',
      'Run the host agent: merge jobs over JSON-RPC 2.0 on a unix socket (TCP with a token)',
      async (y) => (await import('./agent-command.js')).agentBuilder(y),
      async (args) => {
        exitCode = await (await import('./agent-command.js')).agentHandler(args);
      },
    )
    .command<JobsArgs>(
      'jobs',
      "List the agent's jobs with their progress",
      async (y) => (await import('./jobs-command.js')).jobsBuilder(y),
      async (args) => {
        exitCode = await (await import('./jobs-command.js')).jobsHandler(args);
      },
    )
    .command<CallArgs>(
      'call <method> [params]',
      'Send one JSON-RPC request to the agent and print its result',
      async (y) => (await import('./call-command.js')).callBuilder(y),
      async (args) => {
        exitCode = await (await import('./call-command.js')).callHandler(args);
      },
    )
    .command<StatusArgs>(
      'status',
      'Show whether a chain is being merged, left unfinished by a crash, or needs attention',
      async (y) => (await import('./status-command.js')).statusBuilder(y),
      async (args) => {
        exitCode = await (await import('./status-command.js')).statusHandler(args);
      },
    )
    .completion('completion', 'Print a bash completion script (volmerge completion >> ~/.bashrc; zsh: bashcompinit first)')
    .demandCommand(1, 'Name a command; see volmerge --help')
    .strict()
    .help()
    .alias('help', 'h')
    .version()
    .wrap(Math.min(110, process.stdout.columns || 110))
    .epilogue(
      'Exit codes: 0 merged (or planned), 1 refused or failed (one line on stderr says why), 2 usage error; ' +
        'a merge stopped by Ctrl-C or SIGTERM ends by that signal (the shell shows 130 or 143), after saying where the chain stands.',
    )
    .fail((message, error) => {
      // A command's own failure arrives without a message; a failed option check (thrown in a builder's check) with one.
      if (error && !message) throw error;
      console.error(`volmerge: ${message}\nRun volmerge --help for usage.`);
      process.exit(EXIT_USAGE);
    })
    .parseAsync();
  exitWith(exitCode);
}

main(hideBin(process.argv)).catch((error: unknown) => {
  console.error(`volmerge: internal error: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
