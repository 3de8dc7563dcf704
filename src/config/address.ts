// IP address helpers for the control plane: family, canonical text, "address:port" identities.
import net from 'node:net';

export type Family = 4 | 6;

export function familyOf(addr: string): Family | 0 {
  const f = net.isIP(addr);
  return f === 4 || f === 6 ? f : 0;
}

/** Canonical text: IPv6 lower-case and compressed (RFC 5952), IPv4 unchanged. */
export function canonicalAddress(addr: string): string {
  if (net.isIPv6(addr)) return new URL(`http://[${addr}]/`).hostname.slice(1, -1);
  return addr;
}

/** "198.18.0.1:80" or "[fd00::1]:80". */
export function hostPort(addr: string, port: number | string): string {
  return net.isIPv6(addr) ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/** Parses "IP:PORT" or "[IPv6]:PORT"; throws an Error that says what is wrong. */
export function parseHostPort(text: string): { address: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const address = m ? (m[1] ?? m[2]) : '';
  const port = m ? Number(m[3]) : NaN;
  if (!m || familyOf(address) === 0 || (m[2] !== undefined && !net.isIPv4(address)) || !(port >= 0 && port <= 65535)) {
    throw new Error(`"${text}" is not IP:PORT (IPv6 as [addr]:port)`);
  }
  return { address: canonicalAddress(address), port };
}
