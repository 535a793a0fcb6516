// earshot's service as `npm start` runs it (dist/src/main.js in a child process), for the
// benchmarks that measure it through its HTTP API (scripts/bench.ts, scripts/bench/).
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

import { projectRoot } from '../../src/paths.js';

export const benchApiKey = 'bench-key';
export const benchAuth = { Authorization: `Bearer ${benchApiKey}` };

export interface BenchService {
  proc: ChildProcess;
  base: string;
  /** Bytes the service printed (stdout and stderr: what journald would store). */
  outputBytes(): number;
  /** Lines it printed. */
  outputLines(): number;
}

/**
 * Starts the service on a free loopback port with `stateDir`, `model` and `threads`;
 * resolves once it logged "ready". `env` adds or overrides EARSHOT_* settings. Its stderr
 * is passed on.
 */
export async function startService(stateDir: string, model: string, threads: number, env: Record<string, string> = {}): Promise<BenchService> {
  const proc = spawn(process.execPath, [path.join(projectRoot, 'dist/src/main.js')], {
    env: {
      ...process.env,
      EARSHOT_HOST: '127.0.0.1',
      EARSHOT_PORT: '0',
      EARSHOT_STATE_DIR: stateDir,
      EARSHOT_MODEL: model,
      EARSHOT_API_KEY: benchApiKey,
      EARSHOT_THREADS: String(threads),
      EARSHOT_CALLBACK_CIDRS: '127.0.0.0/8',
      EARSHOT_TEMPERATURE_FALLBACK: 'false',
      EARSHOT_MAX_QUEUED: '100000',
      EARSHOT_LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let bytes = 0;
  let lines = 0;
  const count = (chunk: Buffer) => {
    bytes += chunk.length;
    for (const b of chunk) if (b === 10) lines++;
  };
  proc.stderr!.on('data', (chunk: Buffer) => {
    count(chunk);
    process.stderr.write(chunk);
  });
  const base = await new Promise<string>((resolve, reject) => {
    let port = '';
    proc.stdout!.on('data', (chunk: Buffer) => {
      count(chunk);
      for (const line of chunk.toString().split('\n')) {
        const m = / listening .*port=(\d+)/.exec(line);
        if (m) port = m[1]!;
        if (/ ready /.test(line)) resolve(`http://127.0.0.1:${port}`);
      }
    });
    proc.on('exit', (code) => reject(new Error(`service exited with ${code}`)));
  });
  return { proc, base, outputBytes: () => bytes, outputLines: () => lines };
}

/** POST /v1/recognitions with a WAV body; `at`: when the 201 arrived. */
export async function submit(base: string, wav: Buffer, query = ''): Promise<{ id: string; at: number }> {
  const res = await fetch(`${base}/v1/recognitions${query}`, {
    method: 'POST',
    headers: { ...benchAuth, 'Content-Type': 'audio/wav' },
    body: wav,
  });
  const at = performance.now();
  if (res.status !== 201) throw new Error(`POST: ${res.status} ${await res.text()}`);
  return { id: ((await res.json()) as { id: string }).id, at };
}

/** GET /v1/recognitions/{id}. */
export async function getJob(base: string, id: string): Promise<Record<string, any>> {
  return (await (await fetch(`${base}/v1/recognitions/${id}`, { headers: benchAuth })).json()) as Record<string, any>;
}
