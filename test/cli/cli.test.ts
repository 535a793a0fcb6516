// The command line against the real service: the built `earshot` bin as a user runs it
// (a child process, talking HTTP to the service in this process), and runCli in process
// where a test needs a terminal for the progress bars.
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import t from 'tap';

import type { DecoderScript } from '../../scripts/lib/scripted-decoder.js';
import { runCli } from '../../src/cli/main.js';
import { projectRoot } from '../../src/paths.js';
import { apiKey, startApp, waitForJob } from '../helpers/app.js';
import { JFK_MP3 } from '../helpers/audio-fixtures.js';
import { l16, wav } from '../helpers/pcm.js';
import { startReceiver } from '../helpers/receiver.js';
import { scriptedModel } from '../helpers/scripted-models.js';
import { until } from '../helpers/poll.js';

const bin = path.join(projectRoot, 'dist/src/cli/main.js');
const script: DecoderScript = [
  { start: 0, end: 3.5, tokens: [' And', ' so', ' my', ' fellow', ' Americans', ','] },
  { start: 3.6, end: 7.5, tokens: [' ask', ' not', ' what', ' your', ' country', ' can', ' do', ' for', ' you', '.'] },
];
const model = await scriptedModel(t, script);
const { base } = await startApp(t, { EARSHOT_MODEL: model, EARSHOT_RETRY_SCHEDULE: '10ms,10ms' });

const runnerEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('EARSHOT_')));

/** Runs the bin; never rejects: resolves with its exit code and output. */
async function earshot(args: string[], env: Record<string, string> = {}, cwd?: string) {
  try {
    const { stdout, stderr } = await promisify(execFile)(bin, args, {
      // The runner's environment (its coverage hooks) without any earshot setting of the host's.
      env: { ...runnerEnv, EARSHOT_URL: base, EARSHOT_API_KEY: apiKey, ...env },
      ...(cwd ? { cwd } : {}),
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const srtPattern =
  /^1\n00:00:00,000 --> 00:00:03,\d{3}\nAnd so my fellow Americans,\n\n2\n00:00:03,\d{3} --> 00:00:07,\d{3}\nask not what your country can do for you\.\n/;
const text = 'And so my fellow Americans, ask not what your country can do for you.\n';

t.test('transcribe jfk.mp3 to srt, txt and json beside it', async (t) => {
  const dir = t.testdir();
  const audio = path.join(dir, 'jfk.mp3');
  copyFileSync(JFK_MP3, audio);

  const srt = await earshot(['transcribe', audio, '--format', 'srt']);
  t.equal(srt.code, 0, srt.stderr);
  t.equal(srt.stdout, '', 'nothing on stdout');
  t.match(srt.stderr, `${audio} → ${audio}.srt (11.0 s of audio)\n`, 'one line per file, no bar off a terminal');
  t.notMatch(srt.stderr, /░|█|%/, 'no progress bar when stderr is not a terminal');
  t.match(readFileSync(`${audio}.srt`, 'utf8'), srtPattern);

  const txt = await earshot(['transcribe', 'jfk.mp3'], {}, dir);
  t.equal(txt.code, 0, txt.stderr);
  t.equal(readFileSync(`${audio}.txt`, 'utf8'), text, 'txt is the default; relative paths from the working directory');

  const json = await earshot(['transcribe', audio, '-f', 'json', '--language', 'en']);
  t.equal(json.code, 0, json.stderr);
  const body = JSON.parse(readFileSync(`${audio}.json`, 'utf8'));
  t.match(body, { status: 'completed', results: [{ results: [{ final: true, alternatives: [{ transcript: 'And so my fellow Americans, ' }] }] }] });
  t.match(body.results[0].results[0].alternatives[0].timestamps[0], ['And', Number, Number], 'word timings');
  t.ok(body.results[0].results[0].alternatives[0].word_confidence, 'word confidences');

  const vtt = await earshot(['transcribe', audio, '-f', 'vtt', '-o', '-']);
  t.equal(vtt.code, 0, vtt.stderr);
  t.match(vtt.stdout, /^WEBVTT\n\n00:00:00\.000 --> 00:00:03\.\d{3}\nAnd so my fellow Americans,\n/, '-o -: on stdout');
  t.notOk(existsSync(`${audio}.vtt`), 'and not beside the file');
});

t.test('several files in one go, into a directory or to stdout in the order given', async (t) => {
  const dir = t.testdir();
  const files = ['a.mp3', 'b.wav', 'c.mp3'].map((f) => path.join(dir, f));
  copyFileSync(JFK_MP3, files[0]!);
  writeFileSync(files[1]!, wav(2));
  copyFileSync(JFK_MP3, files[2]!);
  const out = path.join(dir, 'out');
  mkdirSync(out);
  const r = await earshot(['transcribe', ...files, '-f', 'srt', '-o', out]);
  t.equal(r.code, 0, r.stderr);
  for (const f of files) t.match(readFileSync(path.join(out, `${path.basename(f)}.srt`), 'utf8'), /^1\n00:00:00,000 --> /);
  t.match(r.stderr, /3 of 3 transcribed in [\d.]+ s\n$/);

  const both = await earshot(['transcribe', files[0]!, files[2]!, '-o', '-']);
  t.equal(both.stdout, text + text);
});

t.test('progress bars on a terminal: upload, then processing to 100%', async (t) => {
  const dir = t.testdir();
  const audio = path.join(dir, 'jfk.mp3');
  copyFileSync(JFK_MP3, audio);
  let terminal = '';
  let stdout = '';
  const code = await runCli(['transcribe', audio, '-o', '-', '--url', base, '--key', apiKey], {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { isTTY: true, columns: 100, write: (s: string) => (terminal += s) },
    env: {},
  });
  t.equal(code, 0, terminal);
  t.equal(stdout, text);
  t.match(terminal, /█+ 100% \| done \| .*jfk\.mp3/, 'a full bar at the end');
  t.match(terminal, /\| (upload|waiting|processing) \|/, 'and the phases before');
});

t.test('errors name the problem and the fix, with a non-zero exit code', async (t) => {
  const dir = t.testdir();
  const audio = path.join(dir, 'jfk.mp3');
  copyFileSync(JFK_MP3, audio);

  const badKey = await earshot(['transcribe', audio], { EARSHOT_API_KEY: 'not-the-key-0123456789' });
  t.equal(badKey.code, 3);
  t.match(badKey.stderr, /refused the API key: set EARSHOT_API_KEY \(or --key\).*sudo earshot key/);
  const noKey = await earshot(['jobs'], { EARSHOT_API_KEY: '' });
  t.equal(noKey.code, 3);
  t.match(noKey.stderr, /asks for an API key: set EARSHOT_API_KEY/);

  // A port nothing listens on: the service's, once it stopped.
  // (A state directory of its own: the default, the test's directory, would be made afresh.)
  const closed = await startApp(t, {}, path.join(dir, 'closed-state'));
  await closed.app.stop();
  const refused = await earshot(['status', '--url', closed.base]);
  t.equal(refused.code, 1);
  t.match(refused.stderr, `Cannot connect to earshot at ${closed.base} (--url): connection refused. Is the service running there`);
  const fromEnv = await earshot(['jobs'], { EARSHOT_URL: closed.base });
  t.match(fromEnv.stderr, `${closed.base} (EARSHOT_URL)`);

  const missing = await earshot(['transcribe', path.join(dir, 'nope.mp3')]);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /Cannot read .*nope\.mp3: check the path/);
  const format = await earshot(['transcribe', audio, '-f', 'docx']);
  t.equal(format.code, 2);
  t.match(format.stderr, /--format must be one of txt, srt, vtt, json/);
  const unknown = await earshot(['frobnicate']);
  t.equal(unknown.code, 2);
  t.match(unknown.stderr, /Unknown command 'frobnicate'.*Usage: earshot/s);
  const noDir = await earshot(['transcribe', audio, '-o', path.join(dir, 'missing')]);
  t.equal(noDir.code, 2);
  t.match(noDir.stderr, /missing: no such directory/);
  const url = await earshot(['jobs', '--url', 'pi.local:8080']);
  t.equal(url.code, 2);
  t.match(url.stderr, /must start with http:\/\/ or https:\/\//);

  // Refused by the device: its reason is passed on.
  writeFileSync(path.join(dir, 'tiny.wav'), Buffer.alloc(10));
  const tiny = await earshot(['transcribe', path.join(dir, 'tiny.wav')]);
  t.equal(tiny.code, 1);
  t.match(tiny.stderr, /Uploading .*tiny\.wav: HTTP 4\d\d: /);
});

t.test('jobs and status', async (t) => {
  const jobs = await earshot(['jobs']);
  t.equal(jobs.code, 0, jobs.stderr);
  t.match(jobs.stdout, /^ID\s+STATUS\s+CREATED\s+UPDATED\n\S+\s+completed\s+\d{4}-/);
  const list = JSON.parse((await earshot(['jobs', '--json'])).stdout);
  t.ok(list.length >= 6, 'the jobs of the tests above');

  const status = await earshot(['status']);
  t.equal(status.code, 0, status.stderr);
  t.match(
    status.stdout,
    new RegExp(
      `^earshot at ${base}\n  ready:       yes\n  model:       scripted\n  languages:   en-.*\n  jobs:        .*completed \\d+.*\n  deliveries:  .*\n  disk free:   [\\d.]+ GB\n$`,
    ),
  );
  t.match(JSON.parse((await earshot(['status', '--json'])).stdout), { url: base, ready: true, jobs: { completed: Number } });
});

t.test('deliveries: dead letters of IBM callbacks and Azure web hooks, listed and redelivered', async (t) => {
  const receiver = await startReceiver(t, undefined, { path: '/callback' });
  const hookReceiver = await startReceiver(t, undefined, { path: '/hook' });
  const auth = { Authorization: `Bearer ${apiKey}` };
  const q = encodeURIComponent(receiver.url);
  t.equal((await fetch(`${base}/v1/register_callback?callback_url=${q}`, { method: 'POST', headers: auth })).status, 201);
  const created = await fetch(`${base}/speechtotext/v3.2/webhooks`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'application/json' },
    body: JSON.stringify({ displayName: 'cli', webUrl: hookReceiver.url, events: { transcriptionCompletion: true } }),
  });
  const hook = (await created.json()) as { self: string };
  await until(async () => ((await (await fetch(hook.self, { headers: auth })).json()) as { status: string }).status === 'Succeeded', 10_000, 'the challenge');
  let failing = true;
  receiver.answer = () => (failing ? { status: 500 } : { status: 200 });
  hookReceiver.answer = () => (failing ? { status: 503 } : { status: 200 });
  const res = await fetch(`${base}/v1/recognitions?callback_url=${q}&events=recognitions.completed`, {
    method: 'POST',
    headers: { ...auth, 'Content-Type': 'audio/l16;rate=16000;endianness=little-endian' },
    body: l16(1),
  });
  const { id } = (await res.json()) as { id: string };
  await waitForJob(base, auth, id);
  let dead = '';
  await until(
    async () => {
      dead = (await earshot(['deliveries', '--dead'])).stdout;
      return dead.includes('recognitions.completed') && dead.includes('TranscriptionCompletion');
    },
    20_000,
    'two dead letters',
  );
  const lines = dead.trimEnd().split('\n');
  t.match(lines[0], /^ID\s+STATE\s+KIND\s+EVENT\s+ATTEMPTS\s+TARGET\s+LAST ERROR$/);
  t.match(lines[1], /^\S+\s+dead\s+callback\s+recognitions\.completed\s+3\s+\S+\/callback\s+HTTP 500$/);
  t.match(lines[2], /^\S+\s+dead\s+webhook\s+TranscriptionCompletion\s+3\s+\S+\/hook\s+HTTP 503$/);
  t.equal(lines.length, 3);
  const [callbackId, hookDeliveryId] = [lines[1]!.split(/\s+/)[0]!, lines[2]!.split(/\s+/)[0]!];
  t.match((await earshot(['deliveries'])).stdout, callbackId, 'listed among pending and dead too');
  t.match(JSON.parse((await earshot(['deliveries', '--dead', '--json'])).stdout), [
    { id: callbackId, kind: 'callback', state: 'dead' },
    { id: hookDeliveryId, kind: 'webhook', state: 'dead' },
  ]);

  failing = false;
  const one = await earshot(['deliveries', '--redeliver', callbackId]);
  t.equal(one.code, 0, one.stderr);
  t.equal(one.stdout, `Redelivering ${callbackId} (callback): it is pending again.\n`);
  const other = await earshot(['deliveries', '--redeliver', hookDeliveryId]);
  t.equal(other.code, 0, other.stderr);
  t.match(other.stdout, new RegExp(`^Redelivering ${hookDeliveryId} \\(web hook \\S+\\): it is pending again\\.\n$`));
  await until(() => receiver.received.some((r) => r.method === 'POST') && hookReceiver.events().length >= 4, 20_000, 'the redeliveries');
  t.equal((await earshot(['deliveries', '--dead'])).stdout, 'No dead letters.\n');
  // The outcomes are stored just after the receivers answered: listed once they are.
  let delivered: Array<{ id: string; state: string }> = [];
  await until(
    async () => {
      delivered = JSON.parse((await earshot(['deliveries', '--delivered', '--json'])).stdout);
      return [callbackId, hookDeliveryId].every((id) => delivered.some((d) => d.id === id));
    },
    10_000,
    'both listed as delivered',
  );
  for (const id of [callbackId, hookDeliveryId])
    t.ok(
      delivered.some((d) => d.id === id && d.state === 'delivered'),
      `${id} among the recently delivered`,
    );
  t.notOk(
    delivered.some((d) => d.state !== 'delivered'),
    'nothing else',
  );

  const again = await earshot(['deliveries', '--redeliver', 'no-such-id']);
  t.equal(again.code, 1);
  t.match(again.stderr, /No dead letter no-such-id on the device: `earshot deliveries --dead` lists them/);
});

t.test('key: the device key from its settings file, else the one the service generated', async (t) => {
  const dir = t.testdir({ 'config.json': JSON.stringify({ apiKey: 'from-the-settings-0123' }), state: { 'api-key': 'generated-key-0123456789\n' } });
  const fromFile = await earshot(['key'], { EARSHOT_CONFIG: path.join(dir, 'config.json') });
  t.same(fromFile, { code: 0, stdout: 'from-the-settings-0123\n', stderr: '' });
  const generated = await earshot(['key'], { EARSHOT_CONFIG: path.join(dir, 'none.json'), EARSHOT_STATE_DIR: path.join(dir, 'state') });
  t.same(generated, { code: 0, stdout: 'generated-key-0123456789\n', stderr: '' });
  const none = await earshot(['key'], { EARSHOT_CONFIG: path.join(dir, 'none.json'), EARSHOT_STATE_DIR: path.join(dir, 'empty') });
  t.equal(none.code, 1);
  t.match(none.stderr, /No API key found: neither .*none\.json \(apiKey\) nor .*empty\/api-key exists/);
});
