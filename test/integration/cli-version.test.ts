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

  it('starts without loading NODE_EXTRA_CA_CERTS, which node would parse before the first line runs', async () => {
    // A bundle node cannot read makes node warn at start-up; the command's own line drops the variable first.
    const missing = join(dir, 'no-such-ca-bundle.pem');
    const run = await execa(CLI, ['--version'], { cwd: '/', reject: false, env: { NODE_EXTRA_CA_CERTS: missing } });
    expect(run.exitCode, run.stderr).to.equal(0);
    expect(run.stderr).not.to.include(missing);
    const plain = await execa('node', [CLI, '--version'], { cwd: '/', reject: false, env: { NODE_EXTRA_CA_CERTS: missing } });
    expect(plain.stderr, 'node itself warns about the missing bundle (else this test could not fail)').to.include(missing);
  });
});
