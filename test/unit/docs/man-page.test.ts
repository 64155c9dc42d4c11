import { expect } from 'chai';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { PACKAGE_ROOT } from '../../../src/package-root.js';
import { MAN_PAGE_PATH, manPageText } from '../../../scripts/man/page.js';
import { roffText } from '../../../scripts/man/roff.js';

// volmerge(1) is built from the yargs definitions that --help prints (scripts/man/): these tests hold the built page to
// those definitions, render it with man, and compare what it shows with what the real CLI's --help prints.

const CLI = new URL('dist/src/volmerge.cjs', PACKAGE_ROOT).pathname;
const PAGE = new URL(MAN_PAGE_PATH, PACKAGE_ROOT).pathname;

/** What `volmerge ARGS` prints on stdout (help output, here). */
function cli(...args: string[]): string {
  return execFileSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { ...process.env, VOLMERGE_STATE_DIR: '', VOLMERGE_SOCKET: '' } });
}

/** The page as man renders it for a wide terminal; stderr must stay empty (no roff warnings). */
function rendered(): string {
  const result = spawnSync('man', ['--warnings', '-E', 'UTF-8', '-l', PAGE], { encoding: 'utf8', env: { ...process.env, MANWIDTH: '250', MANPAGER: 'cat', PAGER: 'cat' } });
  expect(result.status, `man -l ${PAGE}: ${result.stderr}`).to.equal(0);
  expect(result.stderr, 'warnings from man/groff').to.equal('');
  return result.stdout; // man strips bold and underline when it writes to a pipe
}

/** The commands that `volmerge --help` lists. */
function helpCommands(): string[] {
  return [...cli('--help').matchAll(/^ {2}volmerge (\S+)/gm)].map((m) => m[1] ?? '');
}

/** The options that `volmerge COMMAND --help` lists (the built-in --help and --version left out). */
function helpOptions(command: string): string[] {
  const text = cli(command, '--help');
  return [...text.matchAll(/^ {2}(?:-\w, )? *--([a-z][a-z-]*)/gm)].map((m) => m[1] ?? '').filter((o) => o !== 'help' && o !== 'version');
}

describe('documentation: the man page volmerge(1)', () => {
  it('is what the build generates from the current yargs definitions', async () => {
    expect(readFileSync(PAGE, 'utf8')).to.equal(await manPageText());
  });

  it('is installed with the package', () => {
    const pkg = JSON.parse(readFileSync(new URL('package.json', PACKAGE_ROOT), 'utf8')) as { man?: string[]; files?: string[] };
    expect(pkg.man).to.deep.equal([`./${MAN_PAGE_PATH}`]);
    expect(pkg.files).to.include('dist/man');
  });

  it('renders with man, without warnings, and shows every command and option that --help shows', function () {
    this.timeout(60_000); // one run of the CLI per command
    const page = rendered();
    expect(page).to.match(/^VOLMERGE\(1\)/m);
    for (const section of ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'COMMANDS', 'EXIT STATUS', 'SEE ALSO']) expect(page).to.match(new RegExp(`^${section}$`, 'm'));
    const commands = helpCommands();
    expect(commands).to.include.members(['merge', 'agent', 'jobs', 'call', 'status', 'completion']);
    for (const command of commands) {
      expect(page, `the page has a section for volmerge ${command}`).to.match(new RegExp(`^ {3}volmerge ${command}\\b`, 'm'));
      const section = page.slice(page.search(new RegExp(`^ {3}volmerge ${command}\\b`, 'm'))).split(/^ {3}volmerge /m)[1] ?? '';
      for (const option of helpOptions(command)) expect(section, `volmerge ${command} --${option} on the page`).to.match(new RegExp(`^ {7}--${option}\\b`, 'm'));
    }
  });

  it('escapes roff: no line of text can become a request, and backslashes and hyphens print as themselves', () => {
    expect(roffText('.TH x\n\'br\nC:\\path a-b')).to.equal('\\&.TH x\n\\&\'br\nC:\\epath a\\-b');
  });
});

describe('--help says what volmerge does today', () => {
  it('describes cold and live merges and the agent over TLS with client certificates', function () {
    this.timeout(30_000);
    const help = cli('--help').replace(/\s*\n\s*/g, ' ');
    expect(help).to.match(/cold/i);
    expect(help).to.match(/live/i);
    expect(help).to.match(/QMP/);
    expect(help).to.match(/TLS and client certificates/);
    expect(help).to.not.match(/Cold-merge a qcow2 snapshot/);
    expect(help).to.not.match(/TCP with a token/);
    const merge = cli('merge', '--help').replace(/\s*\n\s*/g, ' ');
    expect(merge).to.match(/--qmp/);
    expect(merge).to.match(/Live, with --qmp/);
    const agent = cli('agent', '--help');
    expect(agent).to.match(/--listen/);
    expect(agent).to.match(/--tls-ca/);
  });
});
