/**
 * Wyoming's event framing, as the `wyoming` Python library (rhasspy/wyoming,
 * `wyoming/event.py`) reads and writes it: one JSON header line (`type`, optional `data`,
 * `data_length`, `payload_length`, `version`), then `data_length` bytes of JSON data
 * merged over the header's `data`, then `payload_length` bytes of payload. Older writers
 * put the data inline in the header; the library reads both, and so does this parser.
 */

/** One event: its type, its data (header `data` and data block merged), its payload. */
export interface WyomingEvent {
  type: string;
  data: Record<string, unknown>;
  payload?: Buffer;
}

/** The protocol version written into every header: the `wyoming` library release whose framing this follows. */
export const protocolVersion = '1.8.0';

/** What one event may be; anything larger ends the session. */
export interface FrameLimits {
  headerBytes: number;
  dataBytes: number;
  payloadBytes: number;
}

/**
 * A client's events are small: a `transcribe` or `audio-start` header is under 200 bytes,
 * and Home Assistant sends audio in chunks of 2 KiB (1024 samples). These leave room for
 * other clients' larger chunks while keeping what one connection can make us buffer small.
 */
export const defaultFrameLimits: FrameLimits = { headerBytes: 16 * 1024, dataBytes: 64 * 1024, payloadBytes: 1024 * 1024 };

/** Input that is not Wyoming's framing, or exceeds a limit: the session answers with an `error` event and ends. */
export class WyomingProtocolError extends Error {
  constructor(
    message: string,
    readonly code = 'ERR_INVALID_ARGUMENT',
  ) {
    super(message);
    this.name = 'WyomingProtocolError';
  }
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

function parseJsonObject(bytes: Buffer, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new WyomingProtocolError(`The ${what} is not valid JSON: ${(err as Error).message}`);
  }
  if (!isObject(value)) throw new WyomingProtocolError(`Expected a JSON object for the ${what} but received ${JSON.stringify(value)?.slice(0, 80)}`);
  return value;
}

/** A `data_length` or `payload_length`: absent (or null) is 0, as the library reads it. */
function lengthField(header: Record<string, unknown>, name: string, max: number): number {
  const value = header[name];
  if (value === undefined || value === null) return 0;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new WyomingProtocolError(`Expected a non-negative integer for ${name} but received ${JSON.stringify(value)}`);
  }
  if (value > max) throw new WyomingProtocolError(`${name} ${value} exceeds the maximum of ${max} bytes`, 'ERR_PAYLOAD_TOO_LARGE');
  return value;
}

interface PendingEvent {
  type: string;
  data: Record<string, unknown>;
  dataLength: number;
  payloadLength: number;
}

/**
 * Turns a byte stream into events, whatever the stream's chunks are (a byte at a time, or
 * several events in one). Holds at most one header line, one data block and one payload,
 * each within its limit; throws a WyomingProtocolError on anything else, after which the
 * parser is not used again.
 */
export class EventParser {
  private buffered: Buffer[] = [];
  private bufferedBytes = 0;
  private pending: PendingEvent | undefined;

  constructor(private readonly limits: FrameLimits = defaultFrameLimits) {}

  /** Feeds `chunk`; returns the events it completed, in order. */
  push(chunk: Buffer): WyomingEvent[] {
    if (chunk.length) {
      this.buffered.push(chunk);
      this.bufferedBytes += chunk.length;
    }
    const events: WyomingEvent[] = [];
    for (;;) {
      if (!this.pending) {
        const line = this.takeLine();
        if (line === undefined) break;
        this.pending = this.parseHeader(line);
      }
      const p = this.pending;
      if (this.bufferedBytes < p.dataLength + p.payloadLength) break;
      const data = p.dataLength ? { ...p.data, ...parseJsonObject(this.take(p.dataLength), 'data block') } : p.data;
      const event: WyomingEvent = { type: p.type, data };
      if (p.payloadLength) event.payload = this.take(p.payloadLength);
      this.pending = undefined;
      events.push(event);
    }
    return events;
  }

  /** Whether a partial event is buffered (a connection that ends now ends mid-event). */
  get midEvent(): boolean {
    return this.pending !== undefined || this.bufferedBytes > 0;
  }

  private parseHeader(line: Buffer): PendingEvent {
    const header = parseJsonObject(line, 'event header');
    const type = header.type;
    if (typeof type !== 'string' || type === '') throw new WyomingProtocolError(`Expected an event type string for type but received ${JSON.stringify(type)}`);
    const inline = header.data ?? {};
    if (!isObject(inline)) throw new WyomingProtocolError(`Expected a JSON object for the data of '${type}' but received ${JSON.stringify(inline)}`);
    return {
      type,
      data: inline,
      dataLength: lengthField(header, 'data_length', this.limits.dataBytes),
      payloadLength: lengthField(header, 'payload_length', this.limits.payloadBytes),
    };
  }

  /** The next header line without its newline, or undefined while it is incomplete. */
  private takeLine(): Buffer | undefined {
    let scanned = 0;
    for (const part of this.buffered) {
      const at = part.indexOf(0x0a);
      if (at >= 0) {
        if (scanned + at > this.limits.headerBytes) break;
        const line = this.take(scanned + at);
        this.take(1);
        return line;
      }
      scanned += part.length;
    }
    if (scanned <= this.limits.headerBytes) return undefined;
    throw new WyomingProtocolError(`An event header line exceeds the maximum of ${this.limits.headerBytes} bytes`, 'ERR_PAYLOAD_TOO_LARGE');
  }

  /** Removes and returns the first `n` buffered bytes (n ≤ bufferedBytes). */
  private take(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const head = this.buffered[0]!;
      const used = Math.min(head.length, n - filled);
      head.copy(out, filled, 0, used);
      filled += used;
      if (used === head.length) this.buffered.shift();
      else this.buffered[0] = head.subarray(used);
    }
    this.bufferedBytes -= n;
    return out;
  }
}

/**
 * JSON as Python's `json.dumps(..., ensure_ascii=False)` writes it (", " and ": "
 * separators), so that what earshot sends is byte for byte what the library sends.
 */
export function pythonJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(', ')}]`;
  if (isObject(value)) {
    const entries = Object.entries(value).filter(([, v]) => v !== undefined);
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}: ${pythonJson(v)}`).join(', ')}}`;
  }
  return JSON.stringify(value ?? null);
}

/**
 * An event as the current library writes it: the header line (`type`, `version`, then
 * `data_length` when there is data, `payload_length` when there is a payload), the data
 * block, the payload.
 */
export function encodeEvent(event: { type: string; data?: Record<string, unknown>; payload?: Buffer }): Buffer {
  const header: Record<string, unknown> = { type: event.type, version: protocolVersion };
  const data = event.data && Object.keys(event.data).length ? Buffer.from(pythonJson(event.data), 'utf8') : undefined;
  if (data) header.data_length = data.length;
  if (event.payload?.length) header.payload_length = event.payload.length;
  return Buffer.concat([Buffer.from(`${pythonJson(header)}\n`, 'utf8'), ...(data ? [data] : []), ...(event.payload?.length ? [event.payload] : [])]);
}
