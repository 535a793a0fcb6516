/**
 * The Wyoming TCP server (node:net: uWebSockets.js has no raw TCP): one session per
 * connection, peers outside the allowed ranges disconnected at once (the protocol has no
 * authentication).
 */
import { createServer, type Server, type Socket } from 'node:net';

import { cidrContains, parseCidr, parseIp, type Cidr } from '../delivery/cidr.js';
import type { Logger } from '../log.js';
import { type SessionOptions, WyomingSession } from './session.js';

export interface WyomingServerOptions {
  host: string;
  /** 0: any free port (`port` says which once listening). */
  port: number;
  /** EARSHOT_WYOMING_CIDRS. */
  cidrs: readonly string[];
  session: SessionOptions;
  log: Logger;
}

export class WyomingServer {
  private server: Server | undefined;
  private readonly sessions = new Set<WyomingSession>();
  private readonly ranges: Cidr[];
  /** The bound port, once listening. */
  port: number | undefined;

  constructor(private readonly o: WyomingServerOptions) {
    this.ranges = o.cidrs.map(parseCidr);
  }

  /** Whether `address` (a peer's) lies in an allowed range: plain containment, loopback included when listed. */
  allows(address: string | undefined): boolean {
    const ip = address === undefined ? null : parseIp(address);
    return ip !== null && this.ranges.some((range) => cidrContains(range, ip));
  }

  async listen(): Promise<number> {
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.o.port, this.o.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => this.o.log.error('wyoming server error', { error: err }));
    const address = server.address();
    this.port = typeof address === 'object' && address ? address.port : this.o.port;
    return this.port;
  }

  private accept(socket: Socket): void {
    if (!this.allows(socket.remoteAddress)) {
      this.o.log.info('wyoming peer refused (not in EARSHOT_WYOMING_CIDRS)', { peer: socket.remoteAddress });
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const session = new WyomingSession(socket, this.o.session);
    this.sessions.add(session);
    void session.closed.then(() => this.sessions.delete(session));
  }

  /** Stops accepting, closes every open session and waits until each cleaned up after itself. */
  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    const sessions = [...this.sessions];
    for (const session of sessions) session.destroy();
    await Promise.all([closed, ...sessions.map((s) => s.closed)]);
  }
}
