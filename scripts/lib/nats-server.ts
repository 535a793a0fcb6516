// A real NATS broker with JetStream for the fleet's tests and benchmark: Debian's
// `nats-server` (NATS_SERVER names another binary), on loopback, its store in a temp dir.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** The nats-server to run: NATS_SERVER, else Debian's. */
export const natsServerBinary = (): string => process.env.NATS_SERVER ?? (process.platform === 'linux' ? '/usr/sbin/nats-server' : 'nats-server');

/** A free TCP port on loopback (bound, then released for the caller). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/**
 * A real `nats-server -js` (Debian's) on 127.0.0.1 and a free port, its JetStream store in
 * a temporary directory: stopped and removed when the test ends (`NatsServer.start(t)`) or
 * on `remove()` (`NatsServer.launch()`, the benchmarks). `stop()`/`start()` take it down
 * and bring it back on the same port with the same store (a broker restart); `kill()` is
 * SIGKILL.
 */
export class NatsServer {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  readonly storeDir = mkdtempSync(path.join(os.tmpdir(), 'earshot-nats-'));
  private output = '';

  private constructor(
    readonly port: number,
    /** More command-line options (`--auth TOKEN`, say). */
    private readonly extraArgs: string[] = [],
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  /** `port`: one chosen beforehand (a device pointed at it before it ran); by default a free one. */
  static async start(t: { teardown(fn: () => unknown): void }, port?: number, extraArgs: string[] = []): Promise<NatsServer> {
    const server = new NatsServer(port ?? (await freePort()), extraArgs);
    t.teardown(() => server.remove());
    await server.start();
    return server;
  }

  /** Started and running until `remove()` (which the caller owes, however it ends). */
  static async launch(port?: number, extraArgs: string[] = []): Promise<NatsServer> {
    const server = new NatsServer(port ?? (await freePort()), extraArgs);
    try {
      await server.start();
    } catch (err) {
      await server.remove();
      throw err;
    }
    return server;
  }

  /** `nats-server: v2.9.10` as the binary prints it; undefined when it does not run. */
  static version(): Promise<string | undefined> {
    return new Promise((resolve) => execFile(natsServerBinary(), ['--version'], (err, stdout) => resolve(err ? undefined : stdout.trim())));
  }

  /** Stops it and deletes its store. */
  async remove(): Promise<void> {
    await this.stop();
    rmSync(this.storeDir, { recursive: true, force: true });
  }

  async start(): Promise<void> {
    if (this.child) return;
    const child = spawn(natsServerBinary(), ['-js', '-sd', this.storeDir, '-a', '127.0.0.1', '-p', String(this.port), ...this.extraArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.output = '';
    // 'error' without 'exit' when it could not be started (no such binary).
    this.exited = new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', () => resolve());
    });
    await new Promise<void>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        this.output += chunk.toString();
        if (this.output.includes('Server is ready')) resolve();
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`nats-server exited (${code}) before it was ready:\n${this.output}`)));
    });
  }

  /** Stops it (SIGTERM: a clean shutdown) and waits until it has exited. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    child.kill('SIGTERM');
    await this.exited;
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    child.kill('SIGKILL');
    await this.exited;
  }
}
