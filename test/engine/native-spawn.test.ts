// spawnNative(): the addon's posix_spawn() and its reaper, with real processes.
import { spawn } from 'node:child_process';
import { chmodSync, closeSync, mkdtempSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';

import { loadAddon } from '../../src/engine/native.js';
import { spawnNative } from '../../src/engine/native-spawn.js';

/** Everything that comes through a pipe's read end (a net.Socket over it), as text. */
function readAll(fd: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new Socket({ fd, readable: true, writable: false });
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
    });
    socket.on('error', reject);
    socket.on('close', () => resolve(text));
  });
}

/** Runs `args` with its stdout in a pipe (and `extra` as fds 3...); its output and exit. */
async function capture(file: string, args: string[], extra: Array<number | null> = []) {
  const out = loadAddon().openPipe();
  let child: ReturnType<typeof spawnNative>;
  try {
    child = spawnNative(file, args, { childFds: [null, out.write, null, ...extra] });
  } finally {
    closeSync(out.write);
  }
  const [text, exit] = await Promise.all([readAll(out.read), child.exited]);
  return { text, exit, child };
}

t.test('a missing or non-executable binary throws as child_process would, with the errno code', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'earshot-spawn-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const missing = join(dir, 'no-such-binary');
  t.throws(() => spawnNative(missing, [], { childFds: [null, null, null] }), { code: 'ENOENT', syscall: 'spawn', message: `spawn ${missing} ENOENT` });
  const notExecutable = join(dir, 'not-executable');
  writeFileSync(notExecutable, '#!/bin/sh\nexit 0\n');
  chmodSync(notExecutable, 0o644);
  t.throws(() => spawnNative(notExecutable, [], { childFds: [null, null, null] }), { code: 'EACCES' });
  t.throws(() => spawnNative('/bin/true', [], { childFds: [null, null] }), RangeError, 'fds 0, 1 and 2 must be given');
});

t.test('exit codes and signals are reported, and kill() stops sending once the child has ended', async (t) => {
  const seven = spawnNative('/bin/sh', ['-c', 'exit 7'], { childFds: [null, null, null] });
  t.type(seven.pid, 'number');
  t.same(await seven.exited, { code: 7, signal: null });
  t.same(seven.exit, { code: 7, signal: null });
  t.equal(seven.kill('SIGKILL'), false, 'no signal to a child that has ended (its pid may be reused)');

  const own = spawnNative('/bin/sh', ['-c', 'kill -TERM $$; sleep 5'], { childFds: [null, null, null] });
  t.same(await own.exited, { code: null, signal: 'SIGTERM' });

  const sleeper = spawnNative('/bin/sleep', ['30'], { childFds: [null, null, null] });
  t.equal(sleeper.exit, null);
  t.equal(sleeper.kill('SIGKILL'), true);
  t.same(await sleeper.exited, { code: null, signal: 'SIGKILL' });
});

t.test('the environment is exactly the one given', async (t) => {
  const none = await capture('/usr/bin/env', []);
  t.equal(none.text, '');
  const out = loadAddon().openPipe();
  const child = spawnNative('/usr/bin/env', [], { childFds: [null, out.write, null], env: { A: '1', B: 'two words' } });
  closeSync(out.write);
  t.equal(await readAll(out.read), 'A=1\nB=two words\n');
  t.same(await child.exited, { code: 0, signal: null });
});

t.test('the child writes to fd 3 and the parent reads it', async (t) => {
  const pcm = loadAddon().openPipe();
  const out = loadAddon().openPipe();
  const child = spawnNative('/bin/sh', ['-c', 'printf "through fd 3" >&3; echo stdout'], { childFds: [null, out.write, null, pcm.write] });
  closeSync(pcm.write);
  closeSync(out.write);
  const [three, stdout, exit] = await Promise.all([readAll(pcm.read), readAll(out.read), child.exited]);
  t.equal(three, 'through fd 3');
  t.equal(stdout, 'stdout\n');
  t.same(exit, { code: 0, signal: null });
});

t.test('descriptors are mapped as asked even when a source is its own target or another mapping’s', async (t) => {
  const a = loadAddon().openPipe();
  const b = loadAddon().openPipe();
  const out = loadAddon().openPipe();
  // Every source below is also a target: child fd b.write gets the parent's a.write and the
  // other way round, a.read keeps its number; a naive dup2 sequence would mix them up.
  const fds = [a.read, a.write, b.read, b.write, out.write];
  const count = Math.max(...fds) + 1;
  t.ok(count <= 64, `the test process's descriptors are few enough (${count})`);
  const childFds: Array<number | null> = new Array(count).fill(null);
  childFds[1] = out.write;
  childFds[a.write] = b.write;
  childFds[b.write] = a.write;
  childFds[a.read] = a.read;
  const wanted = [a.write, b.write, a.read];
  const child = spawnNative('/bin/sh', ['-c', 'for n in "$@"; do echo "$n $(readlink /proc/self/fd/$n)"; done', 'sh', ...wanted.map(String)], { childFds });
  closeSync(out.write);
  const text = await readAll(out.read);
  t.same(await child.exited, { code: 0, signal: null });
  const target = (fd: number): string => readlinkSync(`/proc/self/fd/${fd}`);
  t.equal(text, `${a.write} ${target(b.write)}\n${b.write} ${target(a.write)}\n${a.read} ${target(a.read)}\n`);
  t.not(target(a.write), target(b.write), 'two different pipes');
  for (const fd of [a.read, a.write, b.read, b.write]) closeSync(fd); // out.read: closed by its socket
});

t.test('no other descriptor of the parent reaches the child', async (t) => {
  const parentFds = readdirSync('/proc/self/fd').length;
  t.ok(parentFds > 5, `the parent has descriptors to leak (${parentFds})`);
  // ls opens /proc/self/fd itself as the lowest free descriptor.
  const three = await capture('/bin/ls', ['/proc/self/fd']);
  t.same(three.text.trim().split('\n').map(Number), [0, 1, 2, 3]);
  const extra = loadAddon().openPipe();
  const four = await capture('/bin/ls', ['/proc/self/fd'], [extra.write]);
  closeSync(extra.write);
  closeSync(extra.read);
  t.same(four.text.trim().split('\n').map(Number), [0, 1, 2, 3, 4]);
});

t.test('children of child_process (libuv reaps its own by pid) and of the addon do not steal each other’s exits', async (t) => {
  const theirs = Array.from({ length: 4 }, (_, i) => {
    const child = spawn('/bin/sh', ['-c', `sleep 0.${i + 1}; exit ${20 + i}`], { stdio: 'ignore' });
    return new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  });
  const ours = Array.from({ length: 20 }, (_, i) => spawnNative('/bin/sh', ['-c', `exit ${i}`], { childFds: [null, null, null] }).exited);
  const slow = spawnNative('/bin/sh', ['-c', 'sleep 0.5; exit 42'], { childFds: [null, null, null] }).exited;
  t.same(
    await Promise.all(ours),
    Array.from({ length: 20 }, (_, i) => ({ code: i, signal: null })),
  );
  t.same(await Promise.all(theirs), [20, 21, 22, 23]);
  t.same(await slow, { code: 42, signal: null });
});
