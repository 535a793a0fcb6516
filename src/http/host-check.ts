import { isIP, isIPv4 } from 'node:net';
import os from 'node:os';

import { AppError } from '../errors.js';
import type { Request } from './server.js';

/**
 * The host a Host header names, lower-case, without port, brackets or trailing dot, IPv6
 * in its canonical form; undefined when the header is not a host[:port].
 */
export function hostOf(header: string): string | undefined {
  const value = header.trim().toLowerCase();
  let host: string;
  if (value.startsWith('[')) {
    const m = /^\[([0-9a-f:.]+)\](?::\d*)?$/.exec(value);
    if (!m || isIP(m[1]!) !== 6) return undefined;
    // The URL parser writes IPv6 the one way browsers send it (RFC 5952).
    host = new URL(`http://[${m[1]}]/`).hostname.slice(1, -1);
  } else {
    const m = /^([a-z0-9_.-]+)(?::\d*)?$/.exec(value);
    if (!m) return undefined;
    host = m[1]!.replace(/\.$/, '');
  }
  return host === '' ? undefined : host;
}

/** `hostOf` for a configured name or address, where IPv6 may come without brackets. */
export function canonicalHost(name: string): string | undefined {
  const trimmed = name.trim();
  return hostOf(isIP(trimmed) === 6 ? `[${trimmed}]` : trimmed);
}

export interface HostCheckOptions {
  /** The address the server listens on (`EARSHOT_HOST`); a wildcard names nothing. */
  listenHost: string;
  /** More names or addresses the operator lets clients use (`EARSHOT_ALLOWED_HOSTS`). */
  extra: readonly string[];
  /** Default os.hostname. */
  hostname?: () => string;
  /** Default os.networkInterfaces. */
  interfaces?: () => NodeJS.Dict<os.NetworkInterfaceInfo[]>;
}

/**
 * Whether the device answers for `host` (from `hostOf`): its hostname, hostname.local,
 * localhost, loopback, the addresses of its interfaces (read at each check: DHCP and
 * Wi-Fi change them while it runs), the listen address and the operator's extra names.
 */
export function isOwnHost(host: string, o: HostCheckOptions): boolean {
  if (host === 'localhost' || host.endsWith('.localhost')) return true; // RFC 6761: never sent to DNS
  if ((isIPv4(host) && host.startsWith('127.')) || host === '::1') return true;
  const hostname = (o.hostname ?? os.hostname)().toLowerCase();
  const names = [hostname, `${hostname}.local`, ...o.extra, ...(isWildcard(o.listenHost) ? [] : [o.listenHost])];
  if (names.some((name) => canonicalHost(name) === host)) return true;
  if (!isIP(host)) return false;
  const interfaces = Object.values((o.interfaces ?? os.networkInterfaces)()).flat();
  return interfaces.some((i) => i !== undefined && canonicalHost(i.address) === host);
}

const isWildcard = (address: string) => ['0.0.0.0', '::'].includes(canonicalHost(address) ?? '');

/**
 * With `EARSHOT_AUTH=none`, the defence against DNS rebinding: a web page on a name its
 * author controls can make that name resolve to the device and then call the API from
 * any browser on the LAN, as the same origin. Its requests carry that name in Host, so
 * only the device's own names and addresses are answered; the rest get ERR_MISDIRECTED.
 */
export function hostCheck(o: HostCheckOptions): (req: Pick<Request, 'headers'>) => void {
  return (req) => {
    const header = req.headers.host;
    const host = header === undefined ? undefined : hostOf(header);
    if (host !== undefined && isOwnHost(host, o)) return;
    const shown = header === undefined ? 'no Host header' : `the Host header ${JSON.stringify(header.slice(0, 100))}`;
    throw new AppError(
      'ERR_MISDIRECTED',
      `This device does not answer for ${shown}: without an API key (EARSHOT_AUTH=none) it answers only requests to its own names and addresses, so that no web page can reach it through a name of its own (DNS rebinding). Add the name to EARSHOT_ALLOWED_HOSTS, or use an API key`,
    );
  };
}
