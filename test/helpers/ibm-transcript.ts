// jfk.mp3 through the real service (dist/src/main.js in a child process of this Node) and
// its IBM API: the transcript, and what this Node and system are. Imported by tests, and
// run as a script by test/native/trixie-userland.test.ts inside another userland, where it
// prints the result as JSON.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chooseUws, thisSystem } from '../../src/http/uws.js';
import { apiKey, waitForJob } from './app.js';
import { jfkMp3 } from './models.js';
import { spawnService } from './service-process.js';

export interface IbmTranscript {
  node: string;
  glibc: string | undefined;
  /** The uWebSockets.js package the service loaded, from its "listening" log line. */
  uws: string;
  /** The one this process chooses (chooseUws): the same Node on the same system. */
  chosen: string;
  status: string;
  /** Every result's first alternative, in order. */
  transcript: string[];
  seconds: number;
}

export async function ibmTranscript(): Promise<IbmTranscript> {
  const started = Date.now();
  const stateDir = mkdtempSync(path.join(tmpdir(), 'earshot-ibm-transcript-'));
  const service = await spawnService(stateDir);
  try {
    const auth = { Authorization: `Basic ${Buffer.from(`apikey:${apiKey}`).toString('base64')}` };
    const res = await fetch(`${service.base}/v1/recognitions`, {
      method: 'POST',
      headers: { ...auth, 'Content-Type': 'audio/mp3' },
      body: readFileSync(jfkMp3),
    });
    if (res.status !== 201) throw new Error(`POST /v1/recognitions: ${res.status} ${await res.text()}`);
    const { id } = (await res.json()) as { id: string };
    const done = await waitForJob(service.base, auth, id);
    const results = (done.results ?? []) as Array<{ results: Array<{ alternatives: Array<{ transcript: string }> }> }>;
    const system = thisSystem();
    const choice = chooseUws(system);
    return {
      node: process.version,
      glibc: system.glibc,
      uws: /\blistening\b.*\buws=(\S+)/.exec(service.output.join('\n'))?.[1] ?? 'not logged',
      chosen: choice.ok ? choice.build.packageName : `refused: ${choice.reason}`,
      status: done.status,
      transcript: results.flatMap((r) => r.results.map((x) => x.alternatives[0]?.transcript ?? '')),
      seconds: (Date.now() - started) / 1000,
    };
  } finally {
    service.proc.kill('SIGTERM');
    await service.exited;
    rmSync(stateDir, { recursive: true, force: true });
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  process.stdout.write(`${JSON.stringify(await ibmTranscript())}\n`);
}
