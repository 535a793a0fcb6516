import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { resolveModelPath } from '../../src/config.js';
import { projectRoot } from '../../src/paths.js';

/**
 * A model for a benchmark: a path, or a name looked up in models/ (real models) and then
 * models/generated/ (random-weight models from make-test-model).
 */
export function findModel(nameOrPath: string): string {
  const real = resolveModelPath(nameOrPath, path.join(projectRoot, 'models'));
  if (existsSync(real)) return real;
  const generated = resolveModelPath(nameOrPath, path.join(projectRoot, 'models', 'generated'));
  return existsSync(generated) ? generated : real;
}

/** True for files made by scripts/make-test-model (or quantized from one by the benchmark): their sidecar says so. */
export function isGenerated(file: string): boolean {
  try {
    return (JSON.parse(readFileSync(`${file}.json`, 'utf8')) as { generator?: string }).generator?.includes('make-test-model') === true;
  } catch {
    return false;
  }
}
