// The real agent refusing bad requests: each gets the right JSON-RPC error, changes nothing, and the agent keeps serving.
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { access, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RpcClient } from '../../src/agent/client.js';
import { checksums } from '../helpers/cli.js';
import type { TestPki } from '../helpers/certs.js';
import { AgentProcess, AgentWorkspace, mergeParams, type DomainChain } from '../helpers/agent-harness.js';
import { pkiOf, tlsAddressOf, tlsClient, tlsListenArgs } from '../helpers/agent-tls-harness.js';

const TOKEN = 'c0ffee'.repeat(8);

describe('agent: refusals', function () {
  this.timeout(120_000);
  let workspace: AgentWorkspace;
  let agent: AgentProcess;
  let chain: DomainChain;
  let untouched: string[];
  let tcp: { host: string; port: number };
  let pki: TestPki;

  before(async () => {
    workspace = await AgentWorkspace.create();
    const tokenFile = join(workspace.dir, 'token');
    await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    pki = await pkiOf(workspace);
    agent = await AgentProcess.start(workspace, tlsListenArgs(pki, tokenFile));
    tcp = tlsAddressOf(agent);
    chain = await workspace.chain({ virtualSize: '64M', stale: 1, shared: ['shared'], topDataMiB: 2 });
    untouched = await checksums([chain.top, chain.base]);
  });
  after(async () => {
    expect(await agent.stop()).to.equal(0);
    await workspace.dispose();
  });

  /** After every refusal: the chain is as it was, no generation was written, no job was made, and the agent still answers. */
  afterEach(async () => {
    expect(await checksums([chain.top, chain.base])).to.deep.equal(untouched);
    await access(`${chain.base}.volmerge-gen`).then(
      () => expect.fail('a generation sidecar was written'),
      () => undefined,
    );
    const jobs = Object.values(await agent.jobs());
    expect(jobs.filter((j) => j.id !== DUPLICATE_ID)).to.deep.equal([]);
    expect(await agent.client.result('Host.ping')).to.have.property('name', 'volmerge');
  });

  const DUPLICATE_ID = randomUUID();

  it('refuses a job id in use, whatever the chain', async () => {
    const other = await workspace.chain({ virtualSize: '64M', topDataMiB: 1 });
    await agent.client.result('SDM.merge', mergeParams(other, DUPLICATE_ID));
    await agent.finished(DUPLICATE_ID);
    const reply = await agent.client.call('SDM.merge', mergeParams(chain, DUPLICATE_ID));
    expect(reply).to.have.nested.property('error.code', 69);
    expect(reply).to.have.nested.property('error.data.name', 'job-exists');
    expect(reply).to.have.nested.property('error.message').that.contains(DUPLICATE_ID);
  });

  it('refuses ids that are not UUIDs where UUIDs are due, with -32602', async () => {
    for (const params of [
      { ...mergeParams(chain), job_id: 'not-a-uuid' },
      mergeParams(chain, undefined, { img_id: '3fa85f64-5717-4562-b3fc-2c963f66afaZ' }),
      mergeParams(chain, undefined, { img_id: 'abc' }),
    ]) {
      const reply = await agent.client.call('SDM.merge', params);
      expect(reply, JSON.stringify(params)).to.have.nested.property('error.code', -32602);
    }
  });

  it('refuses path traversal, slashes and empty strings in every id, with -32602', async () => {
    for (const key of ['sd_id', 'img_id', 'top_id', 'base_id']) {
      for (const bad of ['..', '../..', '.', '', `../${chain.subchain.sd_id}`, 'images/x', '/etc/passwd', '..%2f']) {
        const reply = await agent.client.call('SDM.merge', mergeParams(chain, undefined, { [key]: bad }));
        expect(reply, `${key}=${JSON.stringify(bad)}`).to.have.nested.property('error.code', -32602);
      }
    }
    for (const params of [{ job_id: '../x' }, { job_id: '' }]) {
      expect(await agent.client.call('Job.abort', params)).to.have.nested.property('error.code', -32602);
      expect(await agent.client.call('Job.delete', params)).to.have.nested.property('error.code', -32602);
    }
  });

  it('refuses a base_generation that base is not at, with a mismatch error', async () => {
    const reply = await agent.client.call('SDM.merge', mergeParams(chain, undefined, { base_generation: 3 }));
    expect(reply).to.have.nested.property('error.code', 911);
    expect(reply).to.have.nested.property('error.data.name', 'generation-mismatch');
    expect(reply).to.have.nested.property('error.message').that.contains('is at generation 0, not 3');
  });

  it('refuses volumes that are not there, and unknown jobs', async () => {
    expect(await agent.client.call('SDM.merge', mergeParams(chain, undefined, { base_id: randomUUID() }))).to.have.nested.property('error.data.name', 'not-found');
    expect(await agent.client.call('Job.abort', { job_id: randomUUID() })).to.have.nested.property('error.code', 66);
    expect(await agent.client.call('Job.delete', { job_id: randomUUID() })).to.have.nested.property('error.code', 66);
  });

  it('answers unknown methods with -32601 and bad envelopes with -32600', async () => {
    expect(await agent.client.call('SDM.mergeAll', {})).to.have.nested.property('error.code', -32601);
    expect(await agent.client.call('Host.getJobs', [])).to.have.nested.property('error.code', -32602);
    const reply = await agent.client.post(JSON.stringify({ jsonrpc: '1.0', method: 'Host.ping', id: 7 }));
    expect(JSON.parse(reply.body)).to.deep.include({ id: 7 }).and.to.have.nested.property('error.code', -32600);
  });

  it('answers malformed JSON with -32700', async () => {
    for (const body of ['{"jsonrpc":"2.0","method":"SDM.merge","params":{', 'nope', '']) {
      const reply = await agent.client.post(body);
      expect(reply.status).to.equal(200);
      expect(JSON.parse(reply.body)).to.deep.include({ id: null }).and.to.have.nested.property('error.code', -32700);
    }
  });

  it('refuses a body over 1 MiB with HTTP 413 without parsing it', async () => {
    const huge = JSON.stringify({ jsonrpc: '2.0', method: 'SDM.merge', params: { ...mergeParams(chain), pad: 'x'.repeat(2 * 1024 * 1024) }, id: 1 });
    const oneShot = new RpcClient({ socketPath: workspace.socket });
    try {
      const reply = await oneShot.post(huge);
      expect(reply.status).to.equal(413);
      expect(JSON.parse(reply.body)).to.have.nested.property('error.code', -32600);
    } finally {
      oneShot.close();
    }
  });

  it('answers a batch with one response per call', async () => {
    const reply = await agent.client.post(
      JSON.stringify([
        { jsonrpc: '2.0', method: 'Host.ping', id: 1 },
        { jsonrpc: '2.0', method: 'Host.getJobs', params: { job_ids: [DUPLICATE_ID] }, id: 2 },
        { jsonrpc: '2.0', method: 'Nope', id: 3 },
        { jsonrpc: '2.0', method: 'Host.ping' },
      ]),
    );
    const answers = JSON.parse(reply.body) as { id: number; result?: unknown; error?: { code: number } }[];
    expect(answers.map((a) => a.id)).to.deep.equal([1, 2, 3]);
    expect(answers[0]?.result).to.have.property('version');
    expect(answers[1]?.result).to.have.property(DUPLICATE_ID);
    expect(answers[2]?.error?.code).to.equal(-32601);
  });

  it('on TLS with a token file, refuses requests without the right bearer token with HTTP 401, and serves those with it', async () => {
    for (const token of [undefined, 'wrong-token-wrong-token', `${TOKEN}x`]) {
      const client = await tlsClient(tcp, pki, pki.client, token);
      try {
        const reply = await client.post(JSON.stringify({ jsonrpc: '2.0', method: 'SDM.merge', params: mergeParams(chain), id: 1 }));
        expect(reply.status, String(token)).to.equal(401);
        expect(JSON.parse(reply.body)).to.have.nested.property('error.code', -32001);
      } finally {
        client.close();
      }
    }
    const authorized = await tlsClient(tcp, pki, pki.client, TOKEN);
    try {
      expect(await authorized.result('Host.ping')).to.have.property('name', 'volmerge');
    } finally {
      authorized.close();
    }
  });

  it('answers other paths and verbs with an HTTP error', async () => {
    const { request } = await import('node:http');
    const status = (method: string, path: string): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = request({ socketPath: workspace.socket, method, path }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
    expect(await status('GET', '/rpc')).to.equal(405);
    expect(await status('POST', '/events')).to.equal(405);
    expect(await status('POST', '/other')).to.equal(404);
  });
});
