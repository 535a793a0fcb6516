import { startServiceProcess, type ServiceProcess } from '../../scripts/lib/service-process.js';
import { testServiceEnv } from './app.js';

export type { ServiceProcess } from '../../scripts/lib/service-process.js';

/** The service as `npm start` runs it, with the test settings (and `env`), for tests that kill or signal it. */
export function spawnService(stateDir: string, env: Record<string, string> = {}): Promise<ServiceProcess> {
  return startServiceProcess({ PATH: process.env.PATH, ...testServiceEnv(stateDir), ...env });
}
