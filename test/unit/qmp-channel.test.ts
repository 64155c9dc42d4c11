// QmpChannel against a scripted peer on a unix socket: what qemu itself never sends (lines that are not JSON or not
// QMP, replies out of order) and how a hang-up ends the commands still waiting. Real qemu is in the live suites.
import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { QmpChannel, type QmpEvent } from '../../src/qemu/qmp-channel.js';

const GREETING = { QMP: { version: { qemu: { major: 7, minor: 2, micro: 22 } }, capabilities: ['oob'] } };

describe('QmpChannel', () => {
  let dir: string;
  let server: Server;
  let peer: Socket;
  let channel: QmpChannel;
  const received: Record<string, unknown>[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'volmerge-qmp-unit-'));
    const path = join(dir, 'qmp.sock');
    server = createServer();
    const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
    await new Promise<void>((resolve) => server.listen(path, resolve));
    const socket = connect(path);
    peer = await accepted;
    peer.setEncoding('utf8');
    received.length = 0;
    peer.on('data', (chunk: string) => chunk.split('\n').filter(Boolean).forEach((line) => received.push(JSON.parse(line) as Record<string, unknown>)));
    channel = new QmpChannel({ input: socket, output: socket, destroy: () => socket.destroy() }, 'QMP socket test');
    peer.write(`${JSON.stringify(GREETING)}\n`);
    await channel.greetingMessage();
  });
  afterEach(async () => {
    channel.close();
    peer.destroy();
    server.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** Waits until the peer has received n commands. */
  async function commands(n: number): Promise<Record<string, unknown>[]> {
    while (received.length < n) await new Promise((resolve) => setTimeout(resolve, 2));
    return received;
  }

  it('matches replies to commands by id, whatever their order, and hands events to listeners', async () => {
    const events: QmpEvent[] = [];
    channel.onEvent((event) => events.push(event));
    const first = channel.execute({ execute: 'query-status' });
    const second = channel.execute({ execute: 'query-jobs' });
    const [a, b] = await commands(2);
    expect(a).to.deep.equal({ execute: 'query-status', id: '1' });
    peer.write(`${JSON.stringify({ event: 'STOP', timestamp: { seconds: 1, microseconds: 2 } })}\n`);
    peer.write(`${JSON.stringify({ return: [], id: b?.id })}\n${JSON.stringify({ error: { class: 'GenericError', desc: 'no' }, id: a?.id })}\n`);
    expect(await second).to.deep.equal({ return: [] });
    expect(await first).to.deep.equal({ error: { class: 'GenericError', desc: 'no' } });
    expect(events.map((event) => [event.event, event.data])).to.deep.equal([['STOP', {}]]);
  });

  it('ends the connection on a line that is not JSON with a bad-output error naming the peer; later commands fail at once', async () => {
    const waiting = channel.execute({ execute: 'query-status' });
    peer.write('{"return": \n');
    const error = await waiting.then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(error?.code).to.equal('bad-output');
    expect(error?.message).to.contain('QMP socket test sent a QMP line that is not JSON');
    await channel.execute({ execute: 'x' }).then(
      () => expect.fail('the channel should have ended'),
      (e: unknown) => expect((e as Error).message).to.contain('not JSON'),
    );
  });

  it('refuses an event whose data does not have the shape volmerge acts on', async () => {
    const waiting = channel.execute({ execute: 'query-status' });
    peer.write(`${JSON.stringify({ event: 'BLOCK_WRITE_THRESHOLD', data: { 'node-name': 'b' }, timestamp: { seconds: 1, microseconds: 0 } })}\n`);
    const error = await waiting.then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(error?.code).to.equal('bad-output');
    expect(error?.message).to.contain('event BLOCK_WRITE_THRESHOLD').and.to.contain('qmp-event.schema.json');
  });

  it('fails the commands still waiting when the peer hangs up', async () => {
    const waiting = channel.execute({ execute: 'query-status' });
    await commands(1);
    peer.destroy();
    const error = await waiting.then(
      () => undefined,
      (e: unknown) => e as Error & { code?: string },
    );
    expect(error?.code).to.equal('qemu-failed');
    expect(error?.message).to.equal('QMP socket test hung up');
  });
});
