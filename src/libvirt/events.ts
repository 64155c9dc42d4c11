// libvirt's events of one domain (`virsh event --loop`), only to wake a wait early: a client that subscribes after a
// libvirtd restart misses what happened meanwhile, so the live XML and the job's raw info stay the truth. The stream
// starts again by itself when virsh ends (libvirtd restarted), until it is stopped.
import { log } from '../log.js';
import { startLineProcess, type LineProcess } from '../os/line-process.js';
import { connectArgs, type DomainRef } from './virsh.js';

/** One event: its name ('block-job-2', 'block-threshold', 'lifecycle') and the text after the domain's name. */
export interface DomainEvent {
  name: string;
  detail: string;
}

/** Parses one line of `virsh event`; undefined for other lines (counts, blank lines). */
export function parseEventLine(line: string): DomainEvent | undefined {
  const match = /^(?:\S+ \S+: )?event '([^']+)' for domain '.*?': (.*)$/.exec(line.trim());
  return match?.[1] !== undefined && match[2] !== undefined ? { name: match[1], detail: match[2] } : undefined;
}

/** A block-threshold event's layer (`vda[3]`), or undefined for other events. */
export function thresholdLayer(event: DomainEvent): string | undefined {
  if (event.name !== 'block-threshold') return undefined;
  return /^dev: (\S+?\[\d+\])/.exec(event.detail)?.[1];
}

/** A running subscription to a domain's events. */
export class DomainEvents {
  private process: LineProcess | undefined;
  private stopped = false;
  private readonly listeners = new Set<(event: DomainEvent) => void>();

  private constructor(private readonly ref: DomainRef) {}

  /** Subscribes to the domain's events (returns at once; the stream may take a moment to begin). */
  static start(ref: DomainRef): DomainEvents {
    const events = new DomainEvents(ref);
    events.spawn();
    return events;
  }

  private spawn(): void {
    if (this.stopped) return;
    const argv = ['virsh', '-q', ...connectArgs(this.ref.uri), 'event', '--domain', this.ref.domain, '--loop', '--all'];
    const running = startLineProcess(argv, (line) => {
      const event = parseEventLine(line);
      if (!event) return;
      log.debug(`libvirt event: ${event.name}: ${event.detail}`);
      for (const listener of [...this.listeners]) listener(event);
    });
    this.process = running;
    void running.ended.then(() => {
      if (this.stopped || this.process !== running) return;
      // libvirtd went away (restart): subscribe again after a second, and wake the waits so that they look.
      for (const listener of [...this.listeners]) listener({ name: 'stream-ended', detail: '' });
      setTimeout(() => this.spawn(), 1000).unref();
    });
  }

  /** Calls listener with every event until the returned function is called. */
  subscribe(listener: (event: DomainEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Resolves at the next event, after ms, or when signal aborts, whichever comes first. */
  wake(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        unsubscribe();
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      const unsubscribe = this.subscribe(done);
      signal?.addEventListener('abort', done, { once: true });
    });
  }

  /** Ends the stream. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.listeners.clear();
    await this.process?.stop();
  }
}
