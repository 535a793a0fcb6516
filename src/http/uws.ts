import { createRequire } from 'node:module';
import path from 'node:path';

import { AppError } from '../errors.js';

export type Uws = typeof import('uWebSockets.js');

/**
 * Loads uWebSockets.js's native binary directly. The package's own entry point quietly
 * falls back to a slow pure-JS server when the binary does not load (and whenever
 * UWS_USE_FALLBACK is set); earshot refuses to run on that instead.
 */
export function loadUws(): Uws {
  const require = createRequire(import.meta.url);
  const packageDir = path.dirname(require.resolve('uWebSockets.js/package.json'));
  const binary = path.join(packageDir, 'binaries', `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`);
  try {
    return require(binary) as Uws;
  } catch (err) {
    throw new AppError(
      'ERR_ADDON_LOAD',
      [
        `Could not load uWebSockets.js's native server for ${process.platform}-${process.arch}, Node ABI ${process.versions.modules}:`,
        `- ${binary}: ${(err as Error).message.split('\n')[0]}`,
        "earshot does not run on the package's slow JavaScript fallback. Possible solutions:",
        '- Use Node.js 18 or 20 (the package ships binaries for their ABIs 108 and 115)',
        '- Use glibc 2.36 or newer (Debian 12 / Raspberry Pi OS bookworm)',
        '- Reinstall dependencies: npm install',
      ].join('\n'),
    );
  }
}
