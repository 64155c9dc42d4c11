// Renders the walked yargs definitions (scripts/man/walk.ts) as the man page volmerge(1), in roff with the man macros.
import type { ManCommand, ManOption, ManProgram } from './walk.js';

/** Text made safe for roff: backslashes escaped, hyphens as minus signs, no line that starts a request. */
export function roffText(text: string): string {
  return text
    .replace(/\\/g, '\\e')
    .replace(/-/g, '\\-')
    .split('\n')
    .map((line) => (/^[.']/.test(line) ? `\\&${line}` : line))
    .join('\n');
}

function bold(text: string): string {
  return `\\fB${roffText(text)}\\fR`;
}

function italic(text: string): string {
  return `\\fI${roffText(text)}\\fR`;
}

/** How an option is written in its entry: --name VALUE, or the name alone for a positional. */
function optionTag(option: ManOption): string {
  if (option.positional) return italic(option.name);
  const flag = bold(`--${option.name}`);
  if (option.type === 'boolean') return flag;
  if (option.type === 'choice') return `${flag} ${(option.choices ?? []).map(italic).join('|')}`;
  // yargs names no metavariable: the option's own name stands for its value, as argparse does.
  return `${flag} ${italic(option.type === 'number' ? 'N' : option.name.toUpperCase())}`;
}

/** What follows an option's description: required, or its default. */
function optionNote(option: ManOption): string {
  if (option.required) return ' (required)';
  if (option.default === undefined || option.default === false) return '';
  return ` (default: ${JSON.stringify(option.default)})`;
}

/** The synopsis line of a command: its name, positionals and required options, then [options]. */
function synopsis(command: ManCommand): string {
  const words = [bold('volmerge'), bold(command.name)];
  for (const option of command.options) {
    if (option.positional) words.push(option.required ? italic(option.name) : `[${italic(option.name)}]`);
  }
  for (const option of command.options) if (option.required && !option.positional) words.push(optionTag(option));
  if (command.options.some((o) => !o.required && !o.positional)) words.push('[options]');
  return words.join(' ');
}

function renderCommand(command: ManCommand): string[] {
  const lines = ['.SS ' + `"${roffText(`volmerge ${command.command}`)}"`, roffText(command.describe)];
  for (const option of command.options) {
    lines.push('.TP', optionTag(option), roffText(option.describe + optionNote(option)));
  }
  if (command.examples.length > 0) {
    lines.push('.PP', 'Examples:');
    for (const example of command.examples) lines.push('.PP', '.RS 4', roffText(example.describe) + ':', '.br', '.nf', bold(example.command), '.fi', '.RE');
  }
  return lines;
}

/** The man page volmerge(1) of a program at a version. */
export function renderManPage(program: ManProgram, version: string, summary: string): string {
  const lines = [
    '.\\" volmerge(1): generated from the yargs definitions in src/cli by scripts/man-page.ts at build time; do not edit.',
    `.TH VOLMERGE 1 "" "volmerge ${roffText(version)}" "User Commands"`,
    // No hyphenation, ragged right: option names and paths stay whole, as in --help.
    '.nh',
    '.ad l',
    '.SH NAME',
    `volmerge \\- ${roffText(summary)}`,
    '.SH SYNOPSIS',
    ...program.commands.flatMap((command) => ['.nf', synopsis(command), '.fi']),
    '.nf',
    `${bold('volmerge')} ${bold('--help')} | ${bold('--version')}`,
    '.fi',
    '.SH DESCRIPTION',
    roffText(program.description),
    '.PP',
    `Every command takes ${bold('--help')} (${bold('-h')}), which prints the same options as this page.`,
    '.SH COMMANDS',
    ...program.commands.flatMap(renderCommand),
    '.SH EXIT STATUS',
    roffText(program.exitCodes),
    '.SH SEE ALSO',
    `${bold('qemu-img')}(1), ${bold('lvm')}(8). The package's README.md and docs/ (cli.md, how-a-merge-works.md, live-merge.md, ` +
      'agent-api.md, tls.md, crash-safety.md, clusters.md) describe each command at length.',
  ];
  return lines.join('\n') + '\n';
}
