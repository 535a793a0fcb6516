import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * This device's id in its fleet: the owner of the copies of its running jobs in the fleet's
 * bucket (FleetJobs.hold), so that after a restart it still knows which are its own. Made
 * once, kept in the state directory (hostnames and ports repeat across a fleet of Pis).
 */
export function fleetDeviceId(stateDir: string): string {
  const file = path.join(stateDir, 'fleet-device-id');
  try {
    const id = readFileSync(file, 'utf8').trim();
    if (id) return id;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const id = randomUUID();
  writeFileSync(file, `${id}\n`);
  return id;
}
