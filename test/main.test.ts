// `npm start`'s entry point when it cannot start: one message that says what is wrong
// and what to do, exit code 1, never a stack trace.
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import t from 'tap';

import { projectRoot } from '../src/paths.js';
import { testServiceEnv } from './helpers/app.js';
import { spawnService } from './helpers/service-process.js';

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

t.test('an empty, short or garbled API key file: refused at start with what to do, no stack trace', async (t) => {
  for (const [content, problem] of [
    ['', /is empty/],
    ['\n', /is empty/],
    ['short-key\n', /is 9 characters long, shorter than the 16 required/],
    ['a key with spaces in it\n', /contains spaces or characters outside printable ASCII/],
  ] as const) {
    const dir = t.testdir();
    const file = path.join(dir, 'api-key');
    writeFileSync(file, content, { mode: 0o600 });
    // An empty variable counts as unset: the key comes from the file.
    const { code, output } = await runMain({ ...testServiceEnv(dir), EARSHOT_API_KEY: '' });
    t.equal(code, 1, JSON.stringify(content));
    t.match(output, new RegExp(`^earshot: The API key in ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} `, 'm'));
    t.match(output, problem);
    t.match(output, /delete the file to have a new key generated at the next start/);
    t.ok(noStack(output), output);
  }
  const short = await runMain({ ...testServiceEnv(t.testdir()), EARSHOT_API_KEY: 'hunter2' });
  t.equal(short.code, 1);
  t.match(short.output, /EARSHOT_API_KEY is 7 characters long, shorter than the 16 required \(value not shown\)/);
  t.notMatch(short.output, /hunter2/, 'a refused key is not echoed');
});

t.test('a generated API key: written 0600, the log says where, the key itself is not printed', async (t) => {
  const dir = t.testdir();
  const service = await spawnService(dir, { EARSHOT_API_KEY: '' });
  t.teardown(() => {
    service.proc.kill('SIGKILL');
  });
  const file = path.join(dir, 'api-key');
  const key = readFileSync(file, 'utf8').trim();
  t.match(key, /^[A-Za-z0-9_-]{32}$/);
  t.equal(statSync(file).mode & 0o777, 0o600);
  t.same(
    readdirSync(dir).filter((f) => f.includes('api-key')),
    ['api-key'],
    'no temporary file left',
  );
  const output = service.output.join('\n');
  t.match(output, new RegExp(`generated an API key.* file=${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`));
  t.notOk(output.includes(key), 'the key is not in the output (the journal)');
  const res = await fetch(`${service.base}/v1/recognitions`, { headers: { Authorization: `Bearer ${key}` } });
  t.equal(res.status, 200, 'the key in the file is the key');
  t.equal((await fetch(`${service.base}/v1/recognitions`, { headers: { Authorization: 'Bearer' } })).status, 401);
  service.proc.kill('SIGTERM');
  t.equal(await service.exited, 0);
});

t.test("libuv's pool: npm start sizes it; started without that, the service says what to do", async (t) => {
  const dir = t.testdir();
  const pooled = await spawnService(path.join(dir, 'a'));
  t.teardown(() => void pooled.proc.kill('SIGKILL'));
  t.notMatch(pooled.output.join('\n'), /UV_THREADPOOL_SIZE/, 'no warning with the pool sized');
  const bare = await spawnService(path.join(dir, 'b'), { UV_THREADPOOL_SIZE: '' });
  t.teardown(() => void bare.proc.kill('SIGKILL'));
  t.match(bare.output.join('\n'), /UV_THREADPOOL_SIZE is not set: .* start with npm start or set UV_THREADPOOL_SIZE=16/);
  const pkg = JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  t.match(pkg.scripts.start, /^UV_THREADPOOL_SIZE=\$\{UV_THREADPOOL_SIZE:-16\} node dist\/src\/main\.js$/);
  t.match(readFileSync(path.join(projectRoot, 'systemd/earshot.service'), 'utf8'), /^Environment=UV_THREADPOOL_SIZE=16$/m);
});
