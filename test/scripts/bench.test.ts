// The benchmarks through their one entry point, `npm run bench --`: the engine suite on
// the smallest matrix (the `test` shape generated into a temporary models directory: f16
// and q5_0 by make-test-model, q4_0 by whisper-quantize; flash attention on, 35 s files,
// and the service part), then the addon, api and delivery suites on the test model with
// small counts, and the fleet suite against a real nats-server. Timings are not asserted
// (the machine is shared); the figures printed are.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import t from 'tap';

import { modelFileName, parseCli } from '../../scripts/bench.js';
import { projectRoot } from '../../src/paths.js';

function runCli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('npm', ['run', '--silent', 'bench', '--', ...args], {
      cwd: projectRoot,
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
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
  t.same(quick.suites, ['engine'], 'the engine suite by default');
  t.equal(quick.runs, undefined, "each suite's own number of runs unless given");

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

  const all = parseCli(['--suite', 'all']);
  if (all === 'help') return t.fail('help');
  t.same(all.suites, ['engine', 'addon', 'api', 'delivery', 'short', 'fleet']);
  t.equal(all.fleetJobs, 10);
  const fleet = parseCli(['--suite', 'fleet', '--fleet-jobs', '4']);
  if (fleet === 'help') return t.fail('help');
  t.same([fleet.suites, fleet.fleetJobs], [['fleet'], 4]);
  t.throws(() => parseCli(['--fleet-jobs', '0']), /Expected an integer from 1 to 10000 for --fleet-jobs but received 0/);
  const some = parseCli(['--suite', 'delivery,api', '--concurrency', 'default,16', '--rss-minutes', '1', '--runs', '2']);
  if (some === 'help') return t.fail('help');
  t.same(some.suites, ['api', 'delivery'], 'in the order of --suite all');
  t.same(some.concurrency, [undefined, 16]);
  t.same(some.rssMinutes, [1]);
  t.equal(some.runs, 2);
  t.same(all.rssMinutes, [1, 30]);
  t.equal(all.submitSeconds, 10);
  t.same([all.deliveries, all.hooks, all.jobs], [10000, 10, 10]);
  t.throws(() => parseCli(['--suite', 'web']), /Expected some of engine, addon, api, delivery, short, fleet or all for --suite but received web/);
  t.throws(() => parseCli(['--concurrency', 'many']), /Expected an integer from 1 to 256 for --concurrency but received many/);
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
    '--models',
    'test.en',
    '--quants',
    'q5_0,q4_0',
    '--fa',
    'on',
    '--threads',
    '2',
    '--long-seconds',
    '35',
    '--service-seconds',
    '35',
    '--models-dir',
    dir,
    '--json',
    json,
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
  t.match(run.stdout, /per transcribed hour: [\d.]+ MB written, [\d.]+ MB beyond the upload/);
  t.match(run.stdout, /the spool beyond the job's upload while it ran: at most 0\.0 MB allocated \(no other file\)/);
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
  t.same(s.writes.spoolExtras, [], 'decoded audio is never spooled');
  t.equal(s.writes.peakSpoolExtraBytes, 0);
  t.ok(
    Object.keys(s.stateFiles).some((f) => f.endsWith('data.mdb')),
    'LMDB lives in the state directory',
  );
});

t.test('the addon, api and delivery suites, one run each', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'earshot-bench-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const json = path.join(dir, 'out.json');
  const run = await runCli([
    '--suite',
    'addon,api,delivery',
    '--model',
    'test.en-q5_0',
    '--threads',
    '2',
    '--runs',
    '1',
    '--rss-minutes',
    '1',
    '--submit-seconds',
    '1',
    '--deliveries',
    '40',
    '--hooks',
    '4',
    '--jobs',
    '2',
    '--json',
    json,
  ]);
  t.equal(run.code, 0, run.code === 0 ? 'exits 0' : run.stderr);
  t.match(run.stdout, /# suite: addon[\s\S]*# suite: api[\s\S]*# suite: delivery/, 'in order, each under its heading');

  // addon: the comparison with whisper-cli, and the peak RSS.
  t.match(
    run.stdout,
    /\| earshot addon \| \d+ \| \d+ \| [\d.]+ \|\n\| whisper-cli \| \d+ \| \d+ \| [\d.]+ \|\n\| ratio addon \/ cli \| [\d.]+ \| [\d.]+ \| \|/,
  );
  t.match(run.stdout, /\| 1 min \| [\d.]+ \| 1 \| [\d.]+ \|/);
  const addon = JSON.parse(await readFile(json.replace(/\.json$/, '.addon.json'), 'utf8'));
  t.ok(addon.addon.encodeMs > 0 && addon.cli.encodeMs > 0);
  t.ok(addon.rss['1min'].peakRssMb > 0);

  // api: the four figures.
  t.match(run.stdout, /1\. GET \/v1\/recognitions\/\{id\} during a \d+ s transcription: \d+ requests, p50 [\d.]+ ms, p99 [\d.]+ ms/);
  t.match(run.stdout, /the same while \/metrics is scraped 10×\/s: \d+ requests with \d+ scrapes of \/metrics, p50 [\d.]+ ms, p99 [\d.]+ ms/);
  t.match(run.stdout, /2\. job overhead .*: median [\d.]+ ms, max [\d.]+ ms, of which the out-of-process decoder: median \d+ ms/);
  t.match(
    run.stdout,
    /3\. submissions .*16 clients.*: \d+\/s, p50 [\d.]+ ms, p99 [\d.]+ ms; \d+ state changes in \d+ commits \(mean batch [\d.]+\); CPU per submission: the service's event loop [\d.]+ ms \(one core's bound ~\d+\/s\), the whole service [\d.]+ ms .*, the clients [\d.]+ ms/,
  );
  t.match(
    run.stdout,
    /each part alone, from 16 callers, meanwhile: the file work without HTTP or LMDB \d+ files\/s; the job's commit without HTTP or files \d+ jobs\/s/,
  );
  t.match(run.stdout, /4\. one job end to end .*: earshot API \d+ ms .*whisper-server \d+ ms .*ratio [\d.]+/);
  t.match(run.stdout, /6\. start-up .*: new state directory \d+ ms, restart on its state \d+ ms/);

  // delivery: throughput and latency.
  t.match(run.stdout, /throughput \(concurrency default \(16\)\): 40 deliveries to 4 hooks, .* = \d+ deliveries\/s; \d+ state changes in \d+ commits/);
  t.match(run.stdout, /job completion → first delivery attempt received \(2 jobs\): median \d+ ms, p90 \d+ ms, max \d+ ms/);

  // One summary of the headline figures, with their targets, as Markdown and JSON.
  t.match(run.stdout, /## Summary\n\n\| suite \| figure \| value \| target \| met \|/);
  t.match(run.stdout, /\| api \| durable submissions, 16 clients, 1 s WAV, during a transcription \| \d+ \/s \| ≥ 1000 \/s \| (yes|\*\*no\*\*) \|/);
  const summary = JSON.parse(await readFile(json.replace(/\.json$/, '.summary.json'), 'utf8'));
  t.ok(summary.machine.cores > 0);
  t.same(
    [...new Set(summary.figures.map((f: { suite: string }) => f.suite))],
    ['api', 'delivery'],
    'the api and delivery figures (the addon suite has its own JSON)',
  );
  t.ok(
    summary.figures.every((f: { value: number }) => Number.isFinite(f.value)),
    'every figure a number',
  );
});

t.test('the short suite: latency per clip and setting, no WER claim on random weights', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'earshot-bench-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const json = path.join(dir, 'short.json');
  const run = await runCli(['--suite', 'short', '--model', 'test.en-q5_0', '--threads', '2', '--runs', '1', '--json', json]);
  t.equal(run.code, 0, run.code === 0 ? 'exits 0' : run.stderr);
  t.match(run.stdout, /\| model \| setting \| 2 s clip ms \| 5 s clip ms \| 10 s clip ms \| jfk WER \|/);
  for (const setting of ['trim off, VAD off', 'trim on', 'VAD on', 'trim on, VAD on']) {
    t.match(run.stdout, new RegExp(`\\| test\\.en-q5_0 \\(random\\) \\| ${setting} \\| \\d+ \\| \\d+ \\| \\d+ \\| needs real weights \\|`), setting);
  }
  t.match(run.stdout, /The word error rate needs real weights/);
  t.match(
    run.stdout,
    /\| test\.en-q5_0 \(random\) \| 3 s \| \d+ \(ctx 1500\) \| \d+ \(ctx 150\) \| \d+ \(ctx 200\) \| \d+ \(ctx 250\) \| \d+ \(ctx 300\) \|/,
    'the margins',
  );
  const report = JSON.parse(await readFile(json, 'utf8'));
  t.equal(report.rows.length, 4);
  t.equal(report.margins.length, 2, 'the 3 and 5 s clips');
  for (const row of report.rows) {
    t.equal(row.randomWeights, true);
    t.equal(row.wer, null);
    for (const ms of Object.values(row.latencyMs) as number[]) t.ok(ms > 0);
  }
});

t.test('the fleet suite: a real broker, a device alone against the fleet', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'earshot-bench-test-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const json = path.join(dir, 'fleet.json');
  const run = await runCli(['--suite', 'fleet', '--model', 'test.en-q5_0', '--runs', '1', '--submit-seconds', '1', '--fleet-jobs', '2', '--json', json]);
  t.equal(run.code, 0, run.code === 0 ? 'exits 0' : run.stderr);
  t.match(run.stdout, /1 inference thread per device \(EARSHOT_THREADS=1\).*nats-server: v[\d.]+/);
  t.match(
    run.stdout,
    /1\. submissions .*16 clients.*: alone \d+\/s, p50 [\d.]+ ms, p99 [\d.]+ ms; with EARSHOT_FLEET_URL \d+\/s, p50 [\d.]+ ms, p99 [\d.]+ ms \(the broker took [1-9]\d* jobs/,
    'submissions went through the broker',
  );
  t.match(
    run.stdout,
    /2\. one job end to end .*: device alone \d+ ms .*; submitted to A of a 2-device fleet \d+ ms \(max \d+; ran on A [01], on B [01]\): the fleet adds -?\d+ ms/,
  );
  t.match(
    run.stdout,
    /3\. 2 jobs .*: one device, 1 thread [\d.]+ s .*; one device, 2 threads [\d.]+ s .*; 2-device fleet, 1 thread each [\d.]+ s \([\d.]+; ran on A \d, on B \d; the 201s [\d.]+ s, the last job finished [\d.]+ s\).*not the scale-out/,
  );
  const summary = JSON.parse(await readFile(json.replace(/\.json$/, '.summary.json'), 'utf8'));
  t.equal(summary.figures.length, 12);
  t.ok(
    summary.figures.every((f: { suite: string; value: number }) => f.suite === 'fleet' && Number.isFinite(f.value)),
    'every figure a number',
  );
});
