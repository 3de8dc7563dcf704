// IP address helpers for the control plane: family, canonical text, "address:port" identities.
// Address text goes through the one codec, src/packet/ip-text.ts.
import { formatIp, parseIp } from '../packet/ip-text.js';

export type Family = 4 | 6;

export function familyOf(addr: string): Family | 0 {
  const a = parseIp(addr);
  return a === undefined ? 0 : a.length === 4 ? 4 : 6;
}

/**
 * Canonical text (RFC 5952: IPv6 lower-case and compressed, an IPv4-mapped address as
 * ::ffff:192.0.2.1); text that is no address comes back unchanged.
 */
export function canonicalAddress(addr: string): string {
  const a = parseIp(addr);
  return a === undefined ? addr : formatIp(a);
}

/** "198.18.0.1:80" or "[fd00::1]:80". */
export function hostPort(addr: string, port: number | string): string {
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/** Parses "IP:PORT" or "[IPv6]:PORT"; throws an Error that says what is wrong. */
export function parseHostPort(text: string): { address: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const address = m ? (m[1] ?? m[2]) : '';
  const port = m ? Number(m[3]) : NaN;
  if (
    !m ||
    familyOf(address) === 0 ||
    (m[2] !== undefined && familyOf(address) !== 4) ||
    !(port >= 0 && port <= 65535)
  ) {
    throw new Error(`"${text}" is not IP:PORT (IPv6 as [addr]:port)`);
  }
  return { address: canonicalAddress(address), port };
}
