// The agent's HTTP routes, the same on every listener: POST /rpc (JSON-RPC) and GET /events (job events), each behind
// the bearer token when the listener has one.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { log } from '../log.js';
import type { EventHub } from './events.js';
import { rpcError, RPC } from './rpc-errors.js';

/** Requests with a bigger body are refused (HTTP 413, JSON-RPC -32600). */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/** Past this many bytes an oversized body is no longer drained: the connection is cut. */
const DRAIN_LIMIT_FACTOR = 16;

/** What the routes serve. */
export interface RouteOptions {
  /** Handles one JSON-RPC body; returns the response text, or undefined for no response (notifications). */
  handle: (body: string) => Promise<string | undefined>;
  events: EventHub;
  maxBodyBytes?: number;
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

/** Reads a POST /rpc body (up to the limit) and answers it. */
function serveRpc(req: IncomingMessage, res: ServerResponse, options: RouteOptions): void {
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
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
        if (body === undefined) res.writeHead(204).end();
        else res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) }).end(body);
        log.debug(`rpc: answered in ${Number(process.hrtime.bigint() - started) / 1e6} ms`);
      })
      .catch((error: unknown) => {
        log.error(`rpc: ${(error as Error).message}`);
        sendError(res, 500, RPC.internalError, 'Internal error');
      });
  });
  req.on('error', () => undefined);
}

/** The request handler of one listener; token: the bearer token its requests must carry, if any. */
export function requestHandler(options: RouteOptions, token: string | undefined) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (token !== undefined && !hasBearerToken(req.headers.authorization, token)) {
      req.resume();
      sendError(res, 401, RPC.unauthorized, "Unauthorized: send Authorization: Bearer <token> (the agent's --token-file)", { 'WWW-Authenticate': 'Bearer' });
      return;
    }
    const path = (req.url ?? '').split('?')[0];
    const verb = path === '/rpc' ? 'POST' : path === '/events' ? 'GET' : undefined;
    if (verb === undefined) {
      req.resume();
      sendError(res, 404, RPC.invalidRequest, `Invalid Request: the agent serves POST /rpc and GET /events only, not ${(req.url ?? '').slice(0, 100)}`);
      return;
    }
    if (req.method !== verb) {
      req.resume();
      sendError(res, 405, RPC.invalidRequest, `Invalid Request: use ${verb} ${path}, not ${req.method ?? '?'}`, { Allow: verb });
      return;
    }
    if (path === '/events') options.events.attach(req, res);
    else serveRpc(req, res, options);
  };
}
