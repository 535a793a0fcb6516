// The systemd side: the unit passes systemd's own checks, and the service speaks sd_notify
// (READY, WATCHDOG, STOPPING) over a real datagram socket.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';

import { projectRoot } from '../src/paths.js';
import { Systemd } from '../src/systemd.js';
import { createLogger } from '../src/log.js';
import { spawnService } from './helpers/service-process.js';

const unit = path.join(projectRoot, 'systemd/earshot.service');

t.test('systemd-analyze verify is clean and the exposure level is at most 2.0', async (t) => {
  const verify = execFileSync('systemd-analyze', ['verify', unit], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  t.equal(verify.trim(), '', 'no complaints');
  const security = execFileSync('systemd-analyze', ['security', '--offline=true', unit], { encoding: 'utf8' });
  const level = Number(/Overall exposure level for earshot\.service: ([\d.]+)/.exec(security)?.[1]);
  t.comment(`exposure ${level}`);
  t.ok(level <= 2.0, `exposure ${level} <= 2.0`);
});

t.test('watchdog pings stop while the running job makes no progress', async (t) => {
  const sent: string[] = [];
  let healthy = true;
  const systemd = new Systemd({
    notify: (s) => (sent.push(s), true),
    healthy: () => healthy,
    log: createLogger({ level: 'error', write: () => {} }),
    env: { WATCHDOG_USEC: '40000', WATCHDOG_PID: String(process.pid) },
  });
  t.equal(systemd.watchdogMs, 40);
  systemd.ready('serving');
  await new Promise((r) => setTimeout(r, 110));
  const pings = sent.filter((s) => s === 'WATCHDOG=1').length;
  t.ok(pings >= 3, `${pings} pings at half the interval`);
  healthy = false;
  const before = sent.length;
  await new Promise((r) => setTimeout(r, 110));
  t.equal(sent.length, before, 'no pings while unhealthy');
  systemd.stopping();
  t.equal(sent.at(-1), 'STOPPING=1');
  t.equal(new Systemd({ notify: () => true, healthy: () => true, log: createLogger({ level: 'error' }), env: { WATCHDOG_USEC: '1000', WATCHDOG_PID: '1' } }).watchdogMs, undefined, "another process's watchdog");
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
  for (let i = 0; i < 100 && !messages.some((m) => m === 'WATCHDOG=1'); i++) await new Promise((r) => setTimeout(r, 20));
  service.proc.kill('SIGTERM');
  t.equal(await service.exited, 0);
  await new Promise((r) => setTimeout(r, 100));
  t.match(messages[0], /^READY=1\|STATUS=serving on port \d+/);
  t.ok(messages.includes('WATCHDOG=1'), 'watchdog pings');
  t.equal(messages.at(-1), 'STOPPING=1');
});
