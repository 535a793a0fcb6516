// scripts/bench through its real entry point (the bash wrapper) on the smallest matrix:
// the `test` shape generated into a temporary models directory (f16 and q5_0 by
// make-test-model, q4_0 by whisper-quantize), flash attention on, 35 s files, and the
// service part. Timings are not asserted (the machine is shared); the shape of the
// report is.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import t from 'tap';

import { modelFileName, parseCli } from '../../scripts/bench.js';
import { projectRoot } from '../../src/paths.js';

const CLI = path.join(projectRoot, 'scripts', 'bench');

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(CLI, args, { env: { PATH: process.env.PATH }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

t.test('options', async (t) => {
  const quick = parseCli(['--quick']);
  t.not(quick, 'help');
  if (quick === 'help') return;
  t.same(quick.models, ['tiny.en']);
  t.same(quick.quants, ['q5_1']);
  t.same(quick.flashAttn, [true]);
  t.equal(quick.longSeconds, 60);
  t.equal(quick.serviceSeconds, 60);

  const full = parseCli([]);
  if (full === 'help') return t.fail('help');
  t.same(full.quants, ['f16', 'q8_0', 'q5_0', 'q5_1', 'q4_0']);
  t.same(full.flashAttn, [true, false]);

  const picked = parseCli(['--quants', 'q4_0,f16', '--threads', '1,2', '--fa', 'off']);
  if (picked === 'help') return t.fail('help');
  t.same(picked.quants, ['f16', 'q4_0'], 'table order, whatever the order given');
  t.same(picked.threads, [1, 2]);
  t.same(picked.flashAttn, [false]);

  t.throws(() => parseCli(['--quants', 'q3_k']), /Expected some of f16, q8_0, q5_0, q5_1, q4_0 for --quants but received q3_k/);
  t.throws(() => parseCli(['--models', 'tiny.en-q5_1']), /without a quantization suffix/);
  t.throws(() => parseCli(['--fa', 'yes']), /Expected on, off or on,off for --fa/);
  t.throws(() => parseCli(['--clip-seconds', '12']), /from 1 to 11 for --clip-seconds/);
  t.equal(modelFileName('tiny.en', 'f16'), 'ggml-tiny.en.bin');
  t.equal(modelFileName('base.en', 'q4_0'), 'ggml-base.en-q4_0.bin');

  const usage = await runCli(['--runs', '0']);
  t.equal(usage.code, 2);
  t.match(usage.stderr, /Expected an integer from 1 to 100 for --runs but received 0/);
});

t.test('a tiny configuration end to end', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'earshot-bench-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const json = path.join(dir, 'out.json');
  const run = await runCli([
    '--models', 'test.en',
    '--quants', 'q5_0,q4_0',
    '--fa', 'on',
    '--threads', '2',
    '--long-seconds', '35',
    '--service-seconds', '35',
    '--models-dir', dir,
    '--json', json,
  ]);
  t.equal(run.code, 0, run.code === 0 ? 'exits 0' : run.stderr);
  t.ok(existsSync(path.join(dir, 'generated', 'ggml-test.en-q4_0.bin')), 'q4_0 made with whisper-quantize');
  t.ok(existsSync(path.join(dir, 'generated', 'ggml-test.en-q5_0.bin.json')), 'q5_0 made by make-test-model, with its sidecar');

  // The markdown: the header, two rows, the service section, no claim of Pi figures here.
  t.match(run.stdout, /\| model \| quant \| MB \| threads \| FA \| load ms/);
  const rows = run.stdout.split('\n').filter((l) => l.startsWith('| test.en (random) |'));
  t.equal(rows.length, 2);
  t.match(rows[0], /\| q5_0 \|/);
  t.match(rows[1], /\| q4_0 \|/);
  t.match(run.stdout, /GET \/v1\/recognitions\/\{id\} while a job runs: \d+ requests, p50 [\d.]+ ms, p99 [\d.]+ ms/);
  t.match(run.stdout, /per transcribed hour: [\d.]+ MB written/);
  t.match(run.stdout, /load average \(1, 5, 15 min\)/);
  t.match(run.stdout, /OMP_WAIT_POLICY=PASSIVE/);
  if (!(await readFile('/proc/device-tree/model', 'utf8').catch(() => '')).includes('Raspberry Pi')) {
    t.match(run.stdout, /Not a Raspberry Pi: these are .* figures, not Pi figures/);
  }

  const report = JSON.parse(await readFile(json, 'utf8'));
  t.ok(report.machine.commit);
  t.ok(report.machine.systemInfo.includes('CPU'));
  t.ok(report.machine.cmake.EARSHOT_PRESET, 'the preset from CMakeCache.txt');
  t.equal(report.machine.ompWaitPolicy, 'PASSIVE');
  t.equal(report.rows.length, 2);
  for (const row of report.rows) {
    t.equal(row.randomWeights, true);
    t.equal(row.whisperCpp.benchSystemInfo, report.machine.systemInfo, 'whisper-bench runs the same build');
    for (const x of [row.earshot.loadMs, row.earshot.encoderMs, row.earshot.clipRtf, row.earshot.longRtf, row.earshot.peakRssMb]) t.ok(x > 0);
    for (const x of [row.whisperCpp.benchEncoderMs, row.whisperCpp.cliEncoderMs, row.whisperCpp.clipRtf, row.whisperCpp.longRtf]) t.ok(x > 0);
    for (const x of Object.values(row.ratio) as number[]) t.ok(Number.isFinite(x) && x > 0);
    t.equal(row.sameText, true, 'the addon and whisper-cli print the same transcript');
    t.equal(row.earshot.runs.long[0].encodeRuns >= 2, true, 'a 35 s file takes two 30 s encoder windows');
  }
  const s = report.service;
  t.ok(s.status.requests > 0);
  t.ok(s.status.p99Ms >= s.status.p50Ms);
  t.ok(s.peakRssMb > 0);
  if (s.fileSystem !== 'tmpfs') t.ok(s.writes.writeBytes >= s.writes.uploadBytes, 'the spooled upload is counted');
  t.ok(Object.keys(s.stateFiles).some((f) => f.endsWith('data.mdb')), 'LMDB lives in the state directory');
});
