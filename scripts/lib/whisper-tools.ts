// whisper.cpp's own tools (whisper-cli, whisper-bench), built from the same source and
// flags as earshot's addon by scripts/build-native, run the way the benchmarks compare
// them with the addon.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

import type { NativeTranscribeOptions } from '../../src/engine/native.js';
import { nativeTool } from '../../src/paths.js';

/**
 * The same decoding settings for both sides: greedy, no temperature fallback, no context,
 * non-speech tokens suppressed (the addon's default), the same threads and flash
 * attention. `nice: 0`: the addon's inference threads run at the same priority as the
 * tools'.
 */
export function decodingSettings(threads: number, flashAttn = true): { native: NativeTranscribeOptions; cli: string[] } {
  return {
    native: {
      threads,
      nice: 0,
      language: 'en',
      strategy: 'greedy',
      bestOf: 5,
      temperatureIncrement: 0,
      conditionOnPreviousText: false,
    },
    // -bs 1: greedy (whisper-cli picks beam search when the beam size is above 1); -sns:
    // non-speech tokens suppressed, as the addon does by default.
    cli: ['-t', String(threads), '-l', 'en', '-bs', '1', '-bo', '5', '-nf', '-sns', flashAttn ? '-fa' : '-nfa'],
  };
}

/** whisper_print_timings' lines, in ms (`encodeRuns`, `decodeRuns`: the counts after "encode time = ... /"). */
export interface WhisperTimings {
  loadMs: number;
  melMs: number;
  sampleMs: number;
  encodeMs: number;
  encodeRuns: number;
  decodeMs: number;
  decodeRuns: number;
  batchdMs: number;
  promptMs: number;
  totalMs: number;
}

export function parseWhisperTimings(stderr: string, tool = 'whisper tool'): WhisperTimings {
  const ms = (label: string) => {
    const m = new RegExp(`${label} time =\\s*([\\d.]+) ms`).exec(stderr);
    if (!m) throw new Error(`${tool} printed no "${label} time":\n${stderr.split('\n').slice(-12).join('\n')}`);
    return Number(m[1]);
  };
  const runs = (label: string) => Number(new RegExp(`${label} time =\\s*[\\d.]+ ms /\\s*(\\d+) runs`).exec(stderr)?.[1] ?? 1);
  return {
    loadMs: ms('load'),
    melMs: ms('mel'),
    sampleMs: ms('sample'),
    encodeMs: ms('encode'),
    encodeRuns: runs('encode'),
    decodeMs: ms('decode'),
    decodeRuns: runs('decode'),
    batchdMs: ms('batchd'),
    promptMs: ms('prompt'),
    totalMs: ms('total'),
  };
}

/**
 * Peak resident set size (VmHWM in /proc/<pid>/status) of a process, MB; NaN if the status
 * has no VmHWM line. Throws if the status cannot be read (e.g. the process is gone).
 */
export function vmHwmMb(pid: number | 'self'): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN) / 1024;
}

export interface ToolRun {
  stdout: string;
  stderr: string;
  wallMs: number;
  /** VmHWM as last seen while the tool ran (polled every 20 ms), MB; NaN if never seen. */
  peakRssMb: number;
}

/** Runs a tool to completion; rejects with its last output lines on a non-zero exit. */
export function runTool(bin: string, args: string[]): Promise<ToolRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    let hwmMb = Number.NaN;
    // VmHWM only grows and the peak comes long before exit, so the last reading is it.
    const poll = setInterval(() => {
      if (child.pid === undefined) return; // not started (yet)
      try {
        const mb = vmHwmMb(child.pid);
        if (!Number.isNaN(mb)) hwmMb = mb;
      } catch {
        // exited between two polls
      }
    }, 20);
    child.on('error', (err) => {
      clearInterval(poll);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearInterval(poll);
      const wallMs = performance.now() - started;
      if (code !== 0) {
        const tail = stderr.trim().split('\n').slice(-8).join('\n');
        reject(new Error(`${bin} ${args.join(' ')} exited with ${code ?? signal}:\n${tail}`));
        return;
      }
      resolve({ stdout, stderr, wallMs, peakRssMb: hwmMb });
    });
  });
}

export interface CliRun extends ToolRun {
  timings: WhisperTimings;
  /** The transcript: the text of each printed segment, joined with single spaces. */
  text: string;
}

/** whisper-cli on one WAV file; `args` as from {@link decodingSettings}. */
export async function runWhisperCli(model: string, wav: string, args: string[]): Promise<CliRun> {
  const run = await runTool(nativeTool('whisper-cli'), ['-m', model, '-f', wav, ...args]);
  const text = run.stdout
    .split('\n')
    .map((line) => /^\[[^\]]*\]\s*(.*)$/.exec(line)?.[1] ?? '')
    .join(' ');
  return { ...run, timings: parseWhisperTimings(run.stderr, 'whisper-cli'), text: normalizeText(text) };
}

export interface BenchRun extends ToolRun {
  timings: WhisperTimings;
  /** whisper-bench's "system_info: n_threads = a / b | ..." line, without the thread counts. */
  systemInfo: string;
}

/**
 * whisper-bench's full benchmark (`-w 0`): after two warm-up rounds, one encoder run on a
 * 30 s window of zeros, then 256 single-token, 64 five-token and 16 256-token decodes.
 */
export async function runWhisperBench(model: string, threads: number, flashAttn: boolean): Promise<BenchRun> {
  const run = await runTool(nativeTool('whisper-bench'), ['-m', model, '-t', String(threads), flashAttn ? '-fa' : '-nfa']);
  const info = /system_info: n_threads = \d+ \/ \d+ \| (.*)/.exec(run.stderr)?.[1]?.trim() ?? '';
  return { ...run, timings: parseWhisperTimings(run.stderr, 'whisper-bench'), systemInfo: info };
}

/** Whitespace-normalized transcript text, for comparing the two sides. */
export function normalizeText(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
