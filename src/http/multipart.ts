/**
 * Receiving a `multipart/form-data` upload (Azure's fast transcription, OpenAI's audio
 * API): the one file part is streamed to the spool as it arrives (busboy over the request
 * body, never the whole body in memory), the other parts are small and kept in memory.
 * Every refusal is built by the dialect (`problem`), so each answers in its own shape.
 */
import { open, rm } from 'node:fs/promises';
import type { Readable } from 'node:stream';

import busboy from 'busboy';

import type { Request } from './server.js';

/** What went wrong with a form, for the dialect to turn into its own error. */
export type MultipartProblem =
  /** The Content-Type is not multipart/form-data with a boundary. */
  | 'not-multipart'
  /** busboy could not parse the body. */
  | 'malformed'
  /** A part the dialect does not take. */
  | 'unexpected-part'
  /** A part sent twice that may be sent once. */
  | 'repeated-part'
  /** More parts than `maxParts`. */
  | 'too-many-parts'
  /** A part larger than `maxFieldBytes`. */
  | 'part-too-large'
  /** The file part came as a plain field (no filename). */
  | 'file-not-file'
  /** No file part at all. */
  | 'no-file';

export interface MultipartOptions {
  /** The name of the file part that is streamed to the spool file. */
  fileField: string;
  /** The other parts the form has; a repeated one is refused unless it is in `repeatable`. */
  fields: readonly string[];
  repeatable?: readonly string[];
  /** Parts named in neither list: dropped (OpenAI's clients send options a device cannot use), or refused (Azure). */
  unknownParts: 'ignore' | 'refuse';
  /** The limit of the whole body (the service's upload limit). */
  maxBytes: number;
  /** The limit of each part but the file: they are kept in memory. */
  maxFieldBytes: number;
  maxParts: number;
  /**
   * Looks at the file part's type and name before a byte of it is written; what it throws
   * refuses the upload.
   */
  checkFile?(file: { mimeType: string; filename: string }): void;
  /**
   * Called with each part but the file as soon as it is complete (a bad option sent before
   * the file refuses the upload before the file is read); what it throws refuses it.
   */
  onField?(name: string, value: string): void;
  /** The dialect's error for a problem with the form (`part`: the part it concerns). */
  problem(kind: MultipartProblem, message: string, part?: string): Error;
  /** Called once the file part's spool file exists (`ReceiveAudio`'s `created`). */
  created?: () => void;
}

/** What the form carried: the file (in the spool file at `path`) and the other parts. */
export interface ReceivedForm {
  file: { bytes: number; mimeType: string; filename: string };
  /** Each part but the file, in the order sent (several values for repeatable parts). */
  fields: Map<string, string[]>;
}

/** Reads a small file part into memory within `maxBytes`; undefined when it is larger. */
async function smallPart(stream: Readable, maxBytes: number): Promise<string | undefined> {
  const parts: Buffer[] = [];
  let bytes = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    bytes += chunk.length;
    if (bytes > maxBytes) {
      stream.resume();
      return undefined;
    }
    parts.push(chunk);
  }
  return Buffer.concat(parts).toString('utf8');
}

/** Streams the file part into a new spool file (mode 0600) and fsyncs it; removes the file on any failure. */
async function partToFile(stream: Readable, path: string, created: (() => void) | undefined): Promise<number> {
  const handle = await open(path, 'wx', 0o600);
  created?.();
  try {
    let bytes = 0;
    // One write at a time: the part's stream (and through busboy, the socket) waits for the disk.
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      await handle.write(chunk);
      bytes += chunk.length;
    }
    await handle.sync();
    return bytes;
  } catch (err) {
    await rm(path, { force: true });
    throw err;
  } finally {
    await handle.close().catch(() => {});
  }
}

const quotedList = (names: readonly string[]) => {
  const quoted = names.map((n) => `'${n}'`);
  return quoted.length > 1 ? `${quoted.slice(0, -1).join(', ')} and ${quoted.at(-1)}` : (quoted[0] ?? '');
};

/**
 * Parses the form as it arrives: the file part goes to `path`, every other part is
 * checked by `onField` as soon as it is complete (small file parts are read into memory
 * as fields are). A malformed form, a refused part or a missing file rejects; nothing of
 * the file is left then. Used inside `JobService.submit`'s `receive`.
 */
export async function receiveMultipart(req: Request, path: string, o: MultipartOptions): Promise<ReceivedForm> {
  const contentType = req.headers['content-type'] ?? '';
  const parts = `the form has the parts ${quotedList([o.fileField, ...o.fields])}`;
  let parser: busboy.Busboy;
  try {
    if (!/^multipart\/form-data\s*(;|$)/i.test(contentType)) throw new Error('not multipart/form-data');
    parser = busboy({ headers: { 'content-type': contentType }, limits: { fieldSize: o.maxFieldBytes, fields: o.maxParts, files: o.maxParts } });
  } catch (err) {
    throw o.problem('not-multipart', `Unsupported Content-Type '${contentType}': expected multipart/form-data with a boundary (${(err as Error).message})`);
  }

  let failure: Error | undefined;
  let failed!: (err: Error) => void;
  const failedPromise = new Promise<never>((_, reject) => (failed = reject));
  failedPromise.catch(() => {});
  const fail = (err: Error) => {
    if (failure) return;
    failure = err;
    failed(err);
  };
  const fields = new Map<string, string[]>();
  let file: { stream: Readable; mimeType: string; filename: string; written: Promise<number> } | undefined;
  const pending: Promise<unknown>[] = [];

  /** Whether a part other than the file is taken (an error refuses the form, false drops the part). */
  const takes = (name: string): boolean => {
    if (!o.fields.includes(name)) {
      if (o.unknownParts === 'ignore') return false;
      fail(o.problem('unexpected-part', `Unexpected form part '${name}': ${parts}`, name));
      return false;
    }
    return true;
  };
  const takeField = (name: string, value: string | undefined) => {
    if (failure) return;
    if (fields.has(name) && !o.repeatable?.includes(name)) {
      return fail(o.problem('repeated-part', `The form has more than one ${name} part`, name));
    }
    if (value === undefined) return fail(o.problem('part-too-large', `The ${name} part exceeds the maximum of ${o.maxFieldBytes} bytes`, name));
    fields.set(name, [...(fields.get(name) ?? []), value]);
    try {
      o.onField?.(name, value);
    } catch (err) {
      fail(err as Error);
    }
  };

  parser.on('file', (name, stream, info) => {
    // When the form is abandoned (parser.destroy() below), busboy destroys the part it is in
    // with an error: a part that is only drained (resume) has no reader to take it, and an
    // unhandled 'error' would end the process (seen on Node 24). Readers (smallPart,
    // partToFile) still get it through their iterators.
    stream.on('error', () => {});
    if (failure) return void stream.resume();
    if (name !== o.fileField) {
      if (!takes(name)) return void stream.resume();
      pending.push(smallPart(stream, o.maxFieldBytes).then((text) => takeField(name, text), fail));
      return;
    }
    if (file) {
      stream.resume();
      return fail(o.problem('repeated-part', `The form has more than one ${name} part`, name));
    }
    const mimeType = info.mimeType || 'application/octet-stream';
    try {
      o.checkFile?.({ mimeType, filename: info.filename ?? '' });
    } catch (err) {
      stream.resume();
      return fail(err as Error);
    }
    const written = partToFile(stream, path, o.created);
    written.catch(fail);
    file = { stream, mimeType, filename: info.filename ?? '', written };
  });
  parser.on('field', (name, value, info) => {
    if (failure) return;
    if (name === o.fileField) {
      return fail(o.problem('file-not-file', `The ${name} part must be a file part (with a filename), as a form's file upload sends it`, name));
    }
    if (takes(name)) takeField(name, info.valueTruncated ? undefined : value);
  });
  for (const limit of ['partsLimit', 'filesLimit', 'fieldsLimit'] as const) {
    parser.on(limit, () => fail(o.problem('too-many-parts', `The form has too many parts: ${parts.replace('the form has', 'it has')}`)));
  }
  parser.on('error', (err: Error) => fail(o.problem('malformed', `The multipart/form-data body is malformed: ${err.message}`)));
  const parsed = new Promise<void>((resolve) => parser.on('close', resolve));

  try {
    for await (const chunk of req.body.stream(o.maxBytes)) {
      if (failure) break;
      // busboy's own backpressure: a slow disk under the file part holds the socket.
      if (!parser.write(chunk)) await Promise.race([new Promise((r) => parser.once('drain', r)), failedPromise]);
    }
    if (!failure) {
      parser.end();
      await Promise.race([parsed, failedPromise]);
    }
    await Promise.race([Promise.all(pending), failedPromise]);
    if (!file) throw o.problem('no-file', `The form has no ${o.fileField} part: send the audio file as the part named '${o.fileField}'`, o.fileField);
    const bytes = await Promise.race([file.written, failedPromise]);
    return { file: { bytes, mimeType: file.mimeType, filename: file.filename }, fields };
  } catch (err) {
    fail(err as Error);
    // The writer must have settled (and removed its file) before submit cleans up: one
    // still opening the spool file would create it after the cleanup.
    file?.stream.destroy();
    parser.destroy();
    await file?.written.catch(() => {});
    throw failure;
  }
}
