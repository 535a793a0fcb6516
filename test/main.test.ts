// `npm start`'s entry point when it cannot start: one message that says what is wrong
// and what to do, exit code 1, never a stack trace.
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

import t from 'tap';

import { projectRoot } from '../src/paths.js';
import { testServiceEnv } from './helpers/app.js';

async function runMain(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const proc = spawn(process.execPath, [path.join(projectRoot, 'dist/src/main.js')], {
    env: { PATH: process.env.PATH, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  proc.stdout.on('data', (c: Buffer) => (output += c));
  proc.stderr.on('data', (c: Buffer) => (output += c));
  const code = await new Promise<number | null>((resolve) => proc.on('exit', (c) => resolve(c)));
  return { code, output };
}

const noStack = (output: string) => !/^\s+at /m.test(output);

t.test('a missing native addon: "Possible solutions", no stack trace', async (t) => {
  const { code, output } = await runMain({ ...testServiceEnv(t.testdir()), EARSHOT_ADDON: '/nonexistent/earshot.node' });
  t.equal(code, 1);
  t.match(output, /^earshot: Could not load earshot's native addon/m);
  t.match(output, /\/nonexistent\/earshot\.node: Cannot find module/);
  t.match(output, /Possible solutions:\n- Build it: npm run build:native/);
  t.ok(noStack(output), output);
});

t.test("a broken native addon (not a shared object): the same message with the loader's reason", async (t) => {
  const dir = t.testdir();
  const broken = path.join(dir, 'earshot.node');
  writeFileSync(broken, 'this is not an ELF file\n');
  const { code, output } = await runMain({ ...testServiceEnv(dir), EARSHOT_ADDON: broken });
  t.equal(code, 1);
  t.match(output, new RegExp(`${broken.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: .*(invalid ELF header|file too short)`));
  t.match(output, /Possible solutions:/);
  t.ok(noStack(output), output);
});

t.test('a missing model and an invalid setting: what to do, no stack trace', async (t) => {
  const dir = t.testdir();
  const missing = await runMain({ ...testServiceEnv(dir), EARSHOT_MODEL: path.join(dir, 'ggml-none.bin') });
  t.equal(missing.code, 1);
  t.match(missing.output, /Install a model \(scripts\/download-model .*\) or point EARSHOT_MODEL at a ggml model file/);
  t.ok(noStack(missing.output), missing.output);

  const invalid = await runMain({ ...testServiceEnv(dir), EARSHOT_PORT: 'eighty', EARSHOT_AUTH: 'maybe' });
  t.equal(invalid.code, 1);
  t.match(
    invalid.output,
    /earshot: Invalid configuration:\n- EARSHOT_PORT must be an integer from 0 to 65535 \(got "eighty"\)\n- EARSHOT_AUTH must be one of key, none \(got "maybe"\)/,
  );
  t.ok(noStack(invalid.output), invalid.output);
});
