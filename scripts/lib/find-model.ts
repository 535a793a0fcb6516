import { existsSync } from 'node:fs';
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
