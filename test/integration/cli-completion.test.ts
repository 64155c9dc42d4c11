// `volmerge completion`: the bash completion script that yargs writes, sourced into a real bash that completes commands
// and options by asking the built CLI.
import { expect } from 'chai';
import { execa } from 'execa';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI, volmerge } from '../helpers/cli.js';

describe('volmerge completion', function () {
  this.timeout(60_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(process.env.VOLMERGE_TEST_TMP || tmpdir(), 'volmerge-completion-'));
    // The script calls `volmerge` by name, as an installed package's bin would be found on PATH.
    await writeFile(join(dir, 'volmerge'), `#!/bin/sh\nexec node ${JSON.stringify(CLI)} "$@"\n`);
    await chmod(join(dir, 'volmerge'), 0o755);
    const script = await volmerge(['completion']);
    expect(script.exitCode, script.stderr).to.equal(0);
    await writeFile(join(dir, 'completion.bash'), script.stdout);
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  /** What bash offers for the words typed so far (the last one is being completed). */
  async function complete(...words: string[]): Promise<string[]> {
    const program = [
      `source ${JSON.stringify(join(dir, 'completion.bash'))}`,
      `COMP_WORDS=(${['volmerge', ...words].map((w) => JSON.stringify(w)).join(' ')})`,
      `COMP_CWORD=${words.length}`,
      '_volmerge_yargs_completions',
      'printf "%s\\n" "${COMPREPLY[@]}"',
    ].join('\n');
    const result = await execa('bash', ['--norc', '-c', program], { env: { PATH: `${dir}:${process.env.PATH ?? ''}` }, stdin: 'ignore' });
    return String(result.stdout).split('\n').filter(Boolean);
  }

  it('prints a bash completion script for volmerge', async () => {
    const script = await volmerge(['completion']);
    expect(script.stdout).to.contain('###-begin-volmerge-completions-###');
    expect(script.stdout).to.contain('complete -o bashdefault -o default -F _volmerge_yargs_completions volmerge');
  });

  it('completes command names and each command\'s options in bash', async () => {
    expect(await complete('')).to.include.members(['merge', 'agent', 'jobs', 'call', 'status', 'completion']);
    expect(await complete('ag')).to.deep.equal(['agent']);
    expect(await complete('agent', '--tls-')).to.deep.equal(['--tls-cert', '--tls-key', '--tls-ca']);
    expect(await complete('jobs', '--con')).to.deep.equal(['--connect']);
    expect(await complete('merge', '--r')).to.deep.equal(['--rate-limit', '--remove-top']);
  });
});
