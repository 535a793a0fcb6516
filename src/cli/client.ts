import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { Readable } from 'node:stream';

/** A failure the command line reports as it is: what went wrong and what to do about it. */
export class CliError extends Error {
  constructor(
    message: string,
    /** The process's exit code: 1 a failure, 2 a usage mistake, 3 the device refused the key. */
    readonly exitCode = 1,
  ) {
    super(message);
  }
}

export interface ClientOptions {
  /** `http://pi.local:8080` */
  url: string;
  key?: string;
  /** Where the URL came from, for messages ("--url", "EARSHOT_URL", "the default"). */
  urlSource: string;
}

/** What an answer from the device says about a failure, whatever dialect's shape it is in. */
function errorMessage(body: unknown): string | undefined {
  if (!body || typeof body !== 'object') return undefined;
  const b = body as { error?: unknown; message?: unknown };
  if (typeof b.error === 'string') return b.error; // IBM
  if (b.error && typeof b.error === 'object' && typeof (b.error as { message?: unknown }).message === 'string') return (b.error as { message: string }).message;
  if (typeof b.message === 'string') return b.message; // Azure, ops
  return undefined;
}

/**
 * The device's public HTTP API as the command line uses it: IBM's recognitions for jobs,
 * its callback deliveries, Azure's web hooks, the probes. Every failure becomes a
 * CliError that names the problem and the fix.
 */
export class Client {
  readonly url: string;

  constructor(private readonly o: ClientOptions) {
    let parsed: URL;
    try {
      parsed = new URL(o.url);
    } catch {
      throw new CliError(`The device URL '${o.url}' (${o.urlSource}) is not a URL: give one like http://raspberrypi.local:8080`, 2);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new CliError(`The device URL '${o.url}' (${o.urlSource}) must start with http:// or https://`, 2);
    }
    this.url = o.url.replace(/\/+$/, '');
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { ...(this.o.key ? { Authorization: `Bearer ${this.o.key}` } : {}), ...extra };
  }

  /** A failed connection, as a sentence that says where and what to check. */
  private unreachable(err: unknown): CliError {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause ?? (err as { code?: string; message?: string });
    const code = cause?.code ?? '';
    const where = `${this.url} (${this.o.urlSource})`;
    if (code === 'ECONNREFUSED') {
      return new CliError(
        `Cannot connect to earshot at ${where}: connection refused. Is the service running there (systemctl status earshot) and is this its port? Set EARSHOT_URL or --url to the device's address.`,
      );
    }
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
      return new CliError(`Cannot find the host of ${where}: check the name (try the device's IP address) and set EARSHOT_URL or --url.`);
    }
    if (code === 'ETIMEDOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH') {
      return new CliError(`Cannot reach ${where} (${code}): is the device on and on this network?`);
    }
    return new CliError(`Cannot talk to earshot at ${where}: ${cause?.message ?? String(err)}`);
  }

  /** Turns a refusal into the message the user needs; `what` says what was asked. */
  private async refused(res: Response, what: string): Promise<CliError> {
    const text = await res.text();
    let said: string | undefined;
    try {
      said = errorMessage(JSON.parse(text));
    } catch {
      said = text.slice(0, 200) || undefined;
    }
    if (res.status === 401) {
      const how = this.o.key
        ? 'The device refused the API key: set EARSHOT_API_KEY (or --key) to the key of this device'
        : 'The device asks for an API key: set EARSHOT_API_KEY (or --key)';
      return new CliError(`${how}. On the device, \`sudo earshot key\` prints it.`, 3);
    }
    if (res.status === 503) return new CliError(`${what}: the device is not ready (${said ?? 'starting'}); try again shortly.`);
    if (res.status === 507) return new CliError(`${what}: the device is short of disk space (${said ?? ''}); free some or wait for jobs to expire.`);
    return new CliError(`${what}: HTTP ${res.status}${said ? `: ${said}` : ''}`);
  }

  /** A request; resolves with the response when it is 2xx (or in `accept`). */
  async request(method: string, path: string, what: string, init: { body?: RequestInit['body']; headers?: Record<string, string>; accept?: number[] } = {}) {
    let res: Response;
    try {
      res = await fetch(`${this.url}${path}`, {
        method,
        headers: this.headers(init.headers),
        ...(init.body !== undefined ? { body: init.body, duplex: 'half' } : {}),
      } as RequestInit);
    } catch (err) {
      throw this.unreachable(err);
    }
    if (!res.ok && !init.accept?.includes(res.status)) throw await this.refused(res, what);
    return res;
  }

  async json<T>(method: string, path: string, what: string): Promise<T> {
    return (await (await this.request(method, path, what)).json()) as T;
  }

  /**
   * Uploads `file` to IBM's `POST /v1/recognitions` with `query`; `onProgress(sent, total)`
   * as the bytes are read for sending. Resolves with the job's id.
   */
  async upload(file: string, query: URLSearchParams, contentType: string, onProgress: (sent: number, total: number) => void): Promise<string> {
    const { size } = await stat(file);
    let sent = 0;
    const stream = createReadStream(file, { highWaterMark: 256 * 1024 });
    stream.on('data', (chunk) => {
      sent += chunk.length;
      onProgress(sent, size);
    });
    const res = await this.request('POST', `/v1/recognitions?${query}`, `Uploading ${file}`, {
      body: Readable.toWeb(stream) as ReadableStream,
      headers: { 'Content-Type': contentType, 'Content-Length': String(size) },
    });
    return ((await res.json()) as { id: string }).id;
  }
}
