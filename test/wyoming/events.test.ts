// Wyoming's framing (src/wyoming/events.ts) against the protocol as the `wyoming` Python
// library reads and writes it: both header layouts, any split of the byte stream, every
// length bounded.
import t from 'tap';

import { EventParser, encodeEvent, protocolVersion, pythonJson, type WyomingEvent, WyomingProtocolError } from '../../src/wyoming/events.js';

const payload = Buffer.from(Array.from({ length: 300 }, (_, i) => i % 256));

// Written by hand as the library writes them (data in its own block, Python's
// separators) and as its older releases did (data inline in the header line).
const transcribeData = '{"language": "de"}';
const chunkData = '{"rate": 16000, "width": 2, "channels": 1}';
const bytes = Buffer.concat([
  Buffer.from('{"type": "describe", "version": "1.8.0"}\n'),
  Buffer.from(`{"type": "transcribe", "version": "1.8.0", "data_length": ${transcribeData.length}}\n${transcribeData}`),
  Buffer.from('{"type":"audio-start","data":{"rate":16000,"width":2,"channels":1}}\n'),
  // Both at once: the data block's fields win over the header's.
  Buffer.from(`{"type": "audio-chunk", "data": {"rate": 8000, "x": 1}, "data_length": ${chunkData.length}, "payload_length": ${payload.length}}\n${chunkData}`),
  payload,
  Buffer.from('{"type": "audio-stop", "data_length": 0, "payload_length": null}\n'),
]);

const expected: WyomingEvent[] = [
  { type: 'describe', data: {} },
  { type: 'transcribe', data: { language: 'de' } },
  { type: 'audio-start', data: { rate: 16000, width: 2, channels: 1 } },
  { type: 'audio-chunk', data: { rate: 16000, x: 1, width: 2, channels: 1 }, payload },
  { type: 'audio-stop', data: {} },
];

t.test('events whatever the splits', async (t) => {
  const feed = (sizes: (i: number) => number) => {
    const parser = new EventParser();
    const events: WyomingEvent[] = [];
    for (let at = 0, i = 0; at < bytes.length; i++) {
      const size = Math.max(1, sizes(i));
      events.push(...parser.push(bytes.subarray(at, at + size)));
      at += size;
    }
    t.notOk(parser.midEvent, 'nothing left over');
    return events;
  };
  t.same(
    feed(() => bytes.length),
    expected,
    'all at once',
  );
  t.same(
    feed(() => 1),
    expected,
    'byte by byte',
  );
  t.same(
    feed((i) => [3, 7, 1, 64, 2, 129][i % 6]!),
    expected,
    'odd splits',
  );
  for (let cut = 1; cut < bytes.length; cut += 7) {
    const parser = new EventParser();
    t.same([...parser.push(bytes.subarray(0, cut)), ...parser.push(bytes.subarray(cut))], expected, `split at ${cut}`);
  }
});

t.test('a partial event is held until it is complete', async (t) => {
  const parser = new EventParser();
  t.same(parser.push(Buffer.from('{"type": "audio-chunk", "payload_length": 4}\nab')), []);
  t.ok(parser.midEvent);
  t.same(parser.push(Buffer.from('cd{"type": "ping"}\n')), [
    { type: 'audio-chunk', data: {}, payload: Buffer.from('abcd') },
    { type: 'ping', data: {} },
  ]);
  t.notOk(parser.midEvent);
});

t.test('bad input is a protocol error', async (t) => {
  const fails = (input: string, pattern: RegExp, code = 'ERR_INVALID_ARGUMENT', limits = { headerBytes: 64, dataBytes: 32, payloadBytes: 16 }) => {
    const parser = new EventParser(limits);
    let error: unknown;
    try {
      for (const byte of Buffer.from(input)) parser.push(Buffer.of(byte));
    } catch (err) {
      error = err;
    }
    t.type(error, WyomingProtocolError, input);
    t.match((error as Error).message, pattern, input);
    t.equal((error as WyomingProtocolError).code, code, input);
  };
  fails('not json\n', /not valid JSON/);
  fails('[1,2]\n', /Expected a JSON object for the event header/);
  fails('{"data": {}}\n', /Expected an event type string for type but received undefined/);
  fails('{"type": ""}\n', /Expected an event type string/);
  fails('{"type": "x", "data": [1]}\n', /Expected a JSON object for the data of 'x'/);
  fails('{"type": "x", "data_length": -1}\n', /Expected a non-negative integer for data_length but received -1/);
  fails('{"type": "x", "payload_length": "4"}\n', /Expected a non-negative integer for payload_length/);
  fails('{"type": "x", "payload_length": 17}\n', /payload_length 17 exceeds the maximum of 16 bytes/, 'ERR_PAYLOAD_TOO_LARGE');
  fails('{"type": "x", "data_length": 33}\n', /data_length 33 exceeds the maximum of 32 bytes/, 'ERR_PAYLOAD_TOO_LARGE');
  fails('{"type": "x", "data_length": 3}\n[1]', /Expected a JSON object for the data block/);
  // A header line is refused as soon as it is too long, before its newline arrives.
  fails(`{"type": "${'x'.repeat(80)}`, /header line exceeds the maximum of 64 bytes/, 'ERR_PAYLOAD_TOO_LARGE');
});

t.test('events are written as the library writes them', async (t) => {
  t.equal(encodeEvent({ type: 'transcript-stop' }).toString(), `{"type": "transcript-stop", "version": "${protocolVersion}"}\n`);
  const data = { text: 'Grüße, "du"', language: 'de' };
  const dataText = '{"text": "Grüße, \\"du\\"", "language": "de"}';
  t.equal(pythonJson(data), dataText);
  t.equal(
    encodeEvent({ type: 'transcript', data }).toString(),
    `{"type": "transcript", "version": "${protocolVersion}", "data_length": ${Buffer.byteLength(dataText)}}\n${dataText}`,
    'data_length counts bytes (UTF-8), not characters',
  );
  const withPayload = encodeEvent({ type: 'audio-chunk', data: { rate: 16000, width: 2, channels: 1 }, payload: Buffer.from('ab') });
  t.match(
    withPayload.toString(),
    /^\{"type": "audio-chunk", "version": "[^"]+", "data_length": 42, "payload_length": 2\}\n\{"rate": 16000, "width": 2, "channels": 1\}ab$/,
  );
  t.equal(pythonJson({ a: [1, { b: null, c: true }], d: undefined }), '{"a": [1, {"b": null, "c": true}]}');

  // What it writes reads back.
  const parser = new EventParser();
  t.same(parser.push(Buffer.concat([encodeEvent({ type: 'transcript', data }), withPayload])), [
    { type: 'transcript', data },
    { type: 'audio-chunk', data: { rate: 16000, width: 2, channels: 1 }, payload: Buffer.from('ab') },
  ]);
});
