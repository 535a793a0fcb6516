// A client that sends exactly the bytes it is given over a TCP socket and reads the first
// HTTP/1.1 response back: fetch and node:http would normalize what the fuzzer means to
// send (methods, header names, Content-Length, %-escapes, bare bytes in paths).
import { connect } from 'node:net';

export interface RawResponse {
  status: number;
  /** Lower-case names; repeated headers joined with ', '. */
  headers: Record<string, string>;
  body: Buffer;
  /** The server closed the connection after (or instead of finishing) this response. */
  closed: boolean;
}

/** What became of one request: a response, a connection closed or reset before one, or no answer in time. */
export type RawOutcome = { kind: 'response'; response: RawResponse } | { kind: 'closed' } | { kind: 'reset'; error: string } | { kind: 'timeout' };

export interface RawRequestOptions {
  port: number;
  /** The whole request as it goes on the wire. */
  bytes: Buffer;
  /** Gives up after this long without a complete response (default 10 s). */
  timeoutMs?: number;
  /** The request was HEAD: the response has no body whatever its headers say. */
  head?: boolean;
}

/** Where the header block ends, or -1. */
function headerEnd(buf: Buffer): number {
  return buf.indexOf('\r\n\r\n');
}

interface Parsed {
  response: RawResponse;
  /** Bytes of the response (headers and body) when it is complete, else undefined. */
  complete: boolean;
}

/** Parses the first final response in `buf` (1xx interim responses are skipped). */
function parse(buf: Buffer, head: boolean, closed: boolean): Parsed | undefined {
  let offset = 0;
  for (;;) {
    const rest = buf.subarray(offset);
    const end = headerEnd(rest);
    if (end < 0) return undefined;
    const lines = rest.subarray(0, end).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
    if (!m) throw new Error(`not an HTTP response: ${JSON.stringify(lines[0])}`);
    const status = Number(m[1]);
    const headers: Record<string, string> = {};
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      if (colon <= 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers[name] = name in headers ? `${headers[name]}, ${value}` : value;
    }
    const bodyStart = offset + end + 4;
    if (status >= 100 && status < 200) {
      offset = bodyStart;
      continue;
    }
    const body = buf.subarray(bodyStart);
    if (head || status === 204 || status === 304) {
      return { response: { status, headers, body: Buffer.alloc(0), closed }, complete: true };
    }
    if (headers['transfer-encoding']?.toLowerCase().includes('chunked')) {
      const decoded = dechunk(body);
      if (decoded) return { response: { status, headers, body: decoded, closed }, complete: true };
      return { response: { status, headers, body, closed }, complete: closed };
    }
    if (headers['content-length'] !== undefined) {
      const length = Number(headers['content-length']);
      if (body.length >= length) return { response: { status, headers, body: body.subarray(0, length), closed }, complete: true };
      return { response: { status, headers, body, closed }, complete: closed };
    }
    // Neither: the body runs to the end of the connection.
    return { response: { status, headers, body, closed }, complete: closed };
  }
}

/** A complete chunked body, decoded; undefined while incomplete. */
function dechunk(body: Buffer): Buffer | undefined {
  const parts: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const lineEnd = body.indexOf('\r\n', offset);
    if (lineEnd < 0) return undefined;
    const size = Number.parseInt(body.subarray(offset, lineEnd).toString('latin1'), 16);
    if (!Number.isFinite(size)) return undefined;
    const start = lineEnd + 2;
    if (size === 0) return Buffer.concat(parts);
    if (body.length < start + size + 2) return undefined;
    parts.push(body.subarray(start, start + size));
    offset = start + size + 2;
  }
}

/** Sends `bytes` on a new connection to 127.0.0.1:`port` and resolves with what came back. */
export function rawRequest(o: RawRequestOptions): Promise<RawOutcome> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let done = false;
    const socket = connect({ host: '127.0.0.1', port: o.port });
    const finish = (outcome: RawOutcome) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => finish({ kind: 'timeout' }), o.timeoutMs ?? 10_000);
    const check = (closed: boolean) => {
      const buf = Buffer.concat(chunks);
      let parsed: Parsed | undefined;
      try {
        parsed = parse(buf, o.head ?? false, closed);
      } catch (error) {
        finish({ kind: 'reset', error: (error as Error).message });
        return;
      }
      if (parsed?.complete) finish({ kind: 'response', response: parsed.response });
      else if (closed)
        finish(buf.length === 0 ? { kind: 'closed' } : { kind: 'reset', error: `incomplete response: ${buf.subarray(0, 200).toString('latin1')}` });
    };
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      check(false);
    });
    socket.on('end', () => check(true));
    socket.on('close', () => check(true));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // A reset after a complete response still counts as that response.
      if (chunks.length) check(true);
      finish({ kind: 'reset', error: error.code ?? error.message });
    });
    // Large bodies go in as the socket takes them; a server that stops reading resets us.
    socket.write(o.bytes);
  });
}
