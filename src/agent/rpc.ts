// JSON-RPC 2.0 over one request body: parse, check the envelope and params against schemas/, dispatch, batch.
import { VolmergeError } from '../errors.js';
import { log } from '../log.js';
import { describeErrors, validatorFor } from '../schema.js';
import { toJsonText } from './json-text.js';
import { applicationCode, rpcError, RPC, type RpcErrorObject } from './rpc-errors.js';

/** A request id as JSON-RPC allows it. */
export type RpcId = string | number | null;

/** One response. */
export type RpcResponse = { jsonrpc: '2.0'; id: RpcId; result: unknown } | { jsonrpc: '2.0'; id: RpcId; error: RpcErrorObject };

/** One method: the schema its params must match, and its handler. */
export interface RpcMethod {
  paramsSchema: string;
  handler: (params: Record<string, unknown>) => Promise<unknown>;
}

/** The methods a server offers, by name. */
export type MethodTable = Readonly<Record<string, RpcMethod>>;

interface RequestEnvelope {
  jsonrpc: '2.0';
  method: string;
  params?: Record<string, unknown> | unknown[];
  id?: RpcId;
}

function failure(id: RpcId, error: RpcErrorObject): RpcResponse {
  return { jsonrpc: '2.0', id, error };
}

/** The id to echo in an error about an invalid request: its own when it is of a valid type, null otherwise. */
function echoableId(raw: unknown): RpcId {
  if (typeof raw !== 'object' || raw === null || !('id' in raw)) return null;
  const { id } = raw as { id: unknown };
  return typeof id === 'string' || (typeof id === 'number' && Number.isInteger(id)) ? id : null;
}

/** Turns anything a handler threw into a JSON-RPC error: usage errors are bad params, the rest application errors. */
export function errorFor(thrown: unknown): RpcErrorObject {
  if (thrown instanceof VolmergeError) {
    if (thrown.code === 'usage') return rpcError(RPC.invalidParams, `Invalid params: ${thrown.message}`, thrown.code);
    return rpcError(applicationCode(thrown.code), thrown.message, thrown.code);
  }
  log.error(`internal error in a request: ${thrown instanceof Error ? (thrown.stack ?? thrown.message) : String(thrown)}`);
  return rpcError(RPC.internalError, `Internal error: ${thrown instanceof Error ? thrown.message : String(thrown)}`, 'internal');
}

/** Handles one parsed request; undefined for a notification (which never gets a response). */
export async function handleRequest(raw: unknown, methods: MethodTable): Promise<RpcResponse | undefined> {
  const validEnvelope = validatorFor<RequestEnvelope>('rpc-request.schema.json');
  if (!validEnvelope(raw)) {
    return failure(echoableId(raw), rpcError(RPC.invalidRequest, `Invalid Request: ${describeErrors(validEnvelope.errors)}`));
  }
  const isNotification = !('id' in raw);
  const id = raw.id ?? null;
  const response = await dispatch(raw, id, methods);
  return isNotification ? undefined : response;
}

async function dispatch(request: RequestEnvelope, id: RpcId, methods: MethodTable): Promise<RpcResponse> {
  const method = Object.hasOwn(methods, request.method) ? methods[request.method] : undefined;
  if (!method) return failure(id, rpcError(RPC.methodNotFound, `Method not found: ${request.method.slice(0, 128)}`));
  if (Array.isArray(request.params)) {
    return failure(id, rpcError(RPC.invalidParams, `Invalid params: ${request.method} takes named params (an object), not a list`));
  }
  const params = request.params ?? {};
  const validParams = validatorFor<Record<string, unknown>>(method.paramsSchema);
  if (!validParams(params)) {
    return failure(id, rpcError(RPC.invalidParams, `Invalid params of ${request.method}: ${describeErrors(validParams.errors)}`));
  }
  try {
    return { jsonrpc: '2.0', id, result: await method.handler(params) };
  } catch (thrown) {
    return failure(id, errorFor(thrown));
  }
}

/** Handles a whole body (one request or a batch) and returns the text to send back (floats with a decimal point), or undefined when nothing is due. */
export async function handleBody(body: string, methods: MethodTable): Promise<string | undefined> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (error) {
    return JSON.stringify(failure(null, rpcError(RPC.parseError, `Parse error: ${(error as Error).message}`)));
  }
  if (!Array.isArray(parsed)) {
    const response = await handleRequest(parsed, methods);
    return response ? toJsonText(response) : undefined;
  }
  if (parsed.length === 0) return JSON.stringify(failure(null, rpcError(RPC.invalidRequest, 'Invalid Request: an empty batch')));
  const responses: RpcResponse[] = [];
  for (const item of parsed) {
    const response = await handleRequest(item, methods);
    if (response) responses.push(response);
  }
  return responses.length > 0 ? toJsonText(responses) : undefined;
}
