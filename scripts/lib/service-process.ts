// earshot's service as `npm start` runs it (dist/src/main.js in a child process), on a free
// loopback port: for the tests that kill or signal it and for the benchmarks that measure
// it through its HTTP API.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

import { projectRoot } from '../../src/paths.js';

export interface ServiceProcess {
  proc: ChildProcess;
  base: string;
  /** The lines it printed (stdout and stderr: what journald would store). */
  output: string[];
  /** Bytes it printed. */
  outputBytes(): number;
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
}

/**
 * Starts the service with exactly `env` (EARSHOT_PORT=0 for a free port), and libuv's pool
 * sized as `npm start` sizes it unless `env` says otherwise; resolves once
 * it logged "ready", rejects with its output when it exits before. `echoStderr` passes
 * its stderr on (the benchmarks show warnings as they come).
 */
export async function startServiceProcess(env: NodeJS.ProcessEnv, options: { echoStderr?: boolean } = {}): Promise<ServiceProcess> {
  const proc = spawn(process.execPath, [path.join(projectRoot, 'dist/src/main.js')], {
    env: { UV_THREADPOOL_SIZE: '16', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  let bytes = 0;
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const base = await new Promise<string>((resolve, reject) => {
    let port = '';
    // Per stream, what came after its last newline: a line can span two chunks.
    const partial = { stdout: '', stderr: '' };
    const onChunk = (stream: keyof typeof partial, chunk: Buffer) => {
      bytes += chunk.length;
      const lines = (partial[stream] + chunk.toString()).split('\n');
      partial[stream] = lines.pop()!;
      for (const line of lines.filter(Boolean)) {
        output.push(line);
        const m = / listening .*port=(\d+)/.exec(line);
        if (m) port = m[1]!;
        if (/ ready /.test(line)) resolve(`http://127.0.0.1:${port}`);
      }
    };
    for (const stream of ['stdout', 'stderr'] as const) {
      proc[stream]!.on('end', () => {
        if (partial[stream]) output.push(partial[stream]);
        partial[stream] = '';
      });
    }
    proc.stdout!.on('data', (chunk: Buffer) => onChunk('stdout', chunk));
    proc.stderr!.on('data', (chunk: Buffer) => {
      onChunk('stderr', chunk);
      if (options.echoStderr) process.stderr.write(chunk);
    });
    void exited.then((code) => reject(new Error(`service exited (${code}) before it was ready:\n${output.join('\n')}`)));
  });
  return { proc, base, output, outputBytes: () => bytes, exited };
}
