import { access, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

import { CliError, type Client } from './client.js';
import { type Output, Progress } from './progress.js';

export const formats = ['txt', 'srt', 'vtt', 'json'] as const;
export type Format = (typeof formats)[number];

export interface TranscribeOptions {
  files: string[];
  format: Format;
  language?: string;
  /** `-`: stdout; a directory: results there; undefined: beside each input (FILE.srt). */
  output?: string;
  client: Client;
  stdout: Output;
  stderr: Output;
  /** How often a job's status is asked for (ms). */
  pollMs?: number;
}

/** The Content-Type of a file by its extension; the device detects the rest from the data. */
const typesByExtension: Record<string, string> = {
  '.wav': 'audio/wav',
  '.flac': 'audio/flac',
  '.ogg': 'audio/ogg',
  '.oga': 'audio/ogg',
  '.opus': 'audio/ogg;codecs=opus',
  '.mp3': 'audio/mpeg',
  '.aif': 'audio/aiff',
  '.aiff': 'audio/aiff',
};
export const contentTypeOf = (file: string) => typesByExtension[path.extname(file).toLowerCase()] ?? 'application/octet-stream';

interface Recognition {
  id: string;
  status: 'waiting' | 'processing' | 'completed' | 'failed';
  progress?: number;
  error?: string;
  processing_times?: { audio_seconds: number };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Where the result of `file` goes (undefined: stdout). */
function destination(file: string, format: Format, output: string | undefined): string | undefined {
  if (output === '-') return undefined;
  const name = `${path.basename(file)}.${format}`;
  return output ? path.join(output, name) : `${file}.${format}`;
}

/**
 * Transcribes every file on the device: all are uploaded first (the device queues them),
 * then each is followed to the end, with a bar per file on a terminal. Results go beside
 * the inputs (`jfk.mp3.srt`), into a directory, or to stdout in the order given. Resolves
 * with how many failed.
 */
export async function transcribe(o: TranscribeOptions): Promise<number> {
  if (o.files.length === 0) throw new CliError('Nothing to transcribe: give one or more audio files (earshot transcribe FILE…)', 2);
  for (const file of o.files) {
    try {
      await access(file);
    } catch {
      throw new CliError(`Cannot read ${file}: check the path.`, 2);
    }
  }
  if (o.output && o.output !== '-') {
    const dir = o.output;
    const isDir = await stat(dir).then(
      (st) => st.isDirectory(),
      () => false,
    );
    if (!isDir) throw new CliError(`-o ${dir}: no such directory (give an existing directory, or - for stdout)`, 2);
  }
  const progress = new Progress(o.stderr);
  const query = new URLSearchParams();
  if (o.language) query.set('language', o.language);
  // The JSON result carries word timings and confidences; subtitles come from segments.
  if (o.format === 'json') {
    query.set('timestamps', 'true');
    query.set('word_confidence', 'true');
  }
  let failed = 0;
  const started = Date.now();
  try {
    const jobs: Array<{ file: string; id: string; bar: ReturnType<Progress['file']> }> = [];
    for (const file of o.files) {
      const bar = progress.file(path.basename(file));
      const id = await o.client.upload(file, query, contentTypeOf(file), (sent, total) => bar.update('upload', total ? (sent / total) * 100 : 100));
      bar.update('waiting', 0);
      jobs.push({ file, id, bar });
    }
    const results: Array<{ file: string; text: string } | undefined> = [];
    for (const { file, id, bar } of jobs) {
      let job: Recognition;
      for (;;) {
        job = await o.client.json<Recognition>('GET', `/v1/recognitions/${id}`, `Following the job of ${file}`);
        if (job.status === 'completed' || job.status === 'failed') break;
        bar.update(job.status, job.status === 'processing' ? (job.progress ?? 0) : 0);
        await sleep(o.pollMs ?? 500);
      }
      if (job.status === 'failed') {
        bar.update('failed', 100);
        progress.log(`${file}: failed on the device: ${job.error ?? 'no reason given'} (job ${id})`);
        failed++;
        results.push(undefined);
        continue;
      }
      bar.update('done', 100);
      const res = await o.client.request('GET', `/v1/recognitions/${id}${o.format === 'json' ? '' : `?format=${o.format}`}`, `Fetching the result of ${file}`);
      const text = o.format === 'json' ? `${JSON.stringify(await res.json(), null, 2)}\n` : await res.text();
      const target = destination(file, o.format, o.output);
      const seconds = job.processing_times?.audio_seconds;
      if (target) {
        await writeFile(target, text);
        progress.log(`${file} → ${target}${seconds !== undefined ? ` (${seconds.toFixed(1)} s of audio)` : ''}`);
      }
      results.push({ file, text });
    }
    progress.stop();
    // Only once every bar is done: the transcripts do not mix with them on a terminal.
    if (o.output === '-') for (const r of results) if (r) o.stdout.write(r.text);
    if (o.files.length > 1) o.stderr.write(`${o.files.length - failed} of ${o.files.length} transcribed in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  } finally {
    progress.stop();
  }
  return failed;
}
