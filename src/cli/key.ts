import { readFileSync } from 'node:fs';
import path from 'node:path';

import { apiKeyProblem } from '../api-key.js';
import { CliError } from './client.js';

/** Where an installed device keeps its settings and state (scripts/install, systemd/earshot.service). */
export const deviceConfig = '/etc/earshot/config.json';
export const deviceStateDir = '/var/lib/earshot';

function read(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    if (code === 'EACCES' || code === 'EPERM') throw new CliError(`Cannot read ${file}: only root can. Run \`sudo earshot key\` on the device.`);
    throw err;
  }
}

/**
 * The device's API key, where the service finds it: `apiKey` in its settings file
 * (EARSHOT_CONFIG, else /etc/earshot/config.json: scripts/install writes one there), else
 * the key the service generated in its state directory (EARSHOT_STATE_DIR, else the
 * file's `stateDir`, else /var/lib/earshot). EARSHOT_API_KEY is the client's setting
 * here, not the device's, so it is not consulted.
 */
export function deviceKey(env: NodeJS.ProcessEnv): { key: string; from: string } {
  const configFile = env.EARSHOT_CONFIG || deviceConfig;
  const text = read(configFile);
  let settings: { apiKey?: unknown; stateDir?: unknown } = {};
  if (text !== undefined) {
    try {
      settings = JSON.parse(text) as typeof settings;
    } catch (err) {
      throw new CliError(`${configFile} is not valid JSON (${(err as Error).message}): fix it, or run scripts/install again.`);
    }
    if (typeof settings.apiKey === 'string' && settings.apiKey) return { key: settings.apiKey, from: configFile };
  }
  const stateDir = env.EARSHOT_STATE_DIR || (typeof settings.stateDir === 'string' ? settings.stateDir : deviceStateDir);
  const file = path.join(stateDir, 'api-key');
  const stored = read(file)?.trim();
  if (stored === undefined) {
    throw new CliError(
      `No API key found: neither ${configFile} (apiKey) nor ${file} exists. Run this on the device; the service writes ${file} on its first start (unless EARSHOT_AUTH=none).`,
    );
  }
  const problem = apiKeyProblem(stored);
  if (problem) throw new CliError(`The API key in ${file} ${problem}: delete the file and restart earshot to have a new one generated.`);
  return { key: stored, from: file };
}
