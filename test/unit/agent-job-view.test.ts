// A job as an engine written for vdsm reads it: vdsm's HostJobInfo field by field (id a UUID, status one of vdsm's five
// words, progress a float in the raw text, error vdsm's ErrorInfo with vdsm's numbers), and command-line job ids.
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { isCliJobId, tableJobId, uuidForCliJobId } from '../../src/agent/job-ids.js';
import { jobStatusView } from '../../src/agent/job-view.js';
import { agentMethods } from '../../src/agent/methods.js';
import { handleBody } from '../../src/agent/rpc.js';
import { applicationCode, VDSM_CODES, VOLMERGE_CODES } from '../../src/agent/rpc-errors.js';
import { VolmergeError, type ErrorCode } from '../../src/errors.js';
import { JobRegistry } from '../../src/agent/registry.js';
import type { JobContext, JobRecord } from '../../src/agent/registry-types.js';
import { log } from '../../src/log.js';
import { validatorFor } from '../../src/schema.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const CLI_ID = 'cli-16740-1795325462845';

/** vdsm's HostJobInfo and ErrorInfo as the README states them (lib/vdsm/api/vdsm-api.yml, the engine's GetHostJobsVDSCommand). */
function expectVdsmHostJobInfo(job: Record<string, unknown>): void {
  expect(job.id, 'id: UUID').to.be.a('string').and.match(UUID);
  expect(job.job_type, 'job_type: HostJobType').to.be.oneOf(['storage', 'v2v']);
  expect(job.status, 'status: HostJobStatus').to.be.oneOf(['pending', 'running', 'done', 'aborted', 'failed']);
  expect(job.description, 'description: string').to.be.a('string');
  expect(job.progress, 'progress: a number from 0 to 100').to.be.a('number').within(0, 100);
  if ('error' in job) {
    const error = job.error as Record<string, unknown>;
    expect(Number.isInteger(error.code), 'error.code: int').to.equal(true);
    expect(error.message, 'error.message: string').to.be.a('string');
  }
}

const record = (overrides: Partial<JobRecord> = {}): JobRecord => ({
  id: randomUUID(),
  description: 'merge_subchain',
  status: 'running',
  progress: 42,
  volumes: [],
  createdAt: 0,
  ...overrides,
});

describe('agent job view (vdsm HostJobInfo)', () => {
  before(() => {
    log.silent = true;
  });
  after(() => {
    log.silent = false;
  });

  it('shows an abort in progress as running with aborting: true, and every other state as it is', () => {
    expect(jobStatusView(record({ status: 'aborting' }))).to.deep.include({ status: 'running', aborting: true });
    for (const status of ['pending', 'running', 'done', 'failed', 'aborted'] as const) {
      const view = jobStatusView(record({ status }));
      expect(view.status).to.equal(status);
      expect(view).not.to.have.property('aborting');
    }
  });

  it("gives an error vdsm's number where vdsm has the same error, volmerge's own in 3100-3199, and 100 otherwise", () => {
    const expected: Partial<Record<ErrorCode, number>> = {
      'vm-gone': 1,
      'no-such-job': 66,
      'job-not-finished': 68,
      'job-exists': 69,
      'job-not-active': 84,
      'generation-mismatch': 911,
      'not-in-image': 920,
      'bad-chain': 921,
      internal: 100,
    };
    expect(VDSM_CODES).to.deep.equal(expected);
    const ours = Object.values(VOLMERGE_CODES);
    expect(new Set(ours).size, 'no number is used twice').to.equal(ours.length);
    for (const code of ours) expect(code).to.be.within(3100, 3199);
    expect(applicationCode('usage')).to.equal(100);
    const view = jobStatusView(record({ status: 'failed', error: { code: 'generation-mismatch', message: 'base moved' } }));
    expect(view.error).to.deep.equal({ code: 911, message: 'base moved', name: 'generation-mismatch' });
  });

  it('turns a command-line journal id into the same UUID every time, and keeps UUIDs as they are', () => {
    const id = uuidForCliJobId(CLI_ID);
    expect(id).to.match(UUID);
    expect(id[14], 'version 5').to.equal('5');
    expect(id[19], 'RFC 4122 variant').to.be.oneOf(['8', '9', 'a', 'b']);
    expect(uuidForCliJobId(CLI_ID)).to.equal(id);
    expect(uuidForCliJobId('cli-16740-1795325462846')).not.to.equal(id);
    expect(tableJobId(CLI_ID)).to.equal(id);
    const engineId = randomUUID();
    expect(tableJobId(engineId)).to.equal(engineId);
    expect(isCliJobId(CLI_ID)).to.equal(true);
    expect(isCliJobId(engineId)).to.equal(false);
  });

  it('answers Host.getJobs with vdsm HostJobInfo records, progress written as a float, by UUID or by command-line id', async () => {
    const registry = new JobRegistry({ maxJobs: 1, finishedTtlMs: 60_000 });
    const methods = agentMethods({ registry, stateDir: '/nonexistent', version: 'test', readLv: async () => expect.fail('no LVM here') });
    const call = async (method: string, params: unknown): Promise<string> =>
      (await handleBody(JSON.stringify({ jsonrpc: '2.0', method, params, id: 1 }), methods)) ?? '';

    const doneId = randomUUID();
    registry.add({ id: doneId, description: 'merge_subchain', volumes: ['a'], work: async () => undefined });
    await registry.idle();
    let context: JobContext | undefined;
    const cliUuid = uuidForCliJobId(CLI_ID);
    registry.add({
      id: cliUuid,
      cliJobId: CLI_ID,
      description: 'merge_subchain',
      volumes: ['b'],
      work: (ctx) =>
        new Promise<void>((_resolve, reject) => {
          context = ctx;
          ctx.signal.addEventListener('abort', () => reject(new VolmergeError('aborted', 'stopped')));
        }),
    });
    const failedId = randomUUID();
    registry.addEnded({ id: failedId, description: 'merge_subchain', volumes: ['c'] }, { status: 'failed', error: { code: 'volume-deleted', message: 'top is gone' } });
    // A job that start-up recovery held as pending, then found finished by another run (its journal gone, generation moved).
    const elsewhereId = randomUUID();
    registry.hold({ id: elsewhereId, description: 'merge_subchain', volumes: ['d'] });
    registry.addEnded({ id: elsewhereId, description: 'merge_subchain', volumes: ['d'] }, { status: 'done', note: 'finished by another run: generation 4 -> 5' });
    await new Promise((resolve) => setImmediate(resolve));
    context?.progress(25);

    const text = await call('Host.getJobs', {});
    expect(text).to.contain(`"progress":100.0`).and.to.contain(`"progress":25.0`).and.to.contain(`"progress":0.0`);
    expect(text).not.to.match(/"progress":[0-9]+[,}]/);
    const jobs = (JSON.parse(text) as { result: Record<string, Record<string, unknown>> }).result;
    expect(validatorFor('rpc-result-host-get-jobs.schema.json')(jobs)).to.equal(true);
    expect(Object.keys(jobs).sort()).to.deep.equal([doneId, cliUuid, failedId, elsewhereId].sort());
    for (const [key, job] of Object.entries(jobs)) {
      expectVdsmHostJobInfo(job);
      expect(job.id).to.equal(key);
    }
    expect(jobs[cliUuid]).to.deep.include({ status: 'running', cli_job_id: CLI_ID });
    expect(jobs[failedId]?.error).to.deep.equal({ code: 3129, message: 'top is gone', name: 'volume-deleted' });
    expect(jobs[elsewhereId]).to.deep.include({ status: 'done', progress: 100, note: 'finished by another run: generation 4 -> 5' });
    expect(jobs[elsewhereId]).to.not.have.property('error');

    const byCliId = JSON.parse(await call('Host.getJobs', { job_ids: [CLI_ID] })) as { result: Record<string, unknown> };
    expect(Object.keys(byCliId.result)).to.deep.equal([cliUuid]);
    expect(JSON.parse(await call('Job.abort', { job_id: CLI_ID }))).to.have.property('result', true);
    await registry.idle();
    expect(registry.get(cliUuid)?.status).to.equal('aborted');
    expect(JSON.parse(await call('Job.delete', { job_id: CLI_ID }))).to.have.property('result', true);
    expect(registry.get(cliUuid)).to.equal(undefined);
    expect(JSON.parse(await call('Job.delete', { job_id: CLI_ID }))).to.have.nested.property('error.code', 66);
    const ping2 = JSON.parse(await call('Host.ping2', {})) as { result: unknown };
    expect(validatorFor('rpc-result-host-ping2.schema.json')(ping2.result)).to.equal(true);
    expect(ping2.result).to.equal(true);
  });
});
