import { isIPv4, isIPv6 } from 'node:net';

import { invalidArgument } from '../errors.js';
import type { OwnEndpoints } from './own-endpoints.js';

/** An IP address as a number: 32 bits for IPv4, 128 for IPv6. */
export interface ParsedIp {
  family: 4 | 6;
  value: bigint;
}

/** A parsed CIDR range; `text` is its canonical spelling (host bits cleared). */
export interface Cidr {
  family: 4 | 6;
  network: bigint;
  prefix: number;
  text: string;
}

const bits = (family: 4 | 6) => (family === 4 ? 32 : 128);
const mask = (family: 4 | 6, prefix: number) => {
  const width = BigInt(bits(family));
  return ((1n << width) - 1n) ^ ((1n << (width - BigInt(prefix))) - 1n);
};

function parseIpv4(text: string): bigint {
  return text.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n);
}

function parseIpv6(text: string): bigint {
  // A dotted IPv4 tail (::ffff:1.2.3.4) stands for the last two groups.
  let groupsText = text;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  let tailGroups: bigint[] = [];
  if (tail.includes('.')) {
    const v4 = parseIpv4(tail);
    tailGroups = [v4 >> 16n, v4 & 0xffffn];
    groupsText = `${text.slice(0, lastColon + 1)}0:0`;
  }
  const [head, rest] = groupsText.split('::') as [string, string | undefined];
  const toGroups = (s: string) => (s === '' ? [] : s.split(':').map((g) => BigInt(parseInt(g, 16))));
  let groups: bigint[];
  if (rest === undefined) {
    groups = toGroups(head);
  } else {
    const left = toGroups(head);
    const right = toGroups(rest);
    groups = [...left, ...Array<bigint>(8 - left.length - right.length).fill(0n), ...right];
  }
  if (tailGroups.length) groups = [...groups.slice(0, 6), ...tailGroups];
  return groups.reduce((acc, g) => (acc << 16n) | g, 0n);
}

const mappedPrefix = 0xffffn << 32n; // ::ffff:0:0/96

/**
 * Parses an IPv4 or IPv6 address (zone suffix such as `%eth0` ignored). IPv4-mapped IPv6
 * addresses (`::ffff:127.0.0.1`, `::ffff:7f00:1`) come back as the IPv4 address they
 * carry, because a socket connecting to one reaches that IPv4 host. Returns null for
 * anything that is not an address.
 */
export function parseIp(address: string): ParsedIp | null {
  const text = address
    .trim()
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/%.*$/, '');
  if (isIPv4(text)) return { family: 4, value: parseIpv4(text) };
  if (!isIPv6(text)) return null;
  const value = parseIpv6(text.toLowerCase());
  if (value >> 32n === mappedPrefix >> 32n) return { family: 4, value: value & 0xffffffffn };
  return { family: 6, value };
}

/** The canonical text of an address (IPv6 compressed as far as is unambiguous). */
export function formatIp(ip: ParsedIp): string {
  if (ip.family === 4) return [24n, 16n, 8n, 0n].map((s) => String((ip.value >> s) & 0xffn)).join('.');
  const groups = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((ip.value >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952: compress the longest run (of two or more) of zero groups.
  let best = { start: -1, length: 1 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.length) best = { start: i, length: j - i };
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.start < 0) return hex.join(':');
  return `${hex.slice(0, best.start).join(':')}::${hex.slice(best.start + best.length).join(':')}`;
}

/**
 * Parses `a.b.c.d/n` or `ipv6/n` (a bare address means /32 or /128). Host bits are
 * cleared (`192.168.1.7/24` is 192.168.1.0/24). An IPv4-mapped IPv6 range with a prefix
 * of at least 96 becomes the IPv4 range it maps, matching how addresses are parsed.
 */
export function parseCidr(text: string): Cidr {
  const [addressText, prefixText, ...extra] = text.trim().split('/') as [string, string | undefined];
  const address = addressText.trim().replace(/%.*$/, '');
  const raw = isIPv4(address)
    ? { family: 4 as const, value: parseIpv4(address) }
    : isIPv6(address)
      ? { family: 6 as const, value: parseIpv6(address.toLowerCase()) }
      : null;
  const prefixOk = prefixText === undefined || /^\d{1,3}$/.test(prefixText.trim());
  if (!raw || extra.length || !prefixOk) throw invalidArgument('callback CIDR range', 'a range such as 192.168.0.0/16 or fd00::/8', text);
  let family: 4 | 6 = raw.family;
  let value = raw.value;
  let prefix = prefixText === undefined ? bits(family) : Number(prefixText.trim());
  if (prefix > bits(family)) throw invalidArgument('callback CIDR range', `a prefix length of at most ${bits(family)}`, text);
  if (family === 6 && prefix >= 96 && value >> 32n === mappedPrefix >> 32n) {
    family = 4;
    value &= 0xffffffffn;
    prefix -= 96;
  }
  const network = value & mask(family, prefix);
  return { family, network, prefix, text: `${formatIp({ family, value: network })}/${prefix}` };
}

/** Whether `range` contains `ip`. */
export function cidrContains(range: Cidr, ip: ParsedIp): boolean {
  return range.family === ip.family && (ip.value & mask(range.family, range.prefix)) === range.network;
}

/** Whether `inner` lies entirely inside `outer`. */
function cidrWithin(inner: Cidr, outer: Cidr): boolean {
  return inner.prefix >= outer.prefix && cidrContains(outer, { family: inner.family, value: inner.network });
}

/**
 * Address blocks that are never a callback target unless a configured range lies inside
 * the block (so `127.0.0.0/8` or `127.0.0.1/32` opens loopback, but a catch-all such as
 * `0.0.0.0/0` does not): they reach this device itself, the cloud-style metadata address
 * 169.254.169.254, or no single host at all. Connecting to 0.0.0.0 or :: reaches this
 * device on Linux, hence "unspecified".
 */
export const specialRanges: ReadonlyArray<{ range: Cidr; kind: string }> = [
  { range: parseCidr('127.0.0.0/8'), kind: 'a loopback address' },
  { range: parseCidr('::1/128'), kind: 'a loopback address' },
  { range: parseCidr('169.254.0.0/16'), kind: 'a link-local address' },
  { range: parseCidr('fe80::/10'), kind: 'a link-local address' },
  { range: parseCidr('224.0.0.0/4'), kind: 'a multicast address' },
  { range: parseCidr('ff00::/8'), kind: 'a multicast address' },
  { range: parseCidr('0.0.0.0/8'), kind: 'an unspecified ("this network") address' },
  { range: parseCidr('::/128'), kind: 'the unspecified address' },
  { range: parseCidr('255.255.255.255/32'), kind: 'the broadcast address' },
];

/** The verdict of a policy on one address, with a sentence a user can act on. */
export interface CidrVerdict {
  allowed: boolean;
  reason: string;
}

/**
 * The allow-list of callback and webhook targets (config `callbackCidrs`,
 * EARSHOT_CALLBACK_CIDRS). An address is allowed when a configured range contains it;
 * addresses in `specialRanges` additionally need a configured range that lies within
 * their special block. With `own`, the service's own endpoints are never allowed, whatever
 * the ranges say.
 */
export class CidrPolicy {
  readonly ranges: readonly Cidr[];

  /** @throws AppError ERR_INVALID_ARGUMENT for a range that does not parse. */
  constructor(
    cidrs: readonly string[],
    private readonly own?: OwnEndpoints,
  ) {
    this.ranges = cidrs.map(parseCidr);
  }

  /** Whether a connection to `ip` (on `port`) is allowed. Anything that is not an IP address is not. */
  allows(ip: string, port?: number): boolean {
    return this.explain(ip, port).allowed;
  }

  /**
   * Whether `ip` is allowed, and why (naming the range that allows it, or what is
   * missing). With a `port`, also whether `ip`:`port` is this service itself.
   */
  explain(ip: string, port?: number): CidrVerdict {
    const parsed = parseIp(ip);
    if (!parsed) return { allowed: false, reason: `${JSON.stringify(ip)} is not an IP address` };
    const itself = port === undefined ? null : (this.own?.explain(parsed, port) ?? null);
    if (itself) return { allowed: false, reason: itself };
    const shown = formatIp(parsed);
    const special = specialRanges.find((s) => cidrContains(s.range, parsed));
    const covering = this.ranges.filter((r) => cidrContains(r, parsed));
    if (special) {
      const explicit = covering.find((r) => cidrWithin(r, special.range));
      if (explicit) return { allowed: true, reason: `${shown} is ${special.kind}, allowed by ${explicit.text}` };
      const broad = covering.length ? ` (${covering[0]!.text} does not count: only a range within ${special.range.text} opens it)` : '';
      return {
        allowed: false,
        reason: `${shown} is ${special.kind}, never a callback target unless a range within ${special.range.text} is allowed${broad}`,
      };
    }
    if (covering.length) return { allowed: true, reason: `${shown} is in the allowed range ${covering[0]!.text}` };
    return { allowed: false, reason: `${shown} is not in the allowed ranges (${this.toString() || 'none configured'})` };
  }

  /** The configured ranges, comma-separated, as they would be written in EARSHOT_CALLBACK_CIDRS. */
  toString(): string {
    return this.ranges.map((r) => r.text).join(', ');
  }
}
