// Test helper: a TCP listener on 127.0.0.1 that counts and drops every connection, to prove nothing tried to reach a
// network address written into an image header (nbd://, http://, ssh://), without ever reaching a real network.
import { createServer, type AddressInfo, type Server } from 'node:net';

/** A local port that records connection attempts and closes each at once. */
export class TcpSentinel {
  private readonly seen = { connections: 0 };
  private readonly server: Server;
  private constructor() {
    this.server = createServer((socket) => {
      this.seen.connections += 1;
      socket.destroy();
    });
  }

  /** Listens on a free port of 127.0.0.1. */
  static async listen(): Promise<TcpSentinel> {
    const sentinel = new TcpSentinel();
    await new Promise<void>((resolve, reject) => {
      sentinel.server.once('error', reject);
      sentinel.server.listen(0, '127.0.0.1', () => resolve());
    });
    return sentinel;
  }

  /** The port it listens on. */
  get port(): number {
    return (this.server.address() as AddressInfo).port;
  }

  /** How many connections were attempted so far. */
  get connections(): number {
    return this.seen.connections;
  }

  /** Stops listening. */
  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
