// `volmerge --version` run as npm installs the command: through a symlink in a bin folder, far from package.json.
import { expect } from 'chai';
import { execa } from 'execa';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CLI } from '../helpers/cli.js';

describe('volmerge --version', function () {
  this.timeout(60_000);
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(process.env.VOLMERGE_TEST_TMP || tmpdir(), 'volmerge-version-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  it("prints package.json's version when run through a symlink, from another folder", async () => {
    const { version } = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
    await symlink(CLI, join(dir, 'volmerge'));
    const run = await execa(join(dir, 'volmerge'), ['--version'], { cwd: '/', reject: false });
    expect(run.exitCode, run.stderr).to.equal(0);
    expect(run.stdout.trim()).to.equal(version);
  });
});
