// Walks volmerge's yargs definitions (src/cli/program.ts and each command's builder) into plain data for the man page:
// the same descriptions, options, defaults and examples that --help prints, read from yargs itself.
import yargs, { type Argv } from 'yargs';
import { defineProgram, EXIT_CODES, PROGRAM_DESCRIPTION } from '../../src/cli/program.js';

/** One option or positional argument of a command. */
export interface ManOption {
  name: string;
  positional: boolean;
  type: 'string' | 'number' | 'boolean' | 'choice';
  describe: string;
  required: boolean;
  default?: unknown;
  choices?: readonly string[];
}

/** One command: its yargs command string, description, options and examples. */
export interface ManCommand {
  name: string;
  command: string;
  describe: string;
  options: ManOption[];
  examples: { command: string; describe: string }[];
}

/** The whole program as the man page shows it. */
export interface ManProgram {
  description: string;
  exitCodes: string;
  commands: ManCommand[];
}

/** What yargs keeps of a command (its command instance's handlers; yargs 17 has no public getter). */
interface CommandHandler {
  original: string;
  description: string | false;
  builder?: unknown;
}

/** What yargs declared for a command's options (yargs' getOptions(), which @types/yargs does not list). */
interface DeclaredOptions {
  key: Record<string, boolean>;
  boolean: string[];
  number: string[];
  choices: Record<string, string[]>;
  default: Record<string, unknown>;
  demandedOptions: Record<string, unknown>;
}

/** The readers of a yargs 17 instance that the walk uses; @types/yargs lists none of them. */
interface YargsInternals {
  getOptions(): DeclaredOptions;
  getGroups(): Record<string, string[]>;
  getInternalMethods(): {
    getCommandInstance(): { getCommandHandlers(): Record<string, CommandHandler> };
    getUsageInstance(): { getCommands(): [string, string, boolean, string[], boolean][]; getDescriptions(): Record<string, string | undefined> };
  };
}

/** Options that yargs adds to every command; the man page lists them once, for the program. */
const BUILT_IN = new Set(['help', 'version', '$0', '_']);
/** Environment variables whose values would leak into the defaults shown, were they set while the page is built. */
const DEFAULT_OVERRIDES = ['VOLMERGE_STATE_DIR', 'VOLMERGE_SOCKET'];

function readable(y: Argv): YargsInternals {
  return y as unknown as YargsInternals;
}

function internals(y: Argv): ReturnType<YargsInternals['getInternalMethods']> {
  return readable(y).getInternalMethods();
}

/** Runs one command's builder on a fresh yargs instance and reads back what it declared. */
async function walkCommand(name: string, handler: CommandHandler): Promise<ManCommand> {
  const y = yargs([]);
  const examples: { command: string; describe: string }[] = [];
  const example = y.example.bind(y);
  // yargs keeps examples where no getter reaches them: record them on their way in.
  y.example = ((command: string, describe: string) => {
    examples.push({ command: command.replace(/\$0/g, 'volmerge'), describe });
    return example(command, describe);
  }) as typeof y.example;
  if (typeof handler.builder === 'function') await (handler.builder as (y: Argv) => unknown)(y);
  const declared = readable(y).getOptions();
  const descriptions = internals(y).getUsageInstance().getDescriptions();
  const positionals = new Set(readable(y).getGroups()['Positionals:'] ?? []);
  const options = Object.keys(declared.key)
    .filter((key) => !BUILT_IN.has(key))
    .map((key): ManOption => {
      const choices = declared.choices[key];
      const type = choices ? 'choice' : declared.boolean.includes(key) ? 'boolean' : declared.number.includes(key) ? 'number' : 'string';
      const required = key in declared.demandedOptions || (positionals.has(key) && handler.original.includes(`<${key}>`));
      return {
        name: key,
        positional: positionals.has(key),
        type,
        describe: descriptions[key] ?? '',
        required,
        ...(key in declared.default ? { default: declared.default[key] } : {}),
        ...(choices ? { choices } : {}),
      };
    });
  return { name, command: handler.original, describe: handler.description || '', options, examples };
}

/** Reads every command of volmerge from its yargs definitions, in the order --help lists them. */
export async function walkProgram(): Promise<ManProgram> {
  const saved = DEFAULT_OVERRIDES.map((name) => [name, process.env[name]] as const);
  for (const [name] of saved) delete process.env[name];
  try {
    const program = defineProgram(yargs([]), () => undefined);
    const handlers = internals(program).getCommandInstance().getCommandHandlers();
    const commands: ManCommand[] = [];
    for (const [command] of internals(program).getUsageInstance().getCommands()) {
      const name = command.split(' ')[0] ?? command;
      const handler = handlers[name];
      if (!handler) throw new Error(`yargs lists command ${command} but has no handler for it`);
      commands.push(await walkCommand(name, handler));
    }
    return { description: PROGRAM_DESCRIPTION, exitCodes: EXIT_CODES, commands };
  } finally {
    for (const [name, value] of saved) if (value !== undefined) process.env[name] = value;
  }
}
