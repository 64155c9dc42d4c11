// Job events for clients of GET /events (text/event-stream): one event per job transition, named after vdsm's topic
// |jobs|status|<job id> and carrying the job's view, so that an engine need not poll Host.getJobs.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { log } from '../log.js';
import type { JobStatusView } from './job-view.js';
import { toJsonText } from './json-text.js';

/** A client whose unsent events pass this many bytes is too slow to follow: it is dropped. */
const MAX_BUFFERED_BYTES = 1024 * 1024;
/** A comment line goes to every client this often, so that a connection whose peer vanished is noticed and dropped. */
const KEEPALIVE_MS = 15_000;

/** The open event streams: publish() writes to each; a client that goes away is dropped. */
export class EventHub {
  private readonly clients = new Set<ServerResponse>();
  private sequence = 0;
  private keepalive: NodeJS.Timeout | undefined;

  /** How many clients are listening now. */
  get size(): number {
    return this.clients.size;
  }

  /** Answers GET /events: sends the stream's headers and keeps the response open until the client leaves. */
  attach(req: IncomingMessage, res: ServerResponse): void {
    // Connection: close, so that the connection ends with the stream (when the agent stops) instead of idling in keep-alive.
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'close' });
    res.write(': volmerge job events\n\n');
    this.clients.add(res);
    const drop = (): void => this.drop(res, 'went away');
    req.socket.once('close', drop);
    res.once('close', drop);
    res.on('error', () => undefined);
    this.keepalive ??= setInterval(() => this.broadcast(': keep-alive\n\n'), KEEPALIVE_MS).unref();
    log.info(`events: a client is listening (${this.clients.size} in all)`, { eventClients: this.clients.size });
  }

  /** Sends one job's new state to every client. */
  publish(view: JobStatusView): void {
    if (this.clients.size === 0) return;
    this.sequence += 1;
    this.broadcast(`id: ${this.sequence}\nevent: |jobs|status|${view.id}\ndata: ${toJsonText(view)}\n\n`);
  }

  /** Ends every stream (the agent is stopping). */
  close(): void {
    for (const res of [...this.clients]) {
      this.drop(res, 'closed by the agent stopping');
      res.end();
    }
  }

  private broadcast(text: string): void {
    for (const res of [...this.clients]) {
      res.write(text);
      if (res.writableLength > MAX_BUFFERED_BYTES) {
        this.drop(res, `did not read ${res.writableLength} bytes of events`);
        res.destroy();
      }
    }
  }

  private drop(res: ServerResponse, why: string): void {
    if (!this.clients.delete(res)) return;
    if (this.clients.size === 0) {
      clearInterval(this.keepalive);
      this.keepalive = undefined;
    }
    log.info(`events: a client ${why} (${this.clients.size} left)`, { eventClients: this.clients.size });
  }
}
