import { existsSync } from 'node:fs';
import path from 'node:path';

import { projectRoot } from '../../src/paths.js';

/**
 * Random-weight models with whisper's real architecture, made by `npm run models:test`
 * (scripts/make-test-model.ts): compute is real, transcripts are meaningless.
 */
export function generatedModel(name: string): string {
  const file = path.join(projectRoot, 'models', 'generated', `ggml-${name}.bin`);
  if (!existsSync(file)) {
    throw new Error(`${file} is missing: run "npm run models:test" (npm test does it in pretest)`);
  }
  return file;
}

/** The very small test shape, quantized: fast enough for every addon test. */
export const testModelPath = () => generatedModel('test.en-q5_0');
/** whisper tiny's real shapes: for timing-sensitive and benchmark-like tests. */
export const tinyModelPath = () => generatedModel('tiny.en-q5_1');

/** whisper.cpp's own sample: 11 s of real speech (JFK), from the pinned source package. */
export { jfkMp3 } from '../../scripts/lib/bench-audio.js';
