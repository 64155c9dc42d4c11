// GET /events on the real agent: one text/event-stream event per job transition carrying the job's view, to several
// clients at once on the unix socket and on TLS; a client that goes away is dropped; the token guards it as it guards /rpc.
import { expect } from 'chai';
import { writeFile } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';
import { RpcClient } from '../../src/agent/client.js';
import { validatorFor } from '../../src/schema.js';
import { until } from '../helpers/wait.js';
import { AgentProcess, AgentWorkspace, freshAgentWorkspaceEachTest, mergeParams } from '../helpers/agent-harness.js';
import { pkiOf, tlsAddressOf, tlsClient, tlsListenArgs } from '../helpers/agent-tls-harness.js';

const MiB = 1024 * 1024;
const TOKEN = 'e7e7e7e7'.repeat(4);

/** One server-sent event as received. */
interface ReceivedEvent {
  id: string;
  event: string;
  data: string;
}

/** A client of GET /events that collects what arrives. */
class EventStream {
  readonly events: ReceivedEvent[] = [];
  ended = false;
  private buffered = '';
  private constructor(
    private readonly client: RpcClient,
    readonly response: IncomingMessage,
  ) {
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => this.take(chunk));
    response.on('end', () => (this.ended = true));
    response.on('error', () => (this.ended = true));
  }

  /** Opens the stream and resolves once the agent has answered with its headers (from then on, no transition is missed). */
  static open(client: RpcClient): Promise<EventStream> {
    return new Promise((resolve, reject) => {
      const req = client.request({ method: 'GET', path: '/events' }, (res) => resolve(new EventStream(client, res)));
      req.on('error', reject);
      req.end();
    });
  }

  /** The job views received for one job, parsed. */
  views(jobId: string): Record<string, unknown>[] {
    return this.events.filter((e) => e.event === `|jobs|status|${jobId}`).map((e) => JSON.parse(e.data) as Record<string, unknown>);
  }

  /** Goes away: the connection is cut. */
  close(): void {
    this.response.destroy();
    this.client.close();
  }

  private take(chunk: string): void {
    this.buffered += chunk;
    let end: number;
    while ((end = this.buffered.indexOf('\n\n')) >= 0) {
      const block = this.buffered.slice(0, end);
      this.buffered = this.buffered.slice(end + 2);
      const fields: Record<string, string> = {};
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(': ');
        if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 2);
      }
      if (fields.event) this.events.push({ id: fields.id ?? '', event: fields.event, data: fields.data ?? '' });
    }
  }
}

describe('agent: job events on GET /events', function () {
  this.timeout(120_000);
  let workspace: AgentWorkspace;
  freshAgentWorkspaceEachTest((fresh) => (workspace = fresh));

  it('sends every transition with the job view to several clients, unix socket and TLS, and drops a client that goes away', async () => {
    const tokenFile = join(workspace.dir, 'token');
    await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    const pki = await pkiOf(workspace);
    const agent = await AgentProcess.start(workspace, tlsListenArgs(pki, tokenFile));
    const address = tlsAddressOf(agent);
    const first = await EventStream.open(new RpcClient({ socketPath: workspace.socket }));
    const second = await EventStream.open(new RpcClient({ socketPath: workspace.socket }));
    const overTls = await EventStream.open(await tlsClient(address, pki, pki.client, TOKEN));
    for (const stream of [first, second, overTls]) {
      expect(stream.response.statusCode).to.equal(200);
      expect(stream.response.headers['content-type']).to.match(/^text\/event-stream/);
    }

    const chain = await workspace.chain({ virtualSize: '64M', topDataMiB: 2 });
    const params = mergeParams(chain);
    await agent.client.result('SDM.merge', params);
    await agent.finished(params.job_id);
    const validJob = validatorFor('rpc-job-status.schema.json');
    for (const [name, stream] of Object.entries({ first, second, overTls })) {
      await until(() => stream.views(params.job_id).some((v) => v.status === 'done'), `${name}: the done event`);
      const views = stream.views(params.job_id);
      expect(views.map((v) => v.status), name).to.deep.equal(['pending', 'running', 'done']);
      for (const view of views) expect(validJob(view), `${name}: ${JSON.stringify(view)}`).to.equal(true);
      const raw = stream.events.filter((e) => e.event === `|jobs|status|${params.job_id}`).map((e) => e.data);
      expect(raw[0], 'pending: progress written as a float').to.contain('"progress":0.0');
      expect(raw[2], 'done: progress written as a float').to.contain('"progress":100.0');
      const ids = stream.events.map((e) => Number(e.id));
      expect(ids, 'event ids count up').to.deep.equal([...ids].sort((a, b) => a - b));
    }

    second.close();
    await until(() => agent.logLines().some((l) => String(l.message).startsWith('events: a client went away (2 left)')), 'the agent dropping the client');
    const seenBySecond = second.events.length;
    const next = mergeParams(await workspace.chain({ virtualSize: '64M', topDataMiB: 1 }));
    await agent.client.result('SDM.merge', next);
    await agent.finished(next.job_id);
    for (const stream of [first, overTls]) await until(() => stream.views(next.job_id).some((v) => v.status === 'done'), 'the second job done');
    expect(second.events).to.have.length(seenBySecond);

    await agent.stop();
    await until(() => first.ended && overTls.ended, 'the streams ending when the agent stops');
    first.close();
    overTls.close();
  });

  it('sends an abort in progress as running with aborting: true, then aborted', async () => {
    const agent = await AgentProcess.start(workspace, [], { VOLMERGE_TEST_COMMIT_RATE: String(8 * MiB) });
    const stream = await EventStream.open(new RpcClient({ socketPath: workspace.socket }));
    try {
      const params = mergeParams(await workspace.chain({ virtualSize: '64M', topDataMiB: 64 }));
      await agent.client.result('SDM.merge', params);
      await agent.waitFor(params.job_id, (j) => j.step === 'commit' && j.progress > 0);
      await agent.client.result('Job.abort', { job_id: params.job_id });
      await until(() => stream.views(params.job_id).some((v) => v.status === 'aborted'), 'the aborted event', 30_000);
      const views = stream.views(params.job_id);
      expect(views.map((v) => [v.status, v.aborting ?? false])).to.deep.equal([
        ['pending', false],
        ['running', false],
        ['running', true],
        ['aborted', false],
      ]);
      expect(views[3]?.error).to.deep.include({ code: 3128, name: 'aborted' });
    } finally {
      stream.close();
    }
  });

  it('asks for the token on TLS as /rpc does, and answers only GET', async () => {
    const tokenFile = join(workspace.dir, 'token');
    await writeFile(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
    const pki = await pkiOf(workspace);
    const agent = await AgentProcess.start(workspace, tlsListenArgs(pki, tokenFile));
    const noToken = await EventStream.open(await tlsClient(tlsAddressOf(agent), pki, pki.client));
    expect(noToken.response.statusCode).to.equal(401);
    noToken.close();
    const unix = new RpcClient({ socketPath: workspace.socket });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = unix.request({ method: 'POST', path: '/events' }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
      expect(status).to.equal(405);
    } finally {
      unix.close();
    }
  });
});
