// Helpers for the io lab tests: a two-namespace veth topology, a bounded UDP sender run in a
// namespace, and tiny packet builders (RFC 791 IPv4, RFC 768 UDP, RFC 792 ICMP, RFC 2784 GRE).
import { spawn } from 'node:child_process';
import { addNs, addVethPair, delNs, inNs } from '../helpers/net.js';

/** Names of a test file's own pair (tag keeps files apart when they run concurrently). */
export function pairNames(tag: string): { NS_A: string; NS_B: string; IF_A: string; IF_B: string } {
  return { NS_A: `weir-io-${tag}a`, NS_B: `weir-io-${tag}b`, IF_A: `weir-io-${tag}a0`, IF_B: `weir-io-${tag}b0` };
}
export const ADDR_A = '198.18.90.1';
export const ADDR_B = '198.18.90.2';

/** Builds weir-io-a <-> weir-io-b with static neighbours and IPv6 off: no ARP/ND/RS noise. */
export function buildPair(tag: string): { macA: string; macB: string } {
  const { NS_A, NS_B, IF_A, IF_B } = pairNames(tag);
  addNs(NS_A);
  addNs(NS_B);
  return addVethPair(NS_A, IF_A, NS_B, IF_B, { addrA: `${ADDR_A}/24`, addrB: `${ADDR_B}/24`, staticNeigh: true });
}

export function removePair(tag: string): void {
  const { NS_A, NS_B } = pairNames(tag);
  delNs(NS_A, NS_B);
}

/**
 * Sends `count` UDP datagrams from namespace `ns` to dst with python3's socket module (so the
 * kernel builds them, with checksum offload as usual), cycling through `flows` source ports
 * starting at 20000. Payload: "weir <flow> <seq>". Bounded by `timeout 10`.
 */
export function sendUdp(ns: string, dst: string, port: number, count: number, flows = 1): void {
  const py = [
    'import socket,sys',
    `socks=[socket.socket(socket.AF_INET,socket.SOCK_DGRAM) for _ in range(${flows})]`,
    `[s.bind(('0.0.0.0',20000+i)) for i,s in enumerate(socks)]`,
    `[socks[i%${flows}].sendto(b'weir %d %d'%(i%${flows},i),('${dst}',${port})) for i in range(${count})]`,
  ].join('\n');
  inNs(ns, 'timeout', ['10', 'python3', '-c', py]);
}

/** RFC 1071 ones'-complement sum of bytes, folded to 16 bits (not inverted). */
export function onesSum(bytes: Uint8Array, start = 0, end = bytes.length, init = 0): number {
  let s = init;
  for (let i = start; i + 1 < end; i += 2) s += (bytes[i] << 8) | bytes[i + 1];
  if ((end - start) % 2 === 1) s += bytes[end - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

function ip4(a: string): number[] {
  return a.split('.').map(Number);
}

/** An IPv4 header (RFC 791, no options, DF, TTL 64) followed by payload, checksum filled. */
export function ipv4Packet(src: string, dst: string, proto: number, payload: Uint8Array, id = 1): Uint8Array {
  const p = new Uint8Array(20 + payload.length);
  p.set([
    0x45,
    0,
    (p.length >> 8) & 0xff,
    p.length & 0xff,
    id >> 8,
    id & 0xff,
    0x40,
    0,
    64,
    proto,
    0,
    0,
    ...ip4(src),
    ...ip4(dst),
  ]);
  const c = ~onesSum(p, 0, 20) & 0xffff;
  p[10] = c >> 8;
  p[11] = c & 0xff;
  p.set(payload, 20);
  return p;
}

/** A UDP datagram (RFC 768) with its checksum over the IPv4 pseudo-header. */
export function udp4(src: string, dst: string, sport: number, dport: number, data: Uint8Array): Uint8Array {
  const u = new Uint8Array(8 + data.length);
  u.set([sport >> 8, sport & 0xff, dport >> 8, dport & 0xff, u.length >> 8, u.length & 0xff, 0, 0]);
  u.set(data, 8);
  const pseudo = onesSum(new Uint8Array([...ip4(src), ...ip4(dst), 0, 17, u.length >> 8, u.length & 0xff]));
  const c = ~onesSum(u, 0, u.length, pseudo) & 0xffff || 0xffff;
  u[6] = c >> 8;
  u[7] = c & 0xff;
  return u;
}

/** An ICMP echo request (RFC 792 type 8) with checksum. */
export function icmpEcho(id: number, seq: number, data: Uint8Array): Uint8Array {
  const m = new Uint8Array(8 + data.length);
  m.set([8, 0, 0, 0, id >> 8, id & 0xff, seq >> 8, seq & 0xff]);
  m.set(data, 8);
  const c = ~onesSum(m) & 0xffff;
  m[2] = c >> 8;
  m[3] = c & 0xff;
  return m;
}

/** A GRE header without options (RFC 2784 section 2) carrying `protoType` (0x0800 = IPv4). */
export function greHeader(protoType: number): Uint8Array {
  return new Uint8Array([0, 0, protoType >> 8, protoType & 0xff]);
}

/**
 * Starts `tcpdump -c count -w file` on dev in ns (bounded by `timeout seconds`), resolving
 * once it listens; `done` resolves when it exits.
 */
export async function startCapture(
  ns: string,
  dev: string,
  filter: string,
  count: number,
  file: string,
  seconds = 8,
): Promise<{ done: Promise<number> }> {
  const child = spawn(
    'ip',
    [
      'netns',
      'exec',
      ns,
      'timeout',
      String(seconds),
      'tcpdump',
      '-i',
      dev,
      '--immediate-mode',
      '-n',
      '-U',
      '-c',
      String(count),
      '-w',
      file,
      filter,
    ],
    {
      stdio: ['ignore', 'ignore', 'pipe'],
    },
  );
  const done = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
  await new Promise<void>((resolve, reject) => {
    let err = '';
    child.stderr.on('data', (d: Buffer) => {
      err += d.toString();
      if (err.includes('listening on')) resolve();
    });
    child.on('exit', () => reject(new Error(`tcpdump exited before listening: ${err}`)));
  });
  return { done };
}

function ip6(a: string): number[] {
  // Expands "fd00:90::1" to 16 bytes.
  const [head, tail = ''] = a.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.flatMap((g) => {
    const v = parseInt(g, 16);
    return [v >> 8, v & 0xff];
  });
}

/** An IPv6 header (RFC 8200 section 3, hop limit 64) followed by payload. */
export function ipv6Packet(src: string, dst: string, nextHeader: number, payload: Uint8Array): Uint8Array {
  const p = new Uint8Array(40 + payload.length);
  p.set([0x60, 0, 0, 0, payload.length >> 8, payload.length & 0xff, nextHeader, 64, ...ip6(src), ...ip6(dst)]);
  p.set(payload, 40);
  return p;
}

/** A UDP datagram with its checksum over the IPv6 pseudo-header (RFC 8200 section 8.1). */
export function udp6(src: string, dst: string, sport: number, dport: number, data: Uint8Array): Uint8Array {
  const u = new Uint8Array(8 + data.length);
  u.set([sport >> 8, sport & 0xff, dport >> 8, dport & 0xff, u.length >> 8, u.length & 0xff, 0, 0]);
  u.set(data, 8);
  const pseudo = onesSum(new Uint8Array([...ip6(src), ...ip6(dst), 0, 0, u.length >> 8, u.length & 0xff, 0, 0, 0, 17]));
  const c = ~onesSum(u, 0, u.length, pseudo) & 0xffff || 0xffff;
  u[6] = c >> 8;
  u[7] = c & 0xff;
  return u;
}
