import { constants } from 'node:os';

import { loadAddon } from './native.js';

/**
 * Starts a child process through the addon's posix_spawn() instead of child_process.spawn().
 *
 * Why: libuv starts a child with fork() and waits for its exec on the event loop. Forking
 * the ~250 MB service copies its page tables: 15–30 ms of a stalled event loop for every
 * decoder a job starts (docs/pcm-streaming.md, "Where a job's overhead goes"). glibc's
 * posix_spawn() shares the parent's memory until the exec (clone(CLONE_VM | CLONE_VFORK)):
 * about a millisecond. The child is reaped by a thread of the addon and its end reported
 * back here; libuv reaps only its own children, by pid.
 *
 * The rest is left to the caller: pipes come from the addon's openPipe() (close-on-exec;
 * the child gets its copies through `childFds`) and are read with net.Socket.
 */

/** How a child ended: its exit code, or the signal that ended it. */
export interface NativeExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface NativeChild {
  readonly pid: number;
  /** Null while it runs (and after it ended, until `exited` resolved). */
  readonly exit: NativeExit | null;
  /** Resolves once the child has ended and been reaped. */
  readonly exited: Promise<NativeExit>;
  /** Sends `signal` unless the child has already ended (its pid is never reused before then); false when not sent. */
  kill(signal?: NodeJS.Signals): boolean;
}

export interface NativeSpawnOptions {
  /**
   * What the child's fds 0, 1, 2, ... are: a descriptor of this process (the child gets a
   * copy) or null for /dev/null. At least three; the child has no other descriptor.
   */
  childFds: Array<number | null>;
  /** The child's whole environment (default: empty). */
  env?: Record<string, string>;
}

// Number → name; of two names for one number the first (SIGABRT, not SIGIOT), as child_process says.
const signalNames = new Map<number, NodeJS.Signals>();
for (const [name, n] of Object.entries(constants.signals)) if (!signalNames.has(n)) signalNames.set(n, name as NodeJS.Signals);

/**
 * Starts `file` (a path: no PATH lookup) with `args`. Returns once the child runs (exec'd).
 * @throws an Error as child_process would give ('spawn FILE ENOENT', with `code` ENOENT,
 *   EACCES, ...) when it cannot be started.
 */
export function spawnNative(file: string, args: readonly string[], options: NativeSpawnOptions): NativeChild {
  const env = Object.entries(options.env ?? {}).map(([name, value]) => `${name}=${value}`);
  const fds = options.childFds.map((fd) => (fd === null ? -1 : fd));
  let exit: NativeExit | null = null;
  let onExit: (exit: NativeExit) => void = () => {};
  const exited = new Promise<NativeExit>((resolve) => {
    onExit = resolve;
  });
  const pid = loadAddon().spawnProcess(file, [...args], env, fds, (code, signal) => {
    exit = { code, signal: signal === null || signal === 0 ? null : (signalNames.get(signal) ?? (`SIG${signal}` as NodeJS.Signals)) };
    onExit(exit);
  });
  return {
    pid,
    get exit() {
      return exit;
    },
    exited,
    kill(signal: NodeJS.Signals = 'SIGTERM') {
      if (exit !== null) return false;
      try {
        process.kill(pid, signal);
        return true;
      } catch {
        return false;
      }
    },
  };
}
