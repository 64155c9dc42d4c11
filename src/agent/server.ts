// HTTP transport of the agent: POST /rpc on a unix socket (mode 0600), and on TCP only with a bearer token.
import { createHash, timingSafeEqual } from 'node:crypto';
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import { VolmergeError } from '../errors.js';
import { log } from '../log.js';
import { rpcError, RPC } from './rpc-errors.js';

/** Requests with a bigger body are refused (HTTP 413, JSON-RPC -32600). */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/** Past this many bytes an oversized body is no longer drained: the connection is cut. */
const DRAIN_LIMIT_FACTOR = 16;

/** Where and how to serve. */
export interface ServeOptions {
  socketPath: string;
  /** TCP address; needs a token. */
  tcp?: { host: string; port: number; token: string };
  maxBodyBytes?: number;
  /** Handles one body; returns the response text, or undefined for no response (notifications). */
  handle: (body: string) => Promise<string | undefined>;
}

/** The running listeners. */
export interface Listeners {
  /** The TCP address actually bound (port 0 picks one). */
  tcpAddress?: { host: string; port: number };
  /** Stops accepting, ends idle connections, waits for requests in flight, removes the socket file. */
  close(): Promise<void>;
}

function sendError(res: ServerResponse, httpStatus: number, code: number, message: string, headers: Record<string, string> = {}): void {
  const body = JSON.stringify({ jsonrpc: '2.0', id: null, error: rpcError(code, message) });
  res.writeHead(httpStatus, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

/** Whether an Authorization header carries the token (compared in constant time). */
export function hasBearerToken(header: string | undefined, token: string): boolean {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  if (!match?.[1]) return false;
  const digest = (text: string): Buffer => createHash('sha256').update(text).digest();
  return timingSafeEqual(digest(match[1]), digest(token));
}

/** The request handler shared by both listeners. */
function requestHandler(options: ServeOptions, token: string | undefined) {
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (token !== undefined && !hasBearerToken(req.headers.authorization, token)) {
      req.resume();
      sendError(res, 401, RPC.unauthorized, 'Unauthorized: send Authorization: Bearer <token> (the agent\'s --token-file)', {
        'WWW-Authenticate': 'Bearer',
      });
      return;
    }
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/rpc') {
      req.resume();
      sendError(res, 404, RPC.invalidRequest, `Invalid Request: the agent serves POST /rpc only, not ${(req.url ?? '').slice(0, 100)}`);
      return;
    }
    if (req.method !== 'POST') {
      req.resume();
      sendError(res, 405, RPC.invalidRequest, `Invalid Request: use POST /rpc, not ${req.method ?? '?'}`, { Allow: 'POST' });
      return;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    req.on('data', (chunk: Buffer) => {
      received += chunk.length;
      if (received <= maxBody) chunks.push(chunk);
      else if (received > maxBody * DRAIN_LIMIT_FACTOR) req.destroy();
    });
    req.on('end', () => {
      if (received > maxBody) {
        sendError(res, 413, RPC.invalidRequest, `Invalid Request: the body is over the limit of ${maxBody} bytes`, { Connection: 'close' });
        return;
      }
      const started = process.hrtime.bigint();
      options
        .handle(Buffer.concat(chunks).toString('utf8'))
        .then((body) => {
          if (body === undefined) {
            res.writeHead(204).end();
          } else {
            res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }).end(body);
          }
          log.debug(`rpc: answered in ${Number(process.hrtime.bigint() - started) / 1e6} ms`);
        })
        .catch((error: unknown) => {
          log.error(`rpc: ${(error as Error).message}`);
          sendError(res, 500, RPC.internalError, 'Internal error');
        });
    });
    req.on('error', () => undefined);
  };
}

/** Whether something answers on a unix socket (a live agent) or not (a stale socket file). */
async function socketIsLive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

/** Removes a stale socket file; refuses when another agent answers there or the path is not a socket. */
async function clearSocketPath(path: string): Promise<void> {
  let facts;
  try {
    facts = await lstat(path);
  } catch {
    return;
  }
  if (!facts.isSocket()) throw new VolmergeError('usage', `--socket ${path} exists and is not a socket; choose another path`);
  if (await socketIsLive(path)) throw new VolmergeError('busy', `another agent is serving on ${path}; stop it first`);
  await unlink(path);
}

async function listen(server: Server, target: string | { host: string; port: number }): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const done = (): void => {
      server.off('error', reject);
      resolve();
    };
    if (typeof target === 'string') server.listen(target, done);
    else server.listen(target.port, target.host, done);
  });
}

async function closeServer(server: Server): Promise<void> {
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  await closed;
}

/** Starts the unix-socket listener (and TCP when asked); the socket file is created with mode 0600. */
export async function serve(options: ServeOptions): Promise<Listeners> {
  await mkdir(dirname(options.socketPath), { recursive: true, mode: 0o755 });
  await clearSocketPath(options.socketPath);
  const unixServer = createServer(requestHandler(options, undefined));
  const previousUmask = process.umask(0o177);
  try {
    await listen(unixServer, options.socketPath);
  } finally {
    process.umask(previousUmask);
  }
  await chmod(options.socketPath, 0o600);
  const servers = [unixServer];
  let tcpAddress: Listeners['tcpAddress'];
  if (options.tcp) {
    const tcpServer = createServer(requestHandler(options, options.tcp.token));
    try {
      await listen(tcpServer, options.tcp);
    } catch (error) {
      await closeServer(unixServer);
      await unlink(options.socketPath).catch(() => undefined);
      throw new VolmergeError('usage', `cannot listen on ${options.tcp.host}:${options.tcp.port}: ${(error as Error).message}`);
    }
    const bound = tcpServer.address() as AddressInfo;
    tcpAddress = { host: bound.address, port: bound.port };
    servers.push(tcpServer);
  }
  return {
    ...(tcpAddress ? { tcpAddress } : {}),
    close: async () => {
      await Promise.all(servers.map(closeServer));
      await unlink(options.socketPath).catch(() => undefined);
    },
  };
}
