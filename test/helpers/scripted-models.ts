// Models that say what a test needs: the real architecture, random weights, and a decoder
// rigged to emit a script for any audio (scripts/lib/scripted-decoder.ts). whisper.cpp
// decodes them as any model, its logit filters included: real compute, a known transcript.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { writeWhisperModel } from '../../scripts/lib/ggml-writer.js';
import type { DecoderScript } from '../../scripts/lib/scripted-decoder.js';

/**
 * Writes the test shape (f16, 8 MB, half a second) rigged with `script` to a temporary
 * directory (not the test's: startApp makes that one afresh), removed when the test ends;
 * resolves to its path.
 */
export async function scriptedModel(t: { teardown(fn: () => unknown): void }, script: DecoderScript): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'earshot-scripted-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'ggml-scripted.bin');
  await writeWhisperModel(file, { shape: 'test', seed: 1, script });
  return file;
}

const musicNoteBytes = [...Buffer.from('♫')].map((b) => Uint8Array.of(b));

/**
 * Nothing but whisper's non-speech markers, tokenized as whisper's vocabulary does: "♫"
 * in bytes (no token of whisper.cpp's suppression list matches it) first, then markers
 * that begin with a suppressed token (" [", "[", " (", " *").
 */
export const markersOnly: DecoderScript = [
  { start: 0, end: 0.5, tokens: musicNoteBytes },
  { start: 0.52, end: 1, tokens: [' [', 'BLANK', '_AUDIO', ']'] },
  { start: 1.02, end: 1.5, tokens: [' *', 'laughs', '*', ' (applause)'] },
  { start: 1.52, end: 2, tokens: ['[', ' Silence', ' ]', ' ♪'] },
  { start: 2.02, end: 2.5, tokens: [' (', 'upbeat', ' music', ')'] },
];

/** Speech with markers that whisper.cpp's suppression misses (tokens it does not list). */
export const speechAndMarkers: DecoderScript = [
  { start: 0, end: 1, tokens: [' Hello', ' *laughs*', ' world', ' ', ...musicNoteBytes] },
  { start: 1.02, end: 2, tokens: [' (applause)'] },
];

/** Speech with profanity, as IBM's profanity_filter would mask it. */
export const profanity: DecoderScript = [
  { start: 0, end: 1.5, tokens: [' What', ' the', ' fuck', ' is', ' this', '?'] },
  { start: 1.52, end: 2.5, tokens: [' Shit', ' happens', '.'] },
];
