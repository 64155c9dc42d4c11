// JSON-RPC 2.0 handling of one body: parse and envelope errors, methods, params checked by schema, notifications, batches.
import { expect } from 'chai';
import { handleBody, type MethodTable } from '../../src/agent/rpc.js';
import { hasBearerToken } from '../../src/agent/http-routes.js';
import { VolmergeError } from '../../src/errors.js';
import { log } from '../../src/log.js';

const JOB = '3fa85f64-5717-4562-b3fc-2c963f66afa6';
const calls: unknown[] = [];
const methods: MethodTable = {
  'Job.abort': {
    paramsSchema: 'rpc-params-job-abort.schema.json',
    handler: async (params) => {
      calls.push(params);
      if (params.job_id === '00000000-0000-0000-0000-000000000000') throw new VolmergeError('no-such-job', 'no job 0');
      if (params.job_id === '00000000-0000-0000-0000-000000000001') throw new VolmergeError('usage', 'bad thing');
      if (params.job_id === '00000000-0000-0000-0000-000000000002') throw new Error('boom');
      return true;
    },
  },
  'Job.delete': {
    paramsSchema: 'rpc-params-job-delete.schema.json',
    handler: async (params) => {
      calls.push(params);
      return true;
    },
  },
  'Host.getJobs': {
    paramsSchema: 'rpc-params-host-get-jobs.schema.json',
    handler: async (params) => {
      calls.push(params);
      return {};
    },
  },
};

async function answer(body: string): Promise<unknown> {
  const text = await handleBody(body, methods);
  return text === undefined ? undefined : JSON.parse(text);
}

describe('agent JSON-RPC handling', () => {
  before(() => {
    log.silent = true;
  });
  after(() => {
    log.silent = false;
  });
  beforeEach(() => {
    calls.length = 0;
  });

  it('answers a call with its result and id', async () => {
    expect(await answer(JSON.stringify({ jsonrpc: '2.0', method: 'Job.abort', params: { job_id: JOB }, id: 'a1' }))).to.deep.equal({
      jsonrpc: '2.0',
      id: 'a1',
      result: true,
    });
  });

  it('answers malformed JSON with -32700 and id null', async () => {
    const reply = (await answer('{"jsonrpc": "2.0", "method"')) as { id: null; error: { code: number } };
    expect(reply.id).to.equal(null);
    expect(reply.error.code).to.equal(-32700);
  });

  it('answers a bad envelope with -32600, echoing a usable id', async () => {
    for (const body of [{ jsonrpc: '1.0', method: 'Job.abort', id: 3 }, { method: 'Job.abort', id: 3 }, { jsonrpc: '2.0', id: 3 }, { jsonrpc: '2.0', method: 1, id: 3 }]) {
      expect(await answer(JSON.stringify(body))).to.deep.include({ id: 3 }).and.to.have.nested.property('error.code', -32600);
    }
    expect(await answer('"just a string"')).to.have.nested.property('error.code', -32600);
    expect(await answer(JSON.stringify({ jsonrpc: '2.0', method: 'Job.abort', id: { no: 1 } }))).to.deep.include({ id: null });
    expect(calls).to.deep.equal([]);
  });

  it('answers an unknown method with -32601, prototype names included', async () => {
    for (const method of ['Nope.nope', 'toString', '__proto__', 'constructor']) {
      expect(await answer(JSON.stringify({ jsonrpc: '2.0', method, id: 1 })), method).to.have.nested.property('error.code', -32601);
    }
  });

  it('answers params that break the schema, or come as a list, with -32602 before the handler runs', async () => {
    for (const params of [{}, { job_id: '..' }, { job_id: JOB, extra: true }, [JOB]]) {
      const reply = await answer(JSON.stringify({ jsonrpc: '2.0', method: 'Job.abort', params, id: 1 }));
      expect(reply, JSON.stringify(params)).to.have.nested.property('error.code', -32602);
    }
    expect(calls).to.deep.equal([]);
  });

  it('takes the cli-PID-MS id of a recovered command-line merge in Job.abort, Job.delete and Host.getJobs, and no other non-UUID', async () => {
    const cliJob = 'cli-16740-1795325462845';
    for (const method of ['Job.abort', 'Job.delete']) {
      const reply = await answer(JSON.stringify({ jsonrpc: '2.0', method, params: { job_id: cliJob }, id: 1 }));
      expect(reply, method).to.not.have.property('error');
    }
    const listed = await answer(JSON.stringify({ jsonrpc: '2.0', method: 'Host.getJobs', params: { job_ids: [cliJob, JOB] }, id: 2 }));
    expect(listed).to.not.have.property('error');
    expect(calls.length, 'every handler ran').to.equal(3);
    for (const id of ['cli-x', 'cli-1-2-3', 'cli--1', 'agent-1-2', `cli-1-${'9'.repeat(17)}`]) {
      const reply = await answer(JSON.stringify({ jsonrpc: '2.0', method: 'Job.abort', params: { job_id: id }, id: 3 }));
      expect(reply, id).to.have.nested.property('error.code', -32602);
    }
    expect(calls.length, 'no handler ran for a refused id').to.equal(3);
  });

  it('maps volmerge errors to application codes with their name, usage to -32602, anything else to -32603', async () => {
    const call = (id: string): Promise<unknown> => answer(JSON.stringify({ jsonrpc: '2.0', method: 'Job.abort', params: { job_id: id }, id: 1 }));
    expect(await call('00000000-0000-0000-0000-000000000000')).to.deep.include({ error: { code: 66, message: 'no job 0', data: { name: 'no-such-job' } } });
    expect(await call('00000000-0000-0000-0000-000000000001')).to.have.nested.property('error.code', -32602);
    expect(await call('00000000-0000-0000-0000-000000000002')).to.have.nested.property('error.code', -32603);
  });

  it('never answers a notification, even a failed one', async () => {
    expect(await answer(JSON.stringify({ jsonrpc: '2.0', method: 'Job.abort', params: { job_id: JOB } }))).to.equal(undefined);
    expect(await answer(JSON.stringify({ jsonrpc: '2.0', method: 'Nope' }))).to.equal(undefined);
    expect(calls).to.have.length(1);
  });

  it('answers a batch with one response per call, in order, and skips notifications', async () => {
    const batch = [
      { jsonrpc: '2.0', method: 'Job.abort', params: { job_id: JOB }, id: 1 },
      { jsonrpc: '2.0', method: 'Job.abort', params: { job_id: JOB } },
      { jsonrpc: '2.0', method: 'Nope', id: 2 },
      42,
      { jsonrpc: '2.0', method: 'Job.abort', params: { job_id: '..' }, id: 'x' },
    ];
    const replies = (await answer(JSON.stringify(batch))) as { id: unknown; result?: unknown; error?: { code: number } }[];
    expect(replies.map((r) => [r.id, r.error?.code ?? r.result])).to.deep.equal([
      [1, true],
      [2, -32601],
      [null, -32600],
      ['x', -32602],
    ]);
    expect(await answer('[]')).to.have.nested.property('error.code', -32600);
    expect(await answer(JSON.stringify([{ jsonrpc: '2.0', method: 'Job.abort', params: { job_id: JOB } }]))).to.equal(undefined);
  });

  it('checks bearer tokens exactly', () => {
    const token = 'a'.repeat(32);
    expect(hasBearerToken(`Bearer ${token}`, token)).to.equal(true);
    expect(hasBearerToken(`bearer ${token}`, token)).to.equal(true);
    expect(hasBearerToken(`Bearer ${token}x`, token)).to.equal(false);
    expect(hasBearerToken(`Basic ${token}`, token)).to.equal(false);
    expect(hasBearerToken(undefined, token)).to.equal(false);
    expect(hasBearerToken('Bearer ', token)).to.equal(false);
  });
});
