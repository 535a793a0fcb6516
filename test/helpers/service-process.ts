import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';

import { projectRoot } from '../../src/paths.js';
import { testServiceEnv } from './app.js';

export interface ServiceProcess {
  proc: ChildProcess;
  base: string;
  output: string[];
  /** Resolves with the exit code (or signal name). */
  exited: Promise<number | string>;
}

/**
 * `npm start`'s entry point (dist/src/main.js) as a child process on a free port, for
 * tests that kill it. Resolves once it logged "ready".
 */
export async function spawnService(stateDir: string, env: Record<string, string> = {}): Promise<ServiceProcess> {
  const proc = spawn(process.execPath, [path.join(projectRoot, 'dist/src/main.js')], {
    env: { PATH: process.env.PATH, ...testServiceEnv(stateDir), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const output: string[] = [];
  const exited = new Promise<number | string>((resolve) => proc.on('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const base = await new Promise<string>((resolve, reject) => {
    let port = '';
    const onLine = (chunk: Buffer) => {
      for (const line of chunk.toString().split('\n').filter(Boolean)) {
        output.push(line);
        const m = / listening .*port=(\d+)/.exec(line);
        if (m) port = m[1]!;
        if (/ ready /.test(line)) resolve(`http://127.0.0.1:${port}`);
      }
    };
    proc.stdout!.on('data', onLine);
    proc.stderr!.on('data', onLine);
    void exited.then((code) => reject(new Error(`service exited (${code}) before it was ready:\n${output.join('\n')}`)));
  });
  return { proc, base, output, exited };
}
