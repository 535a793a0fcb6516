// A large upload goes to the spool file as it arrives: the service's memory does not grow
// with the size of the body.
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import path from 'node:path';
import t from 'tap';

import { startApp, waitForJob } from '../helpers/app.js';

t.test('a 256 MB upload streams to disk without RSS growth', async (t) => {
  const { base, auth, stateDir } = await startApp(t);
  const total = 256 * 1024 * 1024;
  const chunk = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 7919) & 0xff;

  global.gc?.();
  const before = process.memoryUsage().rss;
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 20);
  const result = await new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      `${base}/v1/recognitions`,
      { method: 'POST', headers: { ...auth, 'Content-Type': 'audio/wav', 'Content-Length': String(total) } },
      (res) => {
        let body = '';
        res.on('data', (c) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
  clearInterval(sampler);
  t.equal(result.status, 201, result.body);
  const growthMb = (peak - before) / 2 ** 20;
  t.comment(
    `RSS before ${(before / 2 ** 20).toFixed(0)} MB, peak during the upload ${(peak / 2 ** 20).toFixed(0)} MB (+${growthMb.toFixed(1)} MB) for ${total / 2 ** 20} MB`,
  );
  t.ok(growthMb < 64, `RSS grew ${growthMb.toFixed(1)} MB (< 64 MB) while 256 MB came in`);
  const { id } = JSON.parse(result.body) as { id: string };
  // Not a WAV: the job fails in the decoder, and its spool file is removed.
  const done = await waitForJob(base, auth, id);
  t.match(done, { status: 'failed', error_code: /^ERR_AUDIO/ });
  // The file goes right after the failure is committed (status first: it must survive a crash).
  const upload = path.join(stateDir, 'spool', `${id}.upload`);
  for (let i = 0; i < 100 && existsSync(upload); i++) await new Promise((r) => setTimeout(r, 20));
  t.notOk(existsSync(upload), 'the spool file is gone');
});
