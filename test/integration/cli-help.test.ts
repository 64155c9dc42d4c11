// `volmerge <command> --help` as the installed bin prints it, wrapped to 110 columns: every description whole, no word
// cut in two at a line's end (yargs' ES module build did that: "r" / "ebase").
import { expect } from 'chai';
import { walkProgram, type ManCommand } from '../../scripts/man/walk.js';
import { volmerge } from '../helpers/cli.js';

/** Text with every run of whitespace made one space, as wrapping only moves where lines break. */
function flat(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** The bin's help for a command, as a pipe sees it (no terminal: 110 columns). */
async function helpOf(command: ManCommand): Promise<string> {
  const run = await volmerge([command.name, '--help']);
  expect(run.exitCode, run.stderr).to.equal(0);
  return run.stdout;
}

describe('volmerge --help', function () {
  this.timeout(60_000);

  it("prints each command's description and every option's whole, and every word of its examples uncut", async () => {
    const program = await walkProgram();
    expect(program.commands.map((c) => c.name)).to.include('merge');
    // yargs' completion command prints its script for any argument, --help included.
    for (const command of program.commands.filter((c) => c.name !== 'completion')) {
      const help = await helpOf(command);
      const text = flat(help);
      expect(text, `${command.name} --help`).to.include(flat(command.describe));
      for (const option of command.options) expect(text, `${command.name} --help, --${option.name}`).to.include(flat(option.describe));
      // Examples sit in two columns side by side: their words, not their sentences, are whole.
      const words = new Set(help.split(/\s+/));
      for (const example of command.examples) {
        for (const word of `${example.command} ${example.describe}`.split(/\s+/)) expect(words, `${command.name} --help, example "${example.command}"`).to.include(word);
      }
    }
  });
});
