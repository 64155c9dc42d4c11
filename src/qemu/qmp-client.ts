// A client of a running VM's QMP monitor (a unix socket that qemu listens on): connect, negotiate capabilities, run
// commands (errors become QmpCommandError), check query results against a schema, and wait for events.
import { connect } from 'node:net';
import { VolmergeError } from '../errors.js';
import { checkAgainst } from '../schema.js';
import { QmpChannel, type QmpEvent } from './qmp-channel.js';

/** One QMP event (the channel's type, for callers of this client). */
export type { QmpEvent } from './qmp-channel.js';

/** How long qemu has to greet: a monitor serves one client at a time, and a second one waits unanswered. */
const GREETING_TIMEOUT_MS = 10_000;

/** A command that qemu answered with an error: its QMP error class and description. */
export class QmpCommandError extends VolmergeError {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly desc: string,
    peer: string,
  ) {
    super('qemu-failed', `${peer}: ${command} failed: ${desc}`);
  }
}

/** A negotiated connection to one QMP monitor. */
export class QmpClient {
  private constructor(
    private readonly channel: QmpChannel,
    /** The socket path, for messages. */
    readonly socketPath: string,
  ) {}

  /**
   * Connects to the QMP socket at path, waits for qemu's greeting and negotiates capabilities. Fails with a clear
   * error when nothing listens there, or when qemu does not greet (another client holds the monitor).
   */
  static async connect(path: string, options: { signal?: AbortSignal; greetingTimeoutMs?: number } = {}): Promise<QmpClient> {
    const peer = `QMP socket ${path}`;
    const socket = connect(path);
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', (error: NodeJS.ErrnoException) => {
        const hint = error.code === 'ENOENT' || error.code === 'ECONNREFUSED' ? ': is the VM running, and is this its QMP socket?' : '';
        reject(new VolmergeError('not-found', `${peer}: cannot connect (${error.code ?? error.message})${hint}`));
      });
    });
    const channel = new QmpChannel({ input: socket, output: socket, destroy: () => socket.destroy() }, peer);
    const limit = options.greetingTimeoutMs ?? GREETING_TIMEOUT_MS;
    let timer: NodeJS.Timeout | undefined;
    const silent = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new VolmergeError('busy', `${peer}: qemu did not greet within ${limit} ms; another client probably holds this monitor (it serves one at a time)`)),
        limit,
      );
    });
    const abort = abortPromise(options.signal, `connecting to ${peer}`);
    try {
      await Promise.race([channel.greetingMessage(), silent, abort.promise]);
      const client = new QmpClient(channel, path);
      await client.call('qmp_capabilities');
      return client;
    } catch (error) {
      channel.close();
      throw error;
    } finally {
      clearTimeout(timer);
      abort.dispose();
    }
  }

  /** What the other end is called in messages. */
  get peer(): string {
    return this.channel.peer;
  }

  /** Runs a command; resolves with its return value, throws QmpCommandError when qemu answers with an error. */
  async call(execute: string, args?: Record<string, unknown>): Promise<unknown> {
    const reply = await this.channel.execute(args ? { execute, arguments: args } : { execute });
    if ('error' in reply) throw new QmpCommandError(execute, reply.error.class, reply.error.desc, this.peer);
    return reply.return;
  }

  /** Runs a query and checks its return value against schemas/SCHEMA before returning it typed. */
  async query<T>(execute: string, schemaFile: string, args?: Record<string, unknown>): Promise<T> {
    return checkAgainst<T>(schemaFile, await this.call(execute, args), `${this.peer} (${execute})`);
  }

  /** Calls listener with every event from now on; returns the function that stops it. */
  onEvent(listener: (event: QmpEvent) => void): () => void {
    return this.channel.onEvent(listener);
  }

  /**
   * Resolves when wake() says so: it is called once at once (the caller's probe, after the listener is in place, so no
   * event can slip between probe and wait) and again after each event, and at least every pollMs.
   */
  async waitFor<T>(wake: (event?: QmpEvent) => Promise<T | undefined>, options: { signal?: AbortSignal; pollMs?: number; what: string }): Promise<T> {
    let nudge: (() => void) | undefined;
    const pending: (QmpEvent | undefined)[] = [];
    const stop = this.onEvent((event) => {
      pending.push(event);
      nudge?.();
    });
    const abort = abortPromise(options.signal, `waiting for ${options.what}`);
    try {
      pending.push(undefined);
      for (;;) {
        while (pending.length > 0) {
          const outcome = await wake(pending.shift());
          if (outcome !== undefined) return outcome;
        }
        if (this.channel.ended) throw this.channel.ended;
        let timer: NodeJS.Timeout | undefined;
        const woken = new Promise<void>((resolve) => {
          nudge = resolve;
          timer = setTimeout(() => {
            pending.push(undefined);
            resolve();
          }, options.pollMs ?? 1000);
        });
        await Promise.race([woken, abort.promise]).finally(() => clearTimeout(timer));
      }
    } finally {
      stop();
      abort.dispose();
    }
  }

  /** Closes the connection; the monitor is then free for its next client. */
  close(): void {
    this.channel.close();
  }
}

/** A promise that rejects with an 'aborted' error when signal aborts, and the function that stops listening. */
function abortPromise(signal: AbortSignal | undefined, what: string): { promise: Promise<never>; dispose(): void } {
  let onAbort: (() => void) | undefined;
  const promise = new Promise<never>((_, reject) => {
    const fail = (): void => reject(signal?.reason instanceof VolmergeError ? signal.reason : new VolmergeError('aborted', `aborted while ${what}`));
    if (signal?.aborted) fail();
    onAbort = fail;
    signal?.addEventListener('abort', fail, { once: true });
  });
  promise.catch(() => undefined);
  return { promise, dispose: () => onAbort && signal?.removeEventListener('abort', onAbort) };
}
