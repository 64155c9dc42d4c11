// TLS with client certificates on the agent's TCP listener, with a CA and certificates made by openssl at test time:
// no client certificate, one from another CA and an expired one are refused at the handshake, before any request reaches
// the RPC layer; the right one works, from the library and from `volmerge call`/`volmerge jobs`.
import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { request } from 'node:https';
import { serve, type Listeners } from '../../src/agent/server.js';
import { readTlsMaterial } from '../../src/agent/tls.js';
import { log } from '../../src/log.js';
import { volmerge } from '../helpers/cli.js';
import type { CertFiles } from '../helpers/certs.js';
import { until } from '../helpers/wait.js';
import { AgentProcess, AgentWorkspace, freshAgentWorkspaceEachTest } from '../helpers/agent-harness.js';
import { connectArgs, pkiOf, tlsAddressOf, tlsClient, tlsListenArgs } from '../helpers/agent-tls-harness.js';

/** A bare TLS 1.2 handshake: with 1.2 the client's handshake cannot finish before the server has accepted its certificate. */
async function handshake(port: number, ca: Buffer, client?: CertFiles): Promise<{ done: boolean; error?: string }> {
  const material = client ? { cert: await readFile(client.cert), key: await readFile(client.key) } : {};
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port, ca, ...material, maxVersion: 'TLSv1.2' });
    socket.once('secureConnect', () => {
      socket.end();
      resolve({ done: true });
    });
    socket.once('error', (error) => resolve({ done: false, error: error.message }));
  });
}

/** POST /rpc over https with the client's default TLS version (1.3): 'answered HTTP n', or 'refused: <error>'. */
async function httpsPing(port: number, ca: Buffer, client?: CertFiles): Promise<string> {
  const material = client ? { cert: await readFile(client.cert), key: await readFile(client.key) } : {};
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, ca, ...material, method: 'POST', path: '/rpc', agent: false }, (res) => {
      res.resume();
      resolve(`answered HTTP ${res.statusCode}`);
    });
    req.on('error', (error) => resolve(`refused: ${error.message}`));
    req.end('{"jsonrpc":"2.0","method":"Host.ping","id":1}');
  });
}

describe('agent: TLS with client certificates', function () {
  this.timeout(120_000);
  let workspace: AgentWorkspace;
  freshAgentWorkspaceEachTest((fresh) => (workspace = fresh));

  it('refuses no client certificate, another CA and an expired one at the handshake; nothing reaches the RPC layer; the right one works', async () => {
    const pki = await pkiOf(workspace);
    const caText = await readFile(pki.ca);
    const handled: string[] = [];
    log.silent = true;
    let listeners: Listeners | undefined;
    try {
      listeners = await serve({
        socketPath: join(workspace.dir, 'spy.sock'),
        tls: { host: '127.0.0.1', port: 0, ...(await readTlsMaterial({ cert: pki.agent.cert, key: pki.agent.key, ca: pki.ca })) },
        handle: async (body) => {
          handled.push(body);
          return '{"jsonrpc":"2.0","id":1,"result":true}';
        },
      });
      const address = listeners.tlsAddress ?? expect.fail('no TLS address');
      const refused: Record<string, CertFiles | undefined> = { 'no certificate': undefined, 'another CA': pki.otherCaClient, expired: pki.expiredClient };
      for (const [what, client] of Object.entries(refused)) {
        const outcome = await handshake(address.port, caText, client);
        expect(outcome.done, `${what}: the TLS 1.2 handshake completed`).to.equal(false);
        expect(outcome.error, what).to.be.a('string');
        // The client's default (TLS 1.3) fails too, and its request never arrives.
        expect(await httpsPing(address.port, caText, client), what).to.match(/^refused: /);
      }
      expect(handled, 'no request reached the RPC layer').to.deep.equal([]);

      expect((await handshake(address.port, caText, pki.client)).done).to.equal(true);
      const good = await tlsClient(address, pki, pki.client);
      try {
        expect(await good.result('Host.ping')).to.equal(true);
      } finally {
        good.close();
      }
      expect(handled).to.have.length(1);
    } finally {
      await listeners?.close();
      log.silent = false;
    }
  });

  it('serves volmerge call and jobs with the right certificate, refuses the others, and logs each refused handshake', async () => {
    const pki = await pkiOf(workspace);
    const agent = await AgentProcess.start(workspace, tlsListenArgs(pki));
    const address = tlsAddressOf(agent);
    const ping = await volmerge(['call', 'Host.ping2', ...connectArgs(address, pki)]);
    expect(ping.exitCode, ping.stderr).to.equal(0);
    expect(ping.stdout.trim()).to.equal('true');
    const jobs = await volmerge(['jobs', ...connectArgs(address, pki)]);
    expect(jobs.exitCode, jobs.stderr).to.equal(0);
    expect(jobs.stdout.trim()).to.equal('no jobs');

    for (const client of [pki.otherCaClient, pki.expiredClient]) {
      const refused = await volmerge(['call', 'Host.ping', ...connectArgs(address, pki, client)]);
      expect(refused.exitCode, client.cert).to.equal(1);
      expect(refused.stderr).to.match(/cannot reach the agent at 127\.0\.0\.1:\d+/);
    }
    const refusals = (): string[] => agent.logLines().filter((l) => String(l.message).startsWith('tls: refused a connection')).map((l) => String(l.tlsRefused));
    await until(() => refusals().length >= 2, 'two refusals in the log');
    expect(refusals()).to.include.members(['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_HAS_EXPIRED']);

    const plain = await new Promise<string>((resolve) => {
      // A plain-HTTP request on the TLS port is not served either.
      void import('node:http').then(({ request }) => {
        const req = request({ host: address.host, port: address.port, method: 'POST', path: '/rpc' }, (res) => resolve(`HTTP ${res.statusCode}`));
        req.on('error', (error) => resolve(error.message));
        req.end('{"jsonrpc":"2.0","method":"Host.ping","id":1}');
      });
    });
    expect(plain).not.to.match(/^HTTP 200/);
  });

  it('refuses --listen without TLS files, and mismatched or unreadable ones, with one clear line', async () => {
    const pki = await pkiOf(workspace);
    const base = ['agent', '--socket', workspace.socket, '--state-dir', workspace.stateDir];
    const noTls = await volmerge([...base, '--listen', '127.0.0.1:0']);
    expect(noTls.exitCode).to.equal(2);
    expect(noTls.stderr).to.contain('--listen needs --tls-cert, --tls-key and --tls-ca');
    const tokenOnly = await volmerge([...base, '--token-file', join(workspace.dir, 'token')]);
    expect(tokenOnly.exitCode).to.equal(2);
    expect(tokenOnly.stderr).to.contain('go with --listen');
    const wrongKey = await volmerge([...base, '--listen', '127.0.0.1:0', '--tls-cert', pki.agent.cert, '--tls-key', pki.client.key, '--tls-ca', pki.ca]);
    expect(wrongKey.exitCode).to.equal(1);
    expect(wrongKey.stderr).to.match(/agent cannot start: --tls-cert .* the key the certificate's own/);
    const missing = await volmerge([...base, '--listen', '127.0.0.1:0', '--tls-cert', join(workspace.dir, 'nope.pem'), '--tls-key', pki.agent.key, '--tls-ca', pki.ca]);
    expect(missing.exitCode).to.equal(1);
    expect(missing.stderr).to.match(/--tls-cert .*nope\.pem: ENOENT/);
    const client = await volmerge(['call', 'Host.ping', '--connect', '127.0.0.1:1']);
    expect(client.exitCode).to.equal(2);
    expect(client.stderr).to.contain('--connect needs --tls-cert, --tls-key and --tls-ca');
  });
});
