// The systemd side: the unit passes systemd's own checks, and the service speaks sd_notify
// (READY, WATCHDOG, STOPPING) over a real datagram socket.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';

import { loadAddon } from '../src/engine/native.js';
import { projectRoot } from '../src/paths.js';
import { Systemd } from '../src/systemd.js';
import { createLogger } from '../src/log.js';
import { spawnService } from './helpers/service-process.js';
import { until } from './helpers/poll.js';

const unit = path.join(projectRoot, 'systemd/earshot.service');

t.test('systemd-analyze verify is clean and the exposure level is at most 2.0', async (t) => {
  const verify = execFileSync('systemd-analyze', ['verify', unit], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  t.equal(verify.trim(), '', 'no complaints');
  const security = execFileSync('systemd-analyze', ['security', '--offline=true', unit], { encoding: 'utf8' });
  const level = Number(/Overall exposure level for earshot\.service: ([\d.]+)/.exec(security)?.[1]);
  t.comment(`exposure ${level}`);
  t.ok(level <= 2.0, `exposure ${level} <= 2.0`);
});

t.test('the unit starts once the clock is set, after time-sync.target too, and pulls neither in', async (t) => {
  const text = readFileSync(unit, 'utf8');
  const after = [...text.matchAll(/^After=(.*)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/));
  const wants = [...text.matchAll(/^(?:Wants|Requires)=(.*)$/gm)].flatMap((m) => m[1]!.trim().split(/\s+/));
  t.ok(after.includes('time-set.target') && after.includes('time-sync.target'), after.join(' '));
  t.notOk(
    wants.some((u) => u.startsWith('time-')),
    'passive targets: ordered after, never pulled in (systemd.special(7))',
  );
});

/** The system calls the unit's SystemCallFilter= lines leave allowed (an allow list first, then deny lists). */
function allowedSystemCalls(unitText: string): Set<string> {
  const seen = new Set<string>();
  const expand = (name: string): string[] => {
    if (!name.startsWith('@')) return [name];
    if (seen.has(name)) return [];
    seen.add(name);
    const listing = execFileSync('systemd-analyze', ['syscall-filter', name], { encoding: 'utf8' });
    return listing
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line !== '' && line !== name && !line.startsWith('#'))
      .flatMap(expand);
  };
  const allowed = new Set<string>();
  for (const [, deny, names] of unitText.matchAll(/^SystemCallFilter=(~?)(.*)$/gm)) {
    for (const call of names!.trim().split(/\s+/).flatMap(expand)) {
      if (deny) allowed.delete(call);
      else allowed.add(call);
    }
  }
  return allowed;
}

t.test('the unit lets the audio decoder install its seccomp filter', async (t) => {
  const allowed = allowedSystemCalls(readFileSync(unit, 'utf8'));
  t.ok(allowed.has('read') && allowed.has('execve'), 'the expansion is real');
  t.notOk(allowed.has('mount'), 'and the deny lists count');
  // libseccomp asks seccomp(2) what the kernel can do; without it the decoder refuses to decode.
  t.ok(allowed.has('seccomp'), 'seccomp(2)');
  t.ok(allowed.has('prctl'), 'prctl(2) (PR_SET_NO_NEW_PRIVS)');
});

/** A repeating timer the test fires by hand. */
function fakeEvery() {
  const timer = {
    fn: undefined as (() => void) | undefined,
    ms: 0,
    cancelled: false,
    fire: (n = 1) => {
      for (let i = 0; i < n; i++) if (!timer.cancelled) timer.fn!();
    },
  };
  const every = (fn: () => void, ms: number) => {
    Object.assign(timer, { fn, ms });
    return { cancel: () => (timer.cancelled = true) };
  };
  return { timer, every };
}

t.test('watchdog pings stop while the running job makes no progress', async (t) => {
  const sent: string[] = [];
  let healthy = true;
  const { timer, every } = fakeEvery();
  const lines: string[] = [];
  const systemd = new Systemd({
    notify: (s) => {
      sent.push(s);
      return true;
    },
    healthy: () => healthy,
    log: createLogger({ level: 'error', write: (line) => lines.push(line) }),
    env: { WATCHDOG_USEC: '40000', WATCHDOG_PID: String(process.pid) },
    every,
  });
  t.equal(systemd.watchdogMs, 40);
  systemd.ready('serving');
  t.equal(timer.ms, 20, 'at half the interval');
  timer.fire(3);
  t.same(sent, ['READY=1\nSTATUS=serving', 'WATCHDOG=1', 'WATCHDOG=1', 'WATCHDOG=1']);
  healthy = false;
  timer.fire(3);
  t.equal(sent.length, 4, 'no pings while unhealthy');
  t.equal(lines.filter((l) => /error .*not pinging the systemd watchdog/.test(l)).length, 1, 'said once');
  healthy = true;
  timer.fire();
  t.equal(sent.at(-1), 'WATCHDOG=1', 'pings again once progress resumes');
  systemd.stopping();
  t.ok(timer.cancelled, 'the timer stops');
  t.equal(sent.at(-1), 'STOPPING=1');
  t.equal(
    new Systemd({ notify: () => true, healthy: () => true, log: createLogger({ level: 'error' }), env: { WATCHDOG_USEC: '1000', WATCHDOG_PID: '1' } })
      .watchdogMs,
    undefined,
    "another process's watchdog",
  );
});

t.test('a failing sd_notify is logged once per run of failures and never thrown, not even from the watchdog timer', async (t) => {
  const lines: string[] = [];
  let failing = true;
  const sent: string[] = [];
  const { timer, every } = fakeEvery();
  const systemd = new Systemd({
    notify: (s) => {
      if (failing) throw Object.assign(new Error('sd_notify: sendto /run/systemd/notify: Connection refused'), { code: 'ERR_SYSTEMD' });
      sent.push(s);
      return true;
    },
    healthy: () => true,
    log: createLogger({ level: 'info', write: (line) => lines.push(line) }),
    env: { WATCHDOG_USEC: '40000', WATCHDOG_PID: String(process.pid) },
    every,
  });

  t.doesNotThrow(() => systemd.ready('serving'), 'READY=1 failing does not throw');
  t.doesNotThrow(() => timer.fire(3), 'failing watchdog pings do not throw from the timer');
  const warnings = lines.filter((l) => l.includes('sd_notify failed'));
  t.equal(warnings.length, 1, 'one warning for READY and the failing watchdog pings after it');
  t.match(warnings[0], /warn .*sd_notify failed; the service runs on state="READY=1" error=".*Connection refused"/);
  failing = false;
  timer.fire();
  t.same(sent, ['WATCHDOG=1'], 'the timer kept running and pings get through again');
  t.equal(lines.filter((l) => l.includes('sd_notify works again')).length, 1, 'recovery is noted once');
  failing = true;
  t.doesNotThrow(() => systemd.stopping(), 'STOPPING=1 failing does not throw');
  t.equal(lines.filter((l) => l.includes('sd_notify failed')).length, 2, 'a new run of failures is logged again');
});

t.test("the addon's notify throws ERR_SYSTEMD when nobody listens on NOTIFY_SOCKET; Systemd logs it", async (t) => {
  const addon = loadAddon();
  const short = mkdtempSync(path.join(os.tmpdir(), 'es-'));
  const saved = process.env.NOTIFY_SOCKET;
  t.teardown(() => {
    if (saved === undefined) delete process.env.NOTIFY_SOCKET;
    else process.env.NOTIFY_SOCKET = saved;
    rmSync(short, { recursive: true, force: true });
  });
  delete process.env.NOTIFY_SOCKET;
  t.equal(addon.notify('READY=1'), false, 'not under systemd: nothing to do');
  process.env.NOTIFY_SOCKET = path.join(short, 'nobody.sock');
  t.throws(() => addon.notify('READY=1'), { code: 'ERR_SYSTEMD', message: /sd_notify: sendto .*nobody\.sock: No such file or directory/ });
  const lines: string[] = [];
  const systemd = new Systemd({
    notify: (s) => addon.notify(s),
    healthy: () => true,
    log: createLogger({ level: 'info', write: (line) => lines.push(line) }),
    env: {},
  });
  t.doesNotThrow(() => systemd.ready('serving'));
  t.doesNotThrow(() => systemd.stopping());
  t.equal(lines.length, 1);
  t.match(lines[0], /sd_notify failed; the service runs on state="READY=1" error=.*nobody\.sock/);
});

t.test('the service notifies READY, WATCHDOG and STOPPING over NOTIFY_SOCKET', async (t) => {
  const dir = t.testdir();
  // Unix socket paths are limited to 108 bytes: the test directory's name is too long.
  const short = mkdtempSync(path.join(os.tmpdir(), 'es-'));
  t.teardown(() => rmSync(short, { recursive: true, force: true }));
  const socket = path.join(short, 'notify.sock');
  // Node has no Unix datagram sockets; python3 (in every Debian) listens instead.
  const listener = spawn('python3', [
    '-c',
    'import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_DGRAM)\ns.bind(sys.argv[1])\nprint("bound",flush=True)\nwhile True:\n  print(s.recv(4096).decode().replace("\\n","|"),flush=True)',
    socket,
  ]);
  t.teardown(() => listener.kill());
  const messages: string[] = [];
  await new Promise<void>((resolve, reject) => {
    listener.on('exit', (code) => reject(new Error(`python3 listener exited with ${code}`)));
    listener.stdout.on('data', (d: Buffer) => {
      for (const line of d.toString().split('\n').filter(Boolean)) {
        if (line === 'bound') resolve();
        else messages.push(line);
      }
    });
  });
  const service = await spawnService(path.join(dir, 'state'), { NOTIFY_SOCKET: socket, WATCHDOG_USEC: '200000' });
  await until(() => messages.includes('WATCHDOG=1'), 5000, 'a watchdog ping');
  service.proc.kill('SIGTERM');
  t.equal(await service.exited, 0);
  await until(() => messages.at(-1) === 'STOPPING=1', 5000, 'STOPPING=1 to reach the listener');
  t.match(messages[0], /^READY=1\|STATUS=serving on port \d+/);
  t.ok(messages.includes('WATCHDOG=1'), 'watchdog pings');
  t.equal(messages.at(-1), 'STOPPING=1');
});
