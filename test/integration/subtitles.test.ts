// Subtitles and text of every job, end to end: IBM's GET /v1/recognitions/{id} by Accept
// or ?format=, and Azure's result files by ?format= on the signed content URL (an IBM
// upload is an Azure transcription of one file); JSON stays the default of both.
import t from 'tap';

import type { DecoderScript } from '../../scripts/lib/scripted-decoder.js';
import { apiKey, startApp, waitForJob } from '../helpers/app.js';
import { wav } from '../helpers/pcm.js';
import { scriptedModel } from '../helpers/scripted-models.js';

const script: DecoderScript = [
  { start: 0, end: 1.5, tokens: [' Subtitles', ' for', ' every', ' job', '.'] },
  { start: 1.52, end: 2.5, tokens: [' Even', ' this', ' one', '!'] },
];

const model = await scriptedModel(t, script);
const { base, auth } = await startApp(t, { EARSHOT_MODEL: model });

const created = await fetch(`${base}/v1/recognitions`, { method: 'POST', headers: { ...auth, 'Content-Type': 'audio/wav' }, body: wav(2.5) });
const { id } = (await created.json()) as { id: string };
await waitForJob(base, auth, id);

const get = async (path: string, headers: Record<string, string> = {}) => {
  const res = await fetch(path.startsWith('http') ? path : `${base}${path}`, { headers: { ...auth, ...headers } });
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
};

t.test('IBM: subtitles and text by Accept and by ?format=', async (t) => {
  const vtt = await get(`/v1/recognitions/${id}`, { Accept: 'text/vtt' });
  t.equal(vtt.status, 200);
  t.equal(vtt.type, 'text/vtt; charset=utf-8');
  t.match(vtt.body, /^WEBVTT\n\n00:00:00\.000 --> 00:00:01\.\d{3}\nSubtitles for every job\.\n\n00:00:01\.\d{3} --> 00:00:02\.\d{3}\nEven this one!\n$/);

  const srt = await get(`/v1/recognitions/${id}?format=srt`);
  t.equal(srt.type, 'application/x-subrip; charset=utf-8');
  t.match(srt.body, /^1\n00:00:00,000 --> 00:00:01,\d{3}\nSubtitles for every job\.\n\n2\n/);
  t.same(await get(`/v1/recognitions/${id}`, { Accept: 'application/x-subrip' }), srt, 'the same by Accept');

  const text = await get(`/v1/recognitions/${id}`, { Accept: 'text/plain' });
  t.same(text, { status: 200, type: 'text/plain; charset=utf-8', body: 'Subtitles for every job. Even this one!\n' });

  const plain = await get(`/v1/recognitions/${id}`, { Accept: 'application/json' });
  t.match(JSON.parse(plain.body), { id, status: 'completed', results: [{}] }, 'JSON as before');
  t.match(JSON.parse((await get(`/v1/recognitions/${id}`)).body), { id, status: 'completed' }, 'and without Accept');

  const bad = await get(`/v1/recognitions/${id}?format=docx`);
  t.equal(bad.status, 400);
  t.match(JSON.parse(bad.body), { code: 400, error: /json, srt, vtt or txt for format/ });
  const unacceptable = await get(`/v1/recognitions/${id}`, { Accept: 'image/png' });
  t.equal(unacceptable.status, 406);
});

t.test('Azure: ?format= on a result file’s content URL; the report has none; JSON stays the default', async (t) => {
  const key = { 'Ocp-Apim-Subscription-Key': apiKey };
  const files = await fetch(`${base}/speechtotext/v3.1/transcriptions/${id}/files`, { headers: key });
  t.equal(files.status, 200);
  const { values } = (await files.json()) as { values: Array<{ kind: string; links: { contentUrl: string } }> };
  const result = values.find((f) => f.kind === 'Transcription')!;
  const report = values.find((f) => f.kind === 'TranscriptionReport')!;

  const json = await fetch(result.links.contentUrl);
  t.match(await json.json(), { combinedRecognizedPhrases: [{}] }, 'JSON by default');
  const srt = await get(`${result.links.contentUrl}&format=srt`, {});
  t.equal(srt.status, 200);
  t.equal(srt.type, 'application/x-subrip; charset=utf-8');
  t.match(srt.body, /^1\n00:00:00,000 --> 00:00:01,\d{3}\nSubtitles for every job\.\n/);
  const vtt = await fetch(`${result.links.contentUrl}&format=vtt`);
  t.match(await vtt.text(), /^WEBVTT\n\n/);
  t.equal(await (await fetch(`${result.links.contentUrl}&format=txt`)).text(), 'Subtitles for every job. Even this one!\n');

  const none = await fetch(`${report.links.contentUrl}&format=srt`);
  t.equal(none.status, 400);
  t.match(await none.json(), { code: 'InvalidRequest', innerError: { code: 'InvalidParameterValue' } });
  const bad = await fetch(`${result.links.contentUrl}&format=pdf`);
  t.equal(bad.status, 400);
});
