import { readFileSync } from 'node:fs';

import type { Logger } from './log.js';

export interface SystemdOptions {
  /** sd_notify through the addon: false when not running under systemd; may throw when sending fails. */
  notify: (state: string) => boolean;
  /** Whether the service is doing its job (the event loop runs this check, so it is alive). */
  healthy: () => boolean;
  log: Logger;
  env?: NodeJS.ProcessEnv;
  /** The watchdog's repeating timer (default Node's setInterval); tests pass a fake one. */
  every?: (fn: () => void, ms: number) => { cancel(): void };
}

const nodeEvery = (fn: () => void, ms: number) => {
  const timer = setInterval(fn, ms).unref();
  return { cancel: () => clearInterval(timer) };
};

/**
 * systemd integration: READY=1 once serving, STOPPING=1 on the way out, and watchdog
 * pings at half of WatchdogSec — only while `healthy()` holds, so a transcription that
 * stopped making progress gets the service restarted (and its job requeued). A notification
 * that cannot be sent is logged, never thrown: the service runs on without it (if watchdog
 * pings keep failing, systemd restarts the service, as it should).
 */
export class Systemd {
  private timer: { cancel(): void } | undefined;
  private readonly env: NodeJS.ProcessEnv;
  private failing = false;

  constructor(private readonly o: SystemdOptions) {
    this.env = o.env ?? process.env;
  }

  /** The watchdog interval systemd asked for, or undefined when there is none for us. */
  get watchdogMs(): number | undefined {
    const usec = Number(this.env.WATCHDOG_USEC);
    if (!Number.isFinite(usec) || usec <= 0) return undefined;
    const pid = this.env.WATCHDOG_PID;
    if (pid && Number(pid) !== process.pid) return undefined;
    return usec / 1000;
  }

  ready(status: string): void {
    this.send(`READY=1\nSTATUS=${status}`);
    const interval = this.watchdogMs;
    if (interval === undefined) return;
    let unhealthyLogged = false;
    this.timer = (this.o.every ?? nodeEvery)(() => {
      if (this.o.healthy()) {
        this.send('WATCHDOG=1');
        unhealthyLogged = false;
      } else if (!unhealthyLogged) {
        this.o.log.error('not pinging the systemd watchdog: the running job makes no progress');
        unhealthyLogged = true;
      }
    }, interval / 2);
  }

  stopping(): void {
    this.timer?.cancel();
    this.send('STOPPING=1');
  }

  // One warning per run of failures (a failing watchdog ping would otherwise log at every
  // interval), and a note when notifications get through again.
  private send(state: string): void {
    try {
      this.o.notify(state);
    } catch (err) {
      if (!this.failing) {
        this.o.log.warn('sd_notify failed; the service runs on', { state: state.split('\n')[0], error: err as Error });
      }
      this.failing = true;
      return;
    }
    if (this.failing) this.o.log.info('sd_notify works again');
    this.failing = false;
  }
}

/**
 * The memory limit of this process's cgroup (cgroup v2), or why there is none: Raspberry
 * Pi OS kernels often boot with the memory controller disabled, and then a unit's
 * MemoryMax does nothing — the service's own limits are what holds.
 */
export function cgroupMemoryLimit(): string {
  try {
    const line = readFileSync('/proc/self/cgroup', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('0::'));
    if (!line) return 'none (no cgroup v2)';
    const controllers = readFileSync('/sys/fs/cgroup/cgroup.controllers', 'utf8');
    if (!controllers.split(/\s+/).includes('memory')) return 'none (the kernel memory controller is disabled)';
    const max = readFileSync(`/sys/fs/cgroup${line.slice(3).trim()}/memory.max`, 'utf8').trim();
    return max === 'max' ? 'none (memory.max is unlimited)' : `${Math.round(Number(max) / 2 ** 20)} MiB (cgroup memory.max)`;
  } catch {
    return 'unknown (cgroup files not readable)';
  }
}
