// One QMP connection over a socket: qemu's greeting, commands sent with ids and matched to their replies, and events
// handed to listeners. Every line is parsed and checked against schemas/qmp-message.schema.json (events also against
// qmp-event.schema.json) before anything believes it; a line that fails ends the connection.
import type { Readable, Writable } from 'node:stream';
import { VolmergeError } from '../errors.js';
import { checkAgainst } from '../schema.js';

/** One QMP command. */
export interface QmpCommand {
  execute: string;
  arguments?: Record<string, unknown>;
}

/** QMP's answer to one command. */
export type QmpReply = { return: unknown } | { error: { class: string; desc: string } };

/** One QMP event. */
export interface QmpEvent {
  event: string;
  data: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}

/** The greeting qemu sends first on a QMP socket. */
export interface QmpGreeting {
  QMP: { version: { qemu: { major: number; minor: number; micro: number }; package?: string }; capabilities: string[] };
}

type Message = QmpGreeting | (QmpReply & { id?: string }) | QmpEvent;

/** What a channel runs over: a socket (input and output alike), or a daemon's stdout and stdin. */
export interface QmpTransport {
  input: Readable;
  output: Writable;
  /** Ends the connection (destroys the socket, or the pipes). */
  destroy(): void;
}

/** A QMP connection; peer names the other end in every error ("qemu-storage-daemon", "QMP socket /run/vm.qmp"). */
export class QmpChannel {
  private buffer = '';
  private greeted: { resolve(greeting: QmpGreeting): void; reject(error: Error): void } | undefined;
  private readonly greeting: Promise<QmpGreeting>;
  private readonly waiting = new Map<string, { resolve(reply: QmpReply): void; reject(error: Error): void }>();
  private readonly listeners = new Set<(event: QmpEvent) => void>();
  private sent = 0;
  private failure: Error | undefined;

  constructor(
    private readonly transport: QmpTransport,
    readonly peer: string,
  ) {
    this.greeting = new Promise<QmpGreeting>((resolve, reject) => (this.greeted = { resolve, reject }));
    this.greeting.catch(() => undefined);
    const { input, output } = transport;
    input.setEncoding('utf8');
    input.on('data', (chunk: string) => this.receive(chunk));
    let cause: Error | undefined;
    input.on('error', (error) => (cause = error));
    if ((output as unknown) !== input) output.on('error', (error) => (cause = error));
    input.once('close', () => this.fail(new VolmergeError('qemu-failed', `${peer} hung up${cause ? ` (${cause.message})` : ''}`)));
  }

  /** The error that ended the connection, if it has ended. */
  get ended(): Error | undefined {
    return this.failure;
  }

  /** qemu's greeting (the first message). */
  greetingMessage(): Promise<QmpGreeting> {
    return this.greeting;
  }

  /** Sends one command with a fresh id and resolves with its reply (success or error alike). */
  execute(command: QmpCommand): Promise<QmpReply> {
    if (this.failure) return Promise.reject(this.failure);
    this.sent += 1;
    // A short id: qemu reads its monitor one byte per main-loop turn (about 13 us a byte here), so bytes cost time.
    const id = String(this.sent);
    const reply = new Promise<QmpReply>((resolve, reject) => this.waiting.set(id, { resolve, reject }));
    this.transport.output.write(`${JSON.stringify({ ...command, id })}\n`);
    return reply;
  }

  /** Calls listener with every event from now on; returns the function that stops it. */
  onEvent(listener: (event: QmpEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Closes the connection (qemu then serves the next client of this socket). */
  close(): void {
    this.transport.destroy();
    this.fail(new VolmergeError('qemu-failed', `${this.peer}: connection closed`));
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    for (let end = this.buffer.indexOf('\n'); end >= 0 && !this.failure; end = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, end).trim();
      this.buffer = this.buffer.slice(end + 1);
      if (line) this.dispatch(line);
    }
  }

  private dispatch(line: string): void {
    let message: Message;
    try {
      message = checkAgainst<Message>('qmp-message.schema.json', JSON.parse(line), this.peer);
      if ('event' in message) checkAgainst('qmp-event.schema.json', message, `${this.peer} (event ${message.event})`);
    } catch (error) {
      const reason = error instanceof VolmergeError ? error.message : `${this.peer} sent a QMP line that is not JSON: ${line.slice(0, 200)}`;
      this.transport.destroy();
      this.fail(new VolmergeError('bad-output', reason));
      return;
    }
    if ('QMP' in message) this.greeted?.resolve(message);
    else if ('event' in message) this.deliver({ ...message, data: message.data ?? {} });
    else this.answer(message);
  }

  private deliver(event: QmpEvent): void {
    for (const listener of [...this.listeners]) listener(event);
  }

  private answer(reply: QmpReply & { id?: string }): void {
    // A reply without an id answers a line qemu could not parse: the oldest command still waiting.
    const id = reply.id ?? this.waiting.keys().next().value;
    const waiter = id === undefined ? undefined : this.waiting.get(id);
    if (!waiter || id === undefined) return;
    this.waiting.delete(id);
    waiter.resolve('error' in reply ? { error: reply.error } : { return: reply.return });
  }

  private fail(error: Error): void {
    this.failure ??= error;
    this.greeted?.reject(this.failure);
    for (const waiter of this.waiting.values()) waiter.reject(this.failure);
    this.waiting.clear();
  }
}
