import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout's root: this file is compiled to dist/src/paths.js. */
export const projectRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where scripts/build-native puts the native parts unless EARSHOT_BUILD_DIR says otherwise. */
export const nativeBuildDir = path.resolve(projectRoot, process.env.EARSHOT_BUILD_DIR ?? 'native/build');

/** A binary built from the same whisper.cpp source as the addon (whisper-cli, earshot-decode, ...). */
export function nativeTool(name: string): string {
  return path.join(nativeBuildDir, 'bin', name);
}

/** The package's version (package.json), as Wyoming's info and the OpenAPI document state it. */
export const packageVersion = (): string => (JSON.parse(readFileSync(path.join(projectRoot, 'package.json'), 'utf8')) as { version: string }).version;
