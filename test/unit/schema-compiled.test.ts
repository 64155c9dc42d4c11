// The build's compiled validators (one module per schema) judge exactly as ajv compiling schemas/ at run time, and are
// used only while the schema files they were made from match.
import { expect } from 'chai';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { COMPILED_VALIDATORS, compiledValidatorPath, compileValidator, sourceAjv } from '../../src/schema-compile.js';
import { AJV_OPTIONS, readSchemaTexts, referencedSchemas } from '../../src/schema-files.js';
import { compiledMatches, describeErrors, validatorSource, type CompiledModule } from '../../src/schema.js';
import { jsonFixture } from './fixtures.js';

const require = createRequire(import.meta.url);

/** Samples, good and bad, for a few schemas. */
function samples(): [string, unknown][] {
  const info = jsonFixture<Record<string, unknown>>('qemu/info-base.json');
  return [
    ['qemu-img-info.schema.json', info],
    ['qemu-img-info.schema.json', jsonFixture('qemu/info-in-use.json')],
    ['qemu-img-info.schema.json', { ...info, 'virtual-size': 'big' }],
    ['qemu-img-info.schema.json', { format: 'qcow2' }],
    ['qemu-img-info-chain.schema.json', jsonFixture('qemu/info-chain-top-base.json')],
    ['qemu-img-info-chain.schema.json', []],
    ['qemu-img-info-chain.schema.json', [{ ...info, filename: 7 }]],
    ['qemu-img-measure.schema.json', jsonFixture('qemu/measure-subchain.json')],
    ['qemu-img-measure.schema.json', { required: -1 }],
    ['qemu-img-check.schema.json', jsonFixture('qemu/check-clean.json')],
    ['lvs.schema.json', { report: [{ lv: [{ lv_name: 'a', vg_name: 'b', lv_size: '12.5m' }] }] }],
  ];
}

describe('compiled schema validators', function () {
  // Compiling every schema takes seconds on a loaded machine (more schemas, more time): mocha's 2 s is too short.
  this.timeout(60_000);
  let dir: string;
  const compiled = new Map<string, CompiledModule>();
  const texts = readSchemaTexts();

  before(() => {
    // Inside dist/ so that the module's require('ajv/dist/runtime/...') resolves as it does for dist/src/.
    dir = mkdtempSync(fileURLToPath(new URL('./compiled-schemas-', import.meta.url)));
    const ajv = sourceAjv(texts);
    for (const file of Object.keys(texts)) {
      const path = compiledValidatorPath(file, dir);
      writeFileSync(path, compileValidator(texts, file, ajv));
      compiled.set(file, require(path) as CompiledModule);
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('accept and refuse exactly what ajv compiling the schema files accepts and refuses, with the same errors', () => {
    const ajv = new Ajv(AJV_OPTIONS);
    for (const [file, text] of Object.entries(texts)) ajv.addSchema(JSON.parse(text) as object, file);
    let refused = 0;
    for (const [file, data] of samples()) {
      const runtime = ajv.getSchema(file);
      const built = compiled.get(file)?.[file];
      expect(runtime, file).to.be.a('function');
      expect(built, file).to.be.a('function');
      const verdict = built?.(data);
      expect(verdict, `${file} ${JSON.stringify(data).slice(0, 80)}`).to.equal(runtime?.(data));
      expect(describeErrors(built?.errors)).to.equal(describeErrors(runtime?.errors));
      if (!verdict) refused += 1;
    }
    expect(refused).to.be.above(4);
  });

  it('are trusted only while the schema file and every file it refers to read exactly as when they were compiled', () => {
    const file = 'qemu-img-info-chain.schema.json';
    const module = compiled.get(file) as CompiledModule;
    expect(referencedSchemas(texts, file), 'it refers to qemu-img-info').to.deep.equal(['qemu-img-info-chain.schema.json', 'qemu-img-info.schema.json']);
    expect(compiledMatches(module, texts)).to.equal(true);
    expect(compiledMatches(module, { ...texts, [file]: `${texts[file]} ` }), 'its own file changed').to.equal(false);
    expect(compiledMatches(module, { ...texts, 'qemu-img-info.schema.json': `${texts['qemu-img-info.schema.json']} ` }), 'a file it refers to changed').to.equal(false);
    expect(compiledMatches(module, { ...texts, 'journal.schema.json': `${texts['journal.schema.json']} ` }), 'another file changed').to.equal(true);
    expect(compiledMatches(module, { ...texts, 'new.schema.json': '{}' }), 'a new file').to.equal(true);
    const fewer = Object.entries(texts).filter(([name]) => name !== 'qemu-img-info.schema.json');
    expect(compiledMatches(module, Object.fromEntries(fewer)), 'a file it refers to is gone').to.equal(false);
  });

  it('are what the built package uses after npm run build', function () {
    if (!existsSync(COMPILED_VALIDATORS)) this.skip();
    expect(validatorSource()).to.equal('compiled');
  });
});
