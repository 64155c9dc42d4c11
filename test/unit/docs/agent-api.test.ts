import { expect } from 'chai';
import { readdirSync, readFileSync } from 'node:fs';
import { PACKAGE_ROOT } from '../../../src/package-root.js';
import { agentMethods, type AgentServices } from '../../../src/agent/methods.js';
import { applicationCode, GENERAL_APPLICATION_CODE, RPC, VDSM_CODES, VOLMERGE_CODES } from '../../../src/agent/rpc-errors.js';
import type { ErrorCode } from '../../../src/errors.js';
import { anchorsOf, codeNames, githubSlug, readPage, sectionOf, tables } from '../../helpers/markdown.js';

// docs/agent-api.md against the sources it describes: the JSON-RPC methods, their params and results (schemas/), the job
// status, and every error code (src/errors.ts, src/agent/rpc-errors.ts). Each direction fails: a thing in the source
// that the page does not name, and a thing the page names that the source does not have.

interface Schema {
  title?: string;
  $ref?: string;
  const?: unknown;
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
}

function schema(file: string): Schema {
  return JSON.parse(readFileSync(new URL(`schemas/${file}`, PACKAGE_ROOT), 'utf8')) as Schema;
}

/** A $ref to a whole schema file is followed; one into a file's definitions names a leaf (an id, a number). */
function resolved(node: Schema): Schema {
  if (!node.$ref || node.$ref.includes('#')) return node;
  return schema(node.$ref);
}

/** Every field a schema's objects name, dotted (subchain_info.sd_id), with [] for the objects of an array (bitmaps[].name). */
export function fieldNames(node: Schema, prefix = ''): string[] {
  const object = resolved(node);
  const names: string[] = [];
  for (const [key, child] of Object.entries(object.properties ?? {})) {
    const name = `${prefix}${key}`;
    const inner = resolved(child);
    names.push(name);
    if (inner.properties) names.push(...fieldNames(inner, `${name}.`));
    else if (inner.items && resolved(inner.items).properties) names.push(...fieldNames(resolved(inner.items), `${name}[].`));
  }
  return names;
}

/** The schema file stem of a method: Host.getJobs -> host-get-jobs. */
function stem(method: string): string {
  return method.replace('.', '-').replace(/([a-z0-9])([A-Z])/g, '$1-$2').toLowerCase();
}

/** The methods that the params schemas define, by their titles ("params of SDM.merge"). */
function schemaMethods(): string[] {
  return readdirSync(new URL('schemas/', PACKAGE_ROOT))
    .filter((f) => /^rpc-params-.*\.schema\.json$/.test(f))
    .map((f) => {
      const method = /^params of (\S+)$/.exec(schema(f).title ?? '')?.[1];
      if (!method) throw new Error(`${f}: its title does not say "params of METHOD"`);
      expect(f, `the file name of ${method}'s params`).to.equal(`rpc-params-${stem(method)}.schema.json`);
      return method;
    })
    .sort();
}

/** The error codes of src/errors.ts, read from its ErrorCode type. */
export function errorCodesOfSource(): ErrorCode[] {
  const text = readFileSync(new URL('src/errors.ts', PACKAGE_ROOT), 'utf8');
  const union = /export type ErrorCode =([^;]*);/.exec(text)?.[1] ?? '';
  return [...union.matchAll(/'([a-z0-9-]+)'/g)].map((m) => m[1] as ErrorCode);
}

/** The names in the first column of the page's tables whose first header cell is `header`. */
function firstColumn(text: string, header: string): string[] {
  return tables(text)
    .filter((t) => t.header[0] === header)
    .flatMap((t) => t.rows.flatMap((row) => codeNames(row[0] ?? '')));
}

describe('documentation: the agent API page against the schemas and the error sources', () => {
  const page = readPage('docs/agent-api.md');
  const methodsSection = sectionOf(page, 'methods');
  const documented = [...methodsSection.matchAll(/^### `([A-Za-z]+\.[A-Za-z0-9]+)`\s*$/gm)].map((m) => m[1] ?? '').sort();
  const methods = schemaMethods();

  it('names every method that the schemas and the agent define, and no other', () => {
    expect(Object.keys(agentMethods({} as AgentServices)).sort(), "the agent's method table against schemas/rpc-params-*").to.deep.equal(methods);
    expect(documented, 'the ### headings under ## Methods').to.deep.equal(methods);
  });

  it("lists each method's params as its schema has them, nested ones dotted", () => {
    for (const method of methods) {
      const section = sectionOf(page, githubSlug(`\`${method}\``));
      const fromSchema = fieldNames(schema(`rpc-params-${stem(method)}.schema.json`)).sort();
      const onPage = firstColumn(section, 'param').sort();
      expect(onPage, `${method}: the params table against rpc-params-${stem(method)}.schema.json`).to.deep.equal(fromSchema);
    }
  });

  it("gives each method's result as its schema has it (true where the method has no result schema)", () => {
    const jobStatus = fieldNames(schema('rpc-job-status.schema.json')).sort();
    for (const method of methods) {
      const section = sectionOf(page, githubSlug(`\`${method}\``));
      const file = `rpc-result-${stem(method)}.schema.json`;
      const onPage = firstColumn(section, 'result field').sort();
      let result: Schema | undefined;
      try {
        result = schema(file);
      } catch {
        result = undefined;
      }
      if (result === undefined || result.const === true) {
        expect(onPage, `${method} answers true: no result table`).to.deep.equal([]);
        expect(section, `${method}: says its result is true`).to.match(/result: `true`|returns `true`/i);
      } else if (typeof result.additionalProperties === 'object') {
        expect(fieldNames(result.additionalProperties), `${method}: a map of job statuses`).to.deep.equal(fieldNames(schema('rpc-job-status.schema.json')));
        expect(section, `${method}: points at the job status table`).to.include('(#job-status)');
      } else {
        expect(onPage, `${method}: the result table against ${file}`).to.deep.equal(fieldNames(result).sort());
      }
    }
    const statusTable = firstColumn(sectionOf(page, 'job-status'), 'field').sort();
    expect(statusTable, 'the job status table against rpc-job-status.schema.json').to.deep.equal(jobStatus);
  });

  it('lists every error code with its number, as src/errors.ts and src/agent/rpc-errors.ts define them, and no other', () => {
    const table = tables(sectionOf(page, 'errors')).find((t) => t.header[0] === 'code');
    expect(table, 'the error table under ### Errors').to.not.equal(undefined);
    const rows = (table?.rows ?? []).map((row) => ({ number: Number(row[0]), names: codeNames(row[1] ?? '') }));
    const codes = errorCodesOfSource();
    expect(codes.length, 'error codes read from src/errors.ts').to.be.above(20);
    // The protocol's codes, and the two string codes the request layer answers with them (src/agent/rpc.ts).
    const protocol = new Map<number, string[]>([
      [RPC.parseError, []],
      [RPC.invalidRequest, []],
      [RPC.methodNotFound, []],
      [RPC.invalidParams, ['usage']],
      [RPC.internalError, ['internal']],
      [RPC.unauthorized, []],
    ]);
    const known = new Set<number>([...protocol.keys(), ...Object.values(VDSM_CODES), ...Object.values(VOLMERGE_CODES), GENERAL_APPLICATION_CODE]);
    for (const row of rows) {
      expect(known.has(row.number), `code ${row.number} on the page is one the agent sends`).to.equal(true);
      for (const name of row.names) {
        expect(codes, `${name} (code ${row.number}) is an error code of src/errors.ts`).to.include(name);
        const fits = applicationCode(name as ErrorCode) === row.number || (protocol.get(row.number) ?? []).includes(name);
        expect(fits, `${name} is sent as ${applicationCode(name as ErrorCode)}, not ${row.number}`).to.equal(true);
      }
    }
    for (const number of known) expect(rows.map((r) => r.number), `code ${number} is on the page`).to.include(number);
    for (const code of codes) {
      const number = applicationCode(code);
      expect(rows.some((r) => r.number === number && r.names.includes(code)), `${code} is on the page with ${number}`).to.equal(true);
    }
  });

  it("the CLI page's error list names every error code of src/errors.ts", () => {
    const section = sectionOf(readPage('docs/cli.md'), 'error-codes');
    for (const code of errorCodesOfSource()) expect(section, `docs/cli.md#error-codes names ${code}`).to.include(`\`${code}\``);
  });

  it('keeps the anchors other pages link to', () => {
    for (const anchor of ['running-the-agent', 'methods', 'sdmmerge', 'vmmerge', 'job-status', 'job-events', 'errors', 'the-engine-contract']) {
      expect([...anchorsOf(page)]).to.include(anchor);
    }
  });
});
