// The code cache that the CLI starts from: accepted for the build's own files, and never used for other bytes. Each
// check compiles in a fresh node: within one process V8 reuses what it compiled before and never reads the cache.
import { expect } from 'chai';
import { execa } from 'execa';
import { mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { codeCachePath, compileWithCodeCache, writeCodeCache } from '../../src/bundle-loader.cjs';

const DIST_SRC = fileURLToPath(new URL('../../src/', import.meta.url));
const LOADER = join(DIST_SRC, 'bundle-loader.cjs');

/** How a fresh node uses the file's code cache; with run, also what the module's answer() returns. */
async function inFreshNode(file: string, run = true): Promise<{ cache: string; answer?: number }> {
  const script =
    'const c = require(process.argv[1]).compileWithCodeCache(process.argv[2]);' +
    "const answer = process.argv[3] === 'run' ? c.run().answer() : undefined;" +
    'console.log(JSON.stringify({ cache: c.cache, answer }));';
  const { stdout } = await execa('node', ['-e', script, LOADER, file, run ? 'run' : 'compile']);
  return JSON.parse(stdout) as { cache: string; answer?: number };
}

describe('code cache of the build (bundle-loader)', () => {
  let dir: string;
  let module: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'volmerge-code-cache-'));
    module = join(dir, 'answer.cjs');
    await writeFile(module, "#!/usr/bin/env node\nexports.answer = () => 42;\nexports.file = __filename;\n");
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  for (const file of ['volmerge-bundle.cjs', 'schema-validators/journal.schema.cjs', 'schema-validators/qemu-img-info-chain.schema.cjs']) {
    it(`this node accepts the cache that the build wrote for ${file}`, async () => {
      expect(await inFreshNode(join(DIST_SRC, file), false)).to.deep.equal({ cache: 'accepted' });
    });
  }

  it('runs a file from the cache it wrote, as the module at that path', async () => {
    writeCodeCache(module);
    expect(await inFreshNode(module)).to.deep.equal({ cache: 'accepted', answer: 42 });
    const exports = compileWithCodeCache(module).run() as { file: string };
    expect(exports.file).to.equal(module);
  });

  it('ignores a cache made from other bytes of the same length, and runs the file as it is now', async () => {
    writeCodeCache(module);
    const text = await readFile(module, 'utf8');
    await writeFile(module, text.replace('42', '43'));
    expect(await inFreshNode(module)).to.deep.equal({ cache: 'stale', answer: 43 });
  });

  it('reports a cache that V8 refuses, and a missing one, and runs the file either way', async () => {
    writeCodeCache(module);
    await truncate(codeCachePath(module), 40);
    expect(await inFreshNode(module)).to.deep.equal({ cache: 'rejected', answer: 42 });
    await rm(codeCachePath(module));
    expect(await inFreshNode(module)).to.deep.equal({ cache: 'missing', answer: 42 });
  });
});
