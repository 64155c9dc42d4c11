// A JSON-RPC client of the agent: over node:http on its unix socket, or over node:https on TCP with a client certificate
// (and a bearer token, when the agent asks for one).
import { Agent, request, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { Agent as TlsAgent, request as tlsRequest } from 'node:https';
import { VolmergeError } from '../errors.js';
import { describeErrors, validatorFor } from '../schema.js';
import type { RpcResponse } from './rpc.js';
import { MIN_TLS_VERSION, type TlsMaterial } from './tls.js';

/** Where the agent is: its unix socket, or its TLS listener (this client's certificate and key, and the CA of the agent's). */
export type RpcTarget = { socketPath: string } | { host: string; port: number; tls: TlsMaterial; token?: string };

/** What the HTTP exchange returned. */
export interface HttpReply {
  status: number;
  body: string;
}

/** A client with one keep-alive connection pool; close() when done. */
export class RpcClient {
  // With a timeout set, node drops an idle pooled connection a second before the server's Keep-Alive timeout, so a request
  // is never sent on a connection that the server is closing (which would fail with ECONNRESET).
  private readonly pool: Agent;
  private nextId = 1;
  constructor(
    private readonly target: RpcTarget,
    private readonly timeoutMs = 30_000,
  ) {
    const pooling = { keepAlive: true, maxSockets: 4, timeout: 60_000 };
    this.pool = 'tls' in target ? new TlsAgent({ ...pooling, ...target.tls, minVersion: MIN_TLS_VERSION }) : new Agent(pooling);
  }

  /** Starts an HTTP request to the agent (https on TCP), on the pooled connections. */
  request(options: RequestOptions, onResponse: (res: IncomingMessage) => void): ClientRequest {
    const where = 'socketPath' in this.target ? { socketPath: this.target.socketPath } : { host: this.target.host, port: this.target.port };
    const auth = 'token' in this.target && this.target.token ? { Authorization: `Bearer ${this.target.token}` } : {};
    const full = { ...where, agent: this.pool, ...options, headers: { ...auth, ...options.headers } };
    return 'tls' in this.target ? tlsRequest(full, onResponse) : request(full, onResponse);
  }

  /** Sends a raw body to POST /rpc and returns the HTTP status and body as they are. */
  async post(body: string | Buffer, headers: Record<string, string> = {}): Promise<HttpReply> {
    return new Promise((resolve, reject) => {
      const req = this.request(
        {
          method: 'POST',
          path: '/rpc',
          timeout: this.timeoutMs,
          headers: { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`no answer within ${this.timeoutMs} ms`)));
      req.on('error', (error) => reject(new VolmergeError('not-found', `cannot reach the agent at ${describeTarget(this.target)}: ${error.message}`)));
      req.end(body);
    });
  }

  /** Calls one method and returns its response (result or error), checked against rpc-response.schema.json. */
  async call(method: string, params?: unknown): Promise<RpcResponse> {
    const id = this.nextId++;
    const reply = await this.post(JSON.stringify({ jsonrpc: '2.0', method, id, ...(params === undefined ? {} : { params }) }));
    return parseResponse(reply);
  }

  /** Calls one method and returns its result; an error response throws a VolmergeError carrying its message. */
  async result<T = unknown>(method: string, params?: unknown): Promise<T> {
    const response = await this.call(method, params);
    if ('error' in response) throw new VolmergeError('usage', `${method}: ${response.error.message} (code ${response.error.code})`);
    return response.result as T;
  }

  /** Closes the pooled connections. */
  close(): void {
    this.pool.destroy();
  }
}

/** Parses one response body and checks it against the schema. */
export function parseResponse(reply: HttpReply): RpcResponse {
  let data: unknown;
  try {
    data = JSON.parse(reply.body);
  } catch {
    throw new VolmergeError('bad-output', `the agent answered HTTP ${reply.status} with a body that is not JSON: ${reply.body.slice(0, 200)}`);
  }
  const validate = validatorFor<RpcResponse>('rpc-response.schema.json');
  if (!validate(data)) throw new VolmergeError('bad-output', `the agent's answer does not match rpc-response.schema.json: ${describeErrors(validate.errors)}`);
  return data;
}

/** A target for messages. */
export function describeTarget(target: RpcTarget): string {
  return 'socketPath' in target ? target.socketPath : `${target.host}:${target.port}`;
}

/** Parses HOST:PORT (IPv6 in brackets: [::1]:8000). */
export function parseHostPort(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  const host = match?.[1] ?? match?.[2];
  if (!match || !host || !Number.isInteger(port) || port > 65535) throw new VolmergeError('usage', `"${text}" is not HOST:PORT (e.g. 127.0.0.1:8441 or [::1]:8441)`);
  return { host, port };
}
