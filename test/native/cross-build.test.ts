// scripts/cross-build: the pi4 and pi5 CPU presets really compile for the Raspberry Pi.
// Cross-compiles the native parts for aarch64 (cached in native/build-aarch64-<preset>:
// a fresh build takes about 2.5-3.5 minutes per preset on 2 cores, a cached one seconds)
// and asserts the script's checks: 64-bit ARM ELF files, dotprod and fp16 arithmetic in
// the ggml CPU code for pi5 and neither for pi4 (a Pi 4's Cortex-A72 would die on them
// with SIGILL). It also shows that the checks can fail, by checking one preset's build
// against the other preset.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import t from 'tap';

import { projectRoot } from '../../src/paths.js';

const script = path.join(projectRoot, 'scripts/cross-build');
const outDir = (preset: string) => path.join(projectRoot, `native/build-aarch64-${preset}`);
// The script's default: whisper.cpp's tools for arm64 too (for runs under qemu).
const TOOLS: Record<string, 'ON' | 'OFF'> = { pi5: 'ON', pi4: 'ON' };
const WHISPER_TOOLS = ['whisper-cli', 'whisper-bench', 'whisper-quantize', 'whisper-server'];

// Two fresh cross builds plus the first install of the cross toolchain.
t.setTimeout(30 * 60_000);

interface Run {
  code: number | null;
  output: string;
}

function crossBuild(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(script, args, { cwd: projectRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output: Buffer.concat(chunks).toString('utf8') }));
  });
}

interface Check {
  ok: boolean;
  detail: string;
}

/** The script's check lines: `  ok    dotprod:earshot.node   876 sdot/udot (want >0)`. */
function parseChecks(output: string): Map<string, Check> {
  const checks = new Map<string, Check>();
  for (const line of output.split('\n')) {
    const m = /^ {2}(ok|FAIL) +(\S+) +(.*)$/.exec(line);
    if (m) checks.set(m[2]!, { ok: m[1] === 'ok', detail: m[3]! });
  }
  return checks;
}

/** An assertion message, with the script's last lines when the exit code is not the one wanted. */
function exitMessage(run: Run, wanted: number, message: string): string {
  return run.code === wanted ? message : `${message}\n${run.output.split('\n').slice(-40).join('\n')}`;
}

/** The leading count of a check's detail ("876 sdot/udot (want >0)" -> 876). */
function count(check: Check | undefined): number {
  const m = /^(\d+) /.exec(check?.detail ?? '');
  return m ? Number(m[1]) : NaN;
}

/** ELF class and machine straight from the header: no tool in between. */
function elfHeader(file: string): { elf64: boolean; littleEndian: boolean; machine: number } {
  const b = readFileSync(file).subarray(0, 20);
  if (b.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file} is not an ELF file`);
  return { elf64: b[4] === 2, littleEndian: b[5] === 1, machine: b.readUInt16LE(18) };
}
const EM_AARCH64 = 183;

t.test('refuses an unknown preset', async (t) => {
  const run = await crossBuild(['pi3']);
  t.equal(run.code, 2);
  t.match(run.output, /preset must be pi4 or pi5/);
});

t.test('never touches a build directory that is not its own', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'earshot-cross-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const cache = path.join(dir, 'CMakeCache.txt');
  writeFileSync(cache, 'EARSHOT_PRESET:STRING=native\nEARSHOT_TOOLS:BOOL=ON\n');
  const run = await crossBuild(['pi5', '--out', dir]);
  t.equal(run.code, 2, exitMessage(run, 2, 'exits 2'));
  t.match(run.output, /not a cross build/);
  t.ok(existsSync(cache), 'the foreign build directory is left as it was');
});

for (const preset of ['pi5', 'pi4'] as const) {
  t.test(`${preset}: cross-builds for aarch64 and passes every check`, async (t) => {
    const started = Date.now();
    const run = await crossBuild([preset], { EARSHOT_TOOLS: TOOLS[preset]! });
    t.comment(`scripts/cross-build ${preset}: ${Math.round((Date.now() - started) / 1000)} s`);
    t.equal(run.code, 0, exitMessage(run, 0, `scripts/cross-build ${preset} exits 0`));
    t.match(run.output, new RegExp(`${preset} verified: all \\d+ checks ok`));
    const checks = parseChecks(run.output);

    const binaries = ['earshot.node', 'earshot-decode', ...(TOOLS[preset] === 'ON' ? WHISPER_TOOLS : [])];
    for (const name of binaries) {
      const check = checks.get(`elf:${name}`);
      t.ok(check?.ok, `${name}: ELF64 AArch64 (${check?.detail})`);
      t.match(check?.detail, /ELF 64-bit LSB .*ARM aarch64/);
    }
    t.match(checks.get('elf:earshot-decode')?.detail, /interpreter \/lib\/ld-linux-aarch64\.so\.1/);
    t.equal(checks.has('elf:whisper-cli'), TOOLS[preset] === 'ON', 'the tools are checked exactly when built');

    for (const target of ['libggml-cpu.a', 'earshot.node']) {
      const dot = checks.get(`dotprod:${target}`);
      const fp16 = checks.get(`fp16:${target}`);
      const neon = checks.get(`neon:${target}`);
      t.ok(dot?.ok && fp16?.ok && neon?.ok, `${target}: dotprod, fp16 and NEON checks pass`);
      t.ok(count(neon) > 0, `${target}: NEON code present (${neon?.detail})`);
      if (preset === 'pi5') {
        t.ok(count(dot) > 0, `${target}: sdot/udot present (${dot?.detail})`);
        t.ok(count(fp16) > 0, `${target}: fp16 arithmetic present (${fp16?.detail})`);
      } else {
        t.equal(count(dot), 0, `${target}: no sdot/udot (${dot?.detail})`);
        t.equal(count(fp16), 0, `${target}: no fp16 arithmetic (${fp16?.detail})`);
      }
    }
    t.equal([...checks.values()].filter((c) => !c.ok).length, 0, 'no check failed');

    // Independently of readelf/file: the addon and the decoder are 64-bit little-endian ARM.
    for (const file of [path.join(outDir(preset), 'Release/earshot.node'), path.join(outDir(preset), 'bin/earshot-decode')]) {
      t.same(elfHeader(file), { elf64: true, littleEndian: true, machine: EM_AARCH64 }, `${path.basename(file)}: EM_AARCH64`);
    }
  });
}

t.test('the checks fail when a build does not match its preset', async (t) => {
  for (const [preset, built] of [
    ['pi4', 'pi5'],
    ['pi5', 'pi4'],
  ] as const) {
    const run = await crossBuild([preset, '--out', outDir(built), '--verify-only']);
    t.equal(run.code, 1, exitMessage(run, 1, `a ${built} build checked as ${preset} exits 1`));
    t.match(run.output, new RegExp(`${preset}: \\d+ of \\d+ checks FAILED`));
    const checks = parseChecks(run.output);
    for (const target of ['libggml-cpu.a', 'earshot.node']) {
      t.equal(checks.get(`dotprod:${target}`)?.ok, false, `${built} as ${preset}: dotprod check fails on ${target}`);
      t.equal(checks.get(`fp16:${target}`)?.ok, false, `${built} as ${preset}: fp16 check fails on ${target}`);
      t.equal(checks.get(`neon:${target}`)?.ok, true, `${built} as ${preset}: NEON check still passes on ${target}`);
    }
    t.equal(checks.get('elf:earshot.node')?.ok, true, 'the ELF check still passes');
  }
});
