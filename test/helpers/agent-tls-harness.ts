// Test harness for the agent's TLS listener: the certificates of a workspace, the agent's flags, and clients with a
// chosen certificate.
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RpcClient } from '../../src/agent/client.js';
import { makeTestPki, type CertFiles, type TestPki } from './certs.js';
import type { AgentProcess, AgentWorkspace } from './agent-harness.js';

const made = new Map<string, Promise<TestPki>>();

/** The workspace's CA and certificates (made with openssl on first use, in <workspace>/pki). */
export function pkiOf(workspace: AgentWorkspace): Promise<TestPki> {
  let pki = made.get(workspace.dir);
  if (!pki) {
    const dir = join(workspace.dir, 'pki');
    pki = mkdir(dir).then(() => makeTestPki(dir));
    made.set(workspace.dir, pki);
  }
  return pki;
}

/** The agent's flags for a TLS listener on a free port of 127.0.0.1 (and a bearer token on top when given). */
export function tlsListenArgs(pki: TestPki, tokenFile?: string): string[] {
  return [
    '--listen', '127.0.0.1:0', '--tls-cert', pki.agent.cert, '--tls-key', pki.agent.key, '--tls-ca', pki.ca,
    ...(tokenFile ? ['--token-file', tokenFile] : []),
  ];
}

/** Where the agent's TLS listener is, from its 'agent serving' log line. */
export function tlsAddressOf(agent: AgentProcess): { host: string; port: number } {
  const serving = agent.logLines().find((l) => l.message === 'agent serving');
  const [host, port] = String(serving?.tls).split(':');
  if (!host || !port) throw new Error(`the agent logged no TLS address: ${agent.stderr}`);
  return { host, port: Number(port) };
}

/** The client flags of `volmerge call`/`jobs` for a certificate pair. */
export function connectArgs(address: { host: string; port: number }, pki: TestPki, client: CertFiles = pki.client): string[] {
  return ['--connect', `${address.host}:${address.port}`, '--tls-cert', client.cert, '--tls-key', client.key, '--tls-ca', pki.ca];
}

/** A JSON-RPC client on the TLS listener with this certificate (the agent's own CA checks the agent's certificate). */
export async function tlsClient(address: { host: string; port: number }, pki: TestPki, client: CertFiles = pki.client, token?: string): Promise<RpcClient> {
  const tls = { cert: await readFile(client.cert), key: await readFile(client.key), ca: await readFile(pki.ca) };
  return new RpcClient({ ...address, tls, ...(token ? { token } : {}) }, 10_000);
}
