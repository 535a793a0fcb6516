import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';

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
 * a temporary directory: stopped and removed when the test ends. `stop()`/`start()` take
 * it down and bring it back on the same port with the same store (a broker restart);
 * `kill()` is SIGKILL.
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
    t.teardown(async () => {
      await server.stop();
      rmSync(server.storeDir, { recursive: true, force: true });
    });
    await server.start();
    return server;
  }

  async start(): Promise<void> {
    if (this.child) return;
    const binary = process.env.NATS_SERVER ?? (process.platform === 'linux' ? '/usr/sbin/nats-server' : 'nats-server');
    const child = spawn(binary, ['-js', '-sd', this.storeDir, '-a', '127.0.0.1', '-p', String(this.port), ...this.extraArgs], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.output = '';
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
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
