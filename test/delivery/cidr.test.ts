// The callback target allow-list: LAN ranges by default, special blocks only when named.
import t from 'tap';

import { defaultCallbackCidrs } from '../../src/config.js';
import { CidrPolicy, formatIp, parseCidr, parseIp } from '../../src/delivery/cidr.js';

t.test('addresses parse; IPv4-mapped IPv6 becomes the IPv4 address it carries', async (t) => {
  t.same(parseIp('192.168.1.20'), { family: 4, value: 0xc0a80114n });
  t.same(parseIp('::ffff:192.168.1.20'), { family: 4, value: 0xc0a80114n });
  t.same(parseIp('::ffff:c0a8:114'), { family: 4, value: 0xc0a80114n });
  t.same(parseIp('[::FFFF:127.0.0.1]'), { family: 4, value: 0x7f000001n });
  t.same(parseIp('fe80::1%eth0'), { family: 6, value: (0xfe80n << 112n) | 1n });
  t.same(parseIp('1:2:3:4:5:6:7.8.9.10'), { family: 6, value: 0x0001000200030004000500060708090an });
  for (const bad of ['', 'localhost', '256.1.1.1', '1.2.3', '::g', '1.2.3.4/8', '01.2.3.4x']) t.equal(parseIp(bad), null, bad);
  t.equal(formatIp(parseIp('fd00:0:0:0:0:0:0:1')!), 'fd00::1');
  t.equal(formatIp(parseIp('2001:db8:0:0:1:0:0:1')!), '2001:db8::1:0:0:1');
  t.equal(formatIp(parseIp('::')!), '::');
});

t.test('ranges parse, clear host bits and reject nonsense', async (t) => {
  t.match(parseCidr('192.168.1.7/24'), { family: 4, prefix: 24, text: '192.168.1.0/24' });
  t.match(parseCidr('10.1.2.3'), { family: 4, prefix: 32, text: '10.1.2.3/32' });
  t.match(parseCidr('FC00::/7'), { family: 6, prefix: 7, text: 'fc00::/7' });
  t.match(parseCidr('::ffff:10.0.0.0/104'), { family: 4, prefix: 8, text: '10.0.0.0/8' });
  for (const bad of ['10.0.0.0/33', '::/129', 'lan', '10.0.0.0/8/8', '10.0.0.0/x', '']) {
    t.throws(() => parseCidr(bad), { code: 'ERR_INVALID_ARGUMENT', message: /Expected .* for callback CIDR range/ }, bad);
  }
  t.throws(() => new CidrPolicy(['10.0.0.0/8', 'nope']), { code: 'ERR_INVALID_ARGUMENT' });
});

t.test('the default policy allows the private LAN ranges and nothing else', async (t) => {
  const policy = new CidrPolicy(defaultCallbackCidrs);
  for (const ip of ['10.0.0.1', '10.255.255.254', '172.16.0.1', '172.31.255.255', '192.168.178.20', 'fd12:3456::1', 'fc00::1', '::ffff:192.168.1.2']) {
    t.ok(policy.allows(ip), ip);
  }
  for (const ip of ['172.32.0.1', '172.15.255.255', '192.169.0.1', '8.8.8.8', '2001:4860:4860::8888', '100.64.0.1', 'fe00::1']) {
    t.notOk(policy.allows(ip), ip);
  }
  t.match(policy.explain('192.168.1.2'), { allowed: true, reason: '192.168.1.2 is in the allowed range 192.168.0.0/16' });
  t.match(policy.explain('8.8.8.8'), {
    allowed: false,
    reason: '8.8.8.8 is not in the allowed ranges (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, fc00::/7)',
  });
  t.match(policy.explain('example.org'), { allowed: false, reason: /not an IP address/ });
});

t.test('loopback, link-local, multicast, unspecified and broadcast are never allowed by a broad range', async (t) => {
  const policy = new CidrPolicy(['0.0.0.0/0', '::/0']);
  const special: Array<[string, RegExp]> = [
    ['127.0.0.1', /loopback/],
    ['127.8.9.10', /loopback/],
    ['::1', /loopback/],
    ['::ffff:127.0.0.1', /loopback/],
    ['169.254.169.254', /link-local/],
    ['fe80::1', /link-local/],
    ['febf::1', /link-local/],
    ['224.0.0.251', /multicast/],
    ['239.255.255.250', /multicast/],
    ['ff02::fb', /multicast/],
    ['0.0.0.0', /unspecified/],
    ['::', /unspecified/],
    ['255.255.255.255', /broadcast/],
  ];
  for (const [ip, kind] of special) {
    const verdict = policy.explain(ip);
    t.equal(verdict.allowed, false, ip);
    t.match(verdict.reason, kind, ip);
    t.match(verdict.reason, /does not count/, ip);
  }
  t.ok(policy.allows('8.8.8.8'), 'the broad range still allows ordinary addresses');
  t.ok(policy.allows('2001:db8::1'));
});

t.test('a range inside a special block opens exactly that range', async (t) => {
  const policy = new CidrPolicy(['127.0.0.0/8', '169.254.10.0/24', '::1/128']);
  t.match(policy.explain('127.0.0.1'), { allowed: true, reason: '127.0.0.1 is a loopback address, allowed by 127.0.0.0/8' });
  t.ok(policy.allows('::ffff:127.0.0.1'));
  t.ok(policy.allows('::1'));
  t.ok(policy.allows('169.254.10.7'));
  t.notOk(policy.allows('169.254.169.254'), 'the rest of link-local stays closed');
  t.notOk(policy.allows('10.0.0.1'), 'and nothing else is open');
  t.equal(policy.toString(), '127.0.0.0/8, 169.254.10.0/24, ::1/128');
  t.match(new CidrPolicy([]).explain('10.0.0.1'), { allowed: false, reason: /none configured/ });
});
