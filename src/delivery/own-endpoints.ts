import { networkInterfaces } from 'node:os';

import { formatIp, type ParsedIp, parseIp } from './cidr.js';

/** The addresses `os.networkInterfaces()` reports (a function so that tests can inject them). */
export type InterfaceAddresses = () => readonly string[];

const systemInterfaceAddresses: InterfaceAddresses = () =>
  Object.values(networkInterfaces())
    .flat()
    .map((i) => i?.address)
    .filter((a): a is string => Boolean(a));

/** Blocks that reach this device whatever its interfaces are: loopback and "unspecified". */
function alwaysOwn(ip: ParsedIp): boolean {
  if (ip.family === 4) return ip.value >> 24n === 127n || ip.value >> 24n === 0n;
  return ip.value === 1n || ip.value === 0n;
}

/**
 * Where this earshot service itself can be reached: its listening ports on any address of
 * this device. A callback or web hook aimed there would have the service call itself —
 * with the key in the URL's userinfo, a hook on its own API could repeat a request on
 * every event and grow the store until the card is full — so deliveries never go there,
 * whatever the allow-list says.
 *
 * Interfaces are read at every check (DHCP renews, Wi-Fi joins); ports come from the
 * listeners, which know them only after binding (port 0 in tests).
 */
export class OwnEndpoints {
  constructor(
    private readonly ports: () => readonly number[],
    private readonly interfaceAddresses: InterfaceAddresses = systemInterfaceAddresses,
  ) {}

  /** Why `ip`:`port` is this service itself, or null when it is not. */
  explain(ip: ParsedIp, port: number): string | null {
    if (!this.ports().includes(port)) return null;
    const own =
      alwaysOwn(ip) ||
      this.interfaceAddresses().some((a) => {
        const parsed = parseIp(a);
        return parsed?.family === ip.family && parsed.value === ip.value;
      });
    if (!own) return null;
    const shown = formatIp(ip);
    return `${ip.family === 6 ? `[${shown}]` : shown}:${port} is this earshot service itself (an address of this device and a port it listens on); a callback to itself would call it back forever`;
  }
}
