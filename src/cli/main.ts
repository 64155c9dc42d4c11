#!/usr/bin/env node
// The volmerge command line: parses argv with yargs and is the only place that calls process.exit. The commands and
// their help texts are declared in program.ts, which the man page is built from too.
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { packageVersion } from '../agent/defaults.js';
import { defineProgram } from './program.js';

const EXIT_USAGE = 2;

/** Parses argv, runs the command, and exits with its code. */
async function main(argv: string[]): Promise<void> {
  let exitCode = 0;
  await defineProgram(yargs(argv), (code) => {
    exitCode = code;
  })
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
  process.exit(exitCode);
}

main(hideBin(process.argv)).catch((error: unknown) => {
  console.error(`volmerge: internal error: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
