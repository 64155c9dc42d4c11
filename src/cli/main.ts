#!/usr/bin/env node
// The volmerge command line: parses argv with yargs and is the only place that calls process.exit. The commands and
// their help texts are declared in program.ts, which the man page is built from too.
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { packageVersion } from '../agent/defaults.js';
import { exitWith } from './interrupts.js';
import { defineProgram } from './program.js';

const EXIT_USAGE = 2;

/** yargs' usage instance, reached through its internal methods (yargs 17). */
type WithUsage = { getInternalMethods(): { getUsageInstance(): { cacheHelpMessage(): void } } };

/**
 * yargs renders the whole --help text each time a command runs, so that the command could show it later (showHelp()
 * inside a handler, which volmerge never does): 10-20 ms of every merge's start-up, before its first process. --help
 * and usage errors render it when they need it.
 */
function skipHelpCaching(program: Argv): void {
  const usage = (program as unknown as Partial<WithUsage>).getInternalMethods?.().getUsageInstance();
  if (usage) usage.cacheHelpMessage = () => undefined;
}

/** Parses argv, runs the command, and exits with its code. */
async function main(argv: string[]): Promise<void> {
  let exitCode = 0;
  const program = defineProgram(yargs(argv), (code) => {
    exitCode = code;
  });
  skipHelpCaching(program);
  await program
    .demandCommand(1, 'Name a command; see volmerge --help')
    .strict()
    .help()
    .alias('help', 'h')
    // From package.json beside dist/, not yargs' own search from the command's path: npm installs the command as a symlink
    // in a bin folder, from where yargs finds no package.json and prints "unknown".
    .version(packageVersion())
    .wrap(Math.min(110, process.stdout.columns || 110))
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
