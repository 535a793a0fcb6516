// Which Host headers the device answers without an API key (DNS-rebinding defence).
import type os from 'node:os';

import t from 'tap';

import { canonicalHost, hostCheck, hostOf, isOwnHost } from '../../src/http/host-check.js';
import type { Request } from '../../src/http/server.js';

const iface = (address: string, family: 'IPv4' | 'IPv6') => ({ address, family }) as os.NetworkInterfaceInfo;
const device = {
  listenHost: '0.0.0.0',
  extra: ['speech.example.lan', '192.0.2.99'],
  hostname: () => 'Kitchen-Pi',
  interfaces: () => ({
    lo: [iface('127.0.0.1', 'IPv4'), iface('::1', 'IPv6')],
    eth0: [iface('192.168.1.42', 'IPv4'), iface('fe80::1:2ff:fe03:405', 'IPv6'), iface('2001:db8:0:0::42', 'IPv6')],
  }),
};

t.test('hostOf: lower-case, no port, no trailing dot, canonical IPv6; garbage is undefined', async (t) => {
  t.equal(hostOf('Kitchen-Pi.local:8080'), 'kitchen-pi.local');
  t.equal(hostOf('kitchen-pi.local.'), 'kitchen-pi.local');
  t.equal(hostOf('192.168.1.42:8080'), '192.168.1.42');
  t.equal(hostOf('[2001:DB8:0:0:0:0:0:42]:8080'), '2001:db8::42');
  t.equal(hostOf('[::1]'), '::1');
  for (const bad of ['', ':8080', 'a b', 'evil.example@kitchen-pi', '[::1', '[nope]', '[::1]x', '::1', 'kitchen-pi:80:80', 'x/y']) {
    t.equal(hostOf(bad), undefined, JSON.stringify(bad));
  }
  t.equal(canonicalHost('2001:db8::42'), '2001:db8::42', 'configured IPv6 may come without brackets');
});

t.test("the device's names and addresses pass; any other name does not", async (t) => {
  for (const host of [
    'kitchen-pi',
    'kitchen-pi.local',
    'localhost',
    'app.localhost',
    '127.0.0.1',
    '127.9.9.9',
    '::1',
    '192.168.1.42',
    'fe80::1:2ff:fe03:405',
    '2001:db8::42',
    'speech.example.lan',
    '192.0.2.99',
  ]) {
    t.ok(isOwnHost(host, device), host);
  }
  for (const host of ['evil.example', 'kitchen-pi.evil.example', 'kitchen-pi.lan', '192.168.1.43', '0.0.0.0', '10.0.0.1', 'localhost.evil.example']) {
    t.notOk(isOwnHost(host, device), host);
  }
  t.ok(isOwnHost('10.0.0.5', { ...device, listenHost: '10.0.0.5' }), 'the listen address');
  t.notOk(isOwnHost('::', { ...device, listenHost: '::' }), 'a wildcard listen address names nothing');
});

t.test('hostCheck: ERR_MISDIRECTED for a foreign or missing Host, saying what to do', async (t) => {
  const check = hostCheck(device);
  const request = (headers: Record<string, string>) => ({ headers }) as unknown as Request;
  t.doesNotThrow(() => check(request({ host: 'kitchen-pi.local:8080' })));
  t.throws(() => check(request({ host: 'rebind.evil.example:8080' })), {
    code: 'ERR_MISDIRECTED',
    status: 421,
    message: /does not answer for the Host header "rebind\.evil\.example:8080".*EARSHOT_ALLOWED_HOSTS/,
  });
  t.throws(() => check(request({})), { code: 'ERR_MISDIRECTED', message: /no Host header/ });
  t.throws(() => check(request({ host: 'x'.repeat(300) })), { message: /"x{100}"/ });
});

t.test('the default probes are the machine itself', async (t) => {
  const check = hostCheck({ listenHost: '127.0.0.1', extra: [] });
  const request = (host: string) => ({ headers: { host } }) as unknown as Request;
  const { hostname } = await import('node:os');
  t.doesNotThrow(() => check(request(`${hostname()}:1`)));
  t.throws(() => check(request('evil.example')), { code: 'ERR_MISDIRECTED' });
});
