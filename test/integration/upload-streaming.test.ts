// A large upload goes to the spool file as it arrives: the service's memory does not grow
// with the size of the body.
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import path from 'node:path';
import t from 'tap';

import { startApp, waitForJob } from '../helpers/app.js';
import { sendWithFlatMemory } from '../helpers/body-memory.js';

t.test('256 MB and 512 MB uploads stream to disk: memory does not grow with the body', async (t) => {
  const { base, auth, stateDir } = await startApp(t);
  const chunk = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 7919) & 0xff;

  const send = (total: number) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
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
  const result = await sendWithFlatMemory(t, send);
  t.equal(result.status, 201, result.body);
  const { id } = JSON.parse(result.body) as { id: string };
  // Not a WAV: the job fails in the decoder, and its spool file is removed.
  const done = await waitForJob(base, auth, id);
  t.match(done, { status: 'failed', error_code: /^ERR_AUDIO/ });
  // The file goes right after the failure is committed (status first: it must survive a crash).
  const upload = path.join(stateDir, 'spool', `${id}.upload`);
  for (let i = 0; i < 100 && existsSync(upload); i++) await new Promise((r) => setTimeout(r, 20));
  t.notOk(existsSync(upload), 'the spool file is gone');
});
