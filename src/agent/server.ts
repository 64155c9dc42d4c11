// The agent's listeners: a unix socket (mode 0600), and on TCP only TLS with a client certificate signed by the given CA.
// Both serve the same routes (http-routes.ts); on TLS a refused handshake never reaches them.
import { chmod, lstat, mkdir, unlink } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { connect, type AddressInfo } from 'node:net';
import { dirname } from 'node:path';
import { VolmergeError } from '../errors.js';
import { log } from '../log.js';
import { EventHub } from './events.js';
import { requestHandler } from './http-routes.js';
import { MIN_TLS_VERSION, type TlsMaterial } from './tls.js';

/** The TCP listener: TLS with this certificate and key, clients' certificates checked against ca; a token on top if given. */
export interface TlsListen extends TlsMaterial {
  host: string;
  port: number;
  token?: string;
}

/** Where and how to serve. */
export interface ServeOptions {
  socketPath: string;
  tls?: TlsListen;
  maxBodyBytes?: number;
  /** Handles one body; returns the response text, or undefined for no response (notifications). */
  handle: (body: string) => Promise<string | undefined>;
  /** The job event streams of GET /events (a new hub when not given). */
  events?: EventHub;
}

/** The running listeners. */
export interface Listeners {
  /** The TLS address actually bound (port 0 picks one). */
  tlsAddress?: { host: string; port: number };
  /** Stops accepting, ends event streams and idle connections, waits for requests in flight, removes the socket file. */
  close(): Promise<void>;
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

/** The TLS server: TLS 1.2 or newer, a client certificate required and checked against the CA during the handshake. */
function tlsServer(tls: TlsListen, routes: Parameters<typeof requestHandler>[0]): Server {
  const server = createTlsServer(
    { cert: tls.cert, key: tls.key, ca: tls.ca, requestCert: true, rejectUnauthorized: true, minVersion: MIN_TLS_VERSION },
    requestHandler(routes, tls.token),
  );
  // A certificate that fails the check ends the connection before any request is read; node names the reason in
  // authorizationError (CERT_HAS_EXPIRED, UNABLE_TO_VERIFY_LEAF_SIGNATURE, ...), and the address is gone by then.
  server.on('tlsClientError', (error, socket) => {
    const reason = socket.authorizationError ? String(socket.authorizationError) : ((error as { reason?: string }).reason ?? error.message.trim());
    const from = socket.remoteAddress ? ` from ${socket.remoteAddress}` : '';
    log.warn(`tls: refused a connection${from}: ${reason}`, { tlsRefused: reason });
  });
  return server;
}

/** Starts the unix-socket listener (and TLS when asked); the socket file is created with mode 0600. */
export async function serve(options: ServeOptions): Promise<Listeners> {
  const events = options.events ?? new EventHub();
  const routes = { handle: options.handle, events, ...(options.maxBodyBytes ? { maxBodyBytes: options.maxBodyBytes } : {}) };
  await mkdir(dirname(options.socketPath), { recursive: true, mode: 0o755 });
  await clearSocketPath(options.socketPath);
  const unixServer = createServer(requestHandler(routes, undefined));
  const previousUmask = process.umask(0o177);
  try {
    await listen(unixServer, options.socketPath);
  } finally {
    process.umask(previousUmask);
  }
  await chmod(options.socketPath, 0o600);
  const servers: Server[] = [unixServer];
  let tlsAddress: Listeners['tlsAddress'];
  if (options.tls) {
    const server = tlsServer(options.tls, routes);
    try {
      await listen(server, options.tls);
    } catch (error) {
      await closeServer(unixServer);
      await unlink(options.socketPath).catch(() => undefined);
      throw new VolmergeError('usage', `cannot listen on ${options.tls.host}:${options.tls.port}: ${(error as Error).message}`);
    }
    const bound = server.address() as AddressInfo;
    tlsAddress = { host: bound.address, port: bound.port };
    servers.push(server);
  }
  return {
    ...(tlsAddress ? { tlsAddress } : {}),
    close: async () => {
      const closing = servers.map(closeServer);
      events.close();
      await Promise.all(closing);
      await unlink(options.socketPath).catch(() => undefined);
    },
  };
}
