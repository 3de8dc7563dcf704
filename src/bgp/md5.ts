// TCP-MD5 (RFC 2385) for BGP sessions. Node cannot set TCP_MD5SIG, so the addon makes the socket
// and installs the key, and Node adopts the fd through its documented interfaces:
// `new net.Socket({ fd })` then `connect()` for an active session, `server.listen({ fd })` for the
// passive listener. The key is on the socket before the first SYN leaves or arrives, and a failure
// (no kernel support, a bad key) is a synchronous Error before any connection, not a race with one.
// The secret comes from the config (`password`) or a file (`password_file`, src/config/password-file.ts).
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { loadBgpNative, type BgpNativeAddon } from './native.js';

export interface Md5ConnectOptions {
  host: string;
  port: number;
  localAddress?: string;
  key: string | Uint8Array;
}

/**
 * Opens a TCP connection whose segments carry RFC 2385 signatures under `key`; the returned
 * socket is connecting (listen for 'connect'). A wrong key at the peer is invisible here: its
 * kernel drops our SYNs, so the connection times out. Throws if the socket or key cannot be set.
 */
export function connectWithMd5(o: Md5ConnectOptions, native: BgpNativeAddon = loadBgpNative()): net.Socket {
  const fd = native.tcpSocket(net.isIPv6(o.host) ? 6 : 4);
  let sock: net.Socket;
  try {
    native.setTcpMd5(fd, o.host, o.key);
    sock = new net.Socket({ fd, readable: true, writable: true });
  } catch (e) {
    native.closeFd(fd);
    throw e;
  }
  sock.connect({ host: o.host, port: o.port, ...(o.localAddress ? { localAddress: o.localAddress } : {}) });
  return sock;
}

/**
 * Makes `server` listen on host:port (dual stack when host is '::') on a socket that holds the
 * key of every peer in `keys` before listen(2); the kernel copies a peer's key to the
 * connections accepted from it. Throws (EADDRINUSE, EAFNOSUPPORT, …) with the errno as `code`.
 */
export function listenWithMd5(
  server: net.Server,
  o: { host: '::' | '0.0.0.0'; port: number; keys: { peer: string; key: string | Uint8Array }[] },
  onListening: () => void,
  native: BgpNativeAddon = loadBgpNative(),
): void {
  const fd = native.tcpSocket(o.host === '::' ? 6 : 4);
  try {
    native.tcpBind(fd, o.host, o.port, { reuseAddr: true, v6Only: false });
    for (const k of o.keys) native.setTcpMd5(fd, k.peer, k.key);
  } catch (e) {
    native.closeFd(fd);
    throw e;
  }
  server.listen({ fd }, onListening);
}

/**
 * The kernel's TCP-MD5 drop counters of this network namespace (TcpExt in /proc/net/netstat):
 * segments without a signature from a peer that has a key (notFound), signed segments from a
 * peer without one (unexpected), and bad signatures (failure). A wrong password shows here.
 */
export function kernelMd5Counters(
  file = '/proc/net/netstat',
): { notFound: number; unexpected: number; failure: number } | null {
  try {
    return parseMd5Counters(readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
}

/** The TCP-MD5 counters in the text of /proc/net/netstat, or null when it has no TcpExt lines. */
export function parseMd5Counters(text: string): { notFound: number; unexpected: number; failure: number } | null {
  const lines = text.split('\n');
  for (let i = 0; i + 1 < lines.length; i++) {
    if (!lines[i].startsWith('TcpExt:') || !lines[i + 1].startsWith('TcpExt:')) continue;
    const names = lines[i].split(/\s+/);
    const values = lines[i + 1].split(/\s+/);
    const get = (n: string): number => {
      const k = names.indexOf(n);
      return k > 0 ? Number(values[k]) || 0 : 0;
    };
    return { notFound: get('TCPMD5NotFound'), unexpected: get('TCPMD5Unexpected'), failure: get('TCPMD5Failure') };
  }
  return null;
}
