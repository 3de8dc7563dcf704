// Typed packet ports over the native addon: AF_PACKET (ring receive + sendmmsg), TUN queues,
// raw IP senders and raw IP receivers (one protocol, e.g. GRE for decapsulation). The data plane takes the PacketSource/PacketSink interfaces, so tests
// can hand it a MemoryPort (memory-port.ts) and run without root.
import { PacketBatch } from './batch.js';
import { loadNative } from './native.js';
import { parseIp } from '../packet/ip-text.js';
import type {
  NativeAddon,
  NativePacketSocket,
  NativePoller,
  NativePacketSocketOptions,
  NativeRawRecvSocket,
  NativeRawSocket,
  NativeTunQueue,
  NativeXdpProgram,
  NativeXdpProgramOptions,
  NativeXskOptions,
  NativeXskSocket,
} from './native.js';

/** Something that fills a batch with received packets. */
export interface PacketSource {
  /**
   * Receives up to batch.slots packets into slots 0..n-1 (each at batch.headroom) and returns n.
   * With timeoutMs > 0 it blocks in poll() until a packet arrives or the time is up (worker
   * threads only); with 0 it returns at once (main thread: pair it with onReadable).
   * Throws an Error naming the interface and errno when the socket fails.
   */
  recv(batch: PacketBatch, timeoutMs?: number): number;
}

/** Something that sends the packets a batch describes (meta offset + length per slot). */
export interface PacketSink {
  /**
   * Sends slots 0..count-1 and returns how many were handled: sent, or refused one by one
   * (WEIR_F_TX_ERROR set, errno in META_AUX). Slots after the returned index were not tried
   * because the kernel queue was full; the caller counts them as drops or retries.
   */
  send(batch: PacketBatch, count: number): number;
}

/** Calls `cb` from the event loop whenever packets are waiting (main-thread use). */
export interface ReadinessSource {
  onReadable(cb: (() => void) | null, options?: { unref?: boolean }): void;
}

export interface PacketPort extends PacketSource, PacketSink, ReadinessSource {
  readonly name: string;
  close(): void;
}

/** A port a worker thread can wait on with PortPoller (its native socket). */
export interface PolledPort extends PacketPort {
  /** The addon object behind the port (for PortPoller only). */
  readonly rxHandle: NativePacketSocket | NativeTunQueue | NativeXskSocket;
}

export interface AfPacketStats {
  /** Packets the kernel queued to this socket since it was opened. */
  packets: number;
  /** Packets the kernel dropped because the ring was full. */
  drops: number;
  freezeQueueCount: number;
}

/** PACKET_FANOUT modes (linux/if_packet.h). HASH keeps every flow on one socket. */
export const PACKET_FANOUT_HASH = 0;
export const PACKET_FANOUT_LB = 1;
export const PACKET_FANOUT_CPU = 2;
export const PACKET_FANOUT_QM = 5;
/**
 * Fanout flag (kernel >= 6.6): the group's hook skips packets this host sends. The addon sets
 * it by itself whenever ignoreOutgoing is on, since PACKET_IGNORE_OUTGOING alone does not
 * reach a fanout group (measured: members saw the host's ICMP replies without it).
 */
export const PACKET_FANOUT_FLAG_IGNORE_OUTGOING = 0x4000;
/** Fanout flag: reassemble IP fragments before hashing so fragments stay with their flow. */
export const PACKET_FANOUT_FLAG_DEFRAG = 0x8000;

export type AfPacketOptions = NativePacketSocketOptions;

/**
 * An AF_PACKET socket bound (ETH_P_ALL) to one interface: TPACKET_V2 (default) or V3 ring for receive,
 * sendmmsg for send. Throws on open with the operation, interface and errno
 * ("AF_PACKET bind weir-up0: ENODEV ..."), naming CAP_NET_RAW when privileges are missing.
 */
export class AfPacketPort implements PolledPort {
  readonly name: string;
  private readonly sock: NativePacketSocket;

  constructor(ifname: string, options: AfPacketOptions = {}, native: NativeAddon = loadNative()) {
    this.name = ifname;
    this.sock = new native.PacketSocket(ifname, options);
  }
  get fd(): number {
    return this.sock.fd;
  }
  get ifindex(): number {
    return this.sock.ifindex;
  }
  /** The fanout group the socket joined (the kernel's pick with fanoutUnique), 0 if none. */
  get fanoutGroup(): number {
    return this.sock.fanoutGroup;
  }
  get rxHandle(): NativePacketSocket {
    return this.sock;
  }
  recv(batch: PacketBatch, timeoutMs = 0): number {
    return this.sock.recv(batch.data, batch.meta, batch.headroom, timeoutMs);
  }
  send(batch: PacketBatch, count: number): number {
    return this.sock.send(batch.data, batch.meta, count);
  }
  /** Totals from PACKET_STATISTICS since open (one getsockopt per call). */
  stats(): AfPacketStats {
    return this.sock.stats();
  }
  onReadable(cb: (() => void) | null, options: { unref?: boolean } = {}): void {
    this.sock.onReadable(cb, options.unref ?? false);
  }
  /** Closes the socket and unmaps the ring; safe to call twice. */
  close(): void {
    this.sock.close();
  }
}

/**
 * One queue of a TUN device (IFF_TUN | IFF_NO_PI): creates the device, or with multiQueue
 * attaches one more queue to it (IFF_MULTI_QUEUE; one queue per worker). Packets are bare IP.
 * The device goes away with its last queue unless it was made persistent (ip tuntap add).
 * Throws naming CAP_NET_ADMIN when privileges are missing.
 */
export class TunPort implements PolledPort {
  private readonly q: NativeTunQueue;

  constructor(name: string, options: { multiQueue?: boolean } = {}, native: NativeAddon = loadNative()) {
    this.q = new native.TunQueue(name, options.multiQueue ?? false);
  }
  /** The device name the kernel gave (as asked, or tunN when asked for ""). */
  get name(): string {
    return this.q.name;
  }
  get fd(): number {
    return this.q.fd;
  }
  get rxHandle(): NativeTunQueue {
    return this.q;
  }
  recv(batch: PacketBatch, timeoutMs = 0): number {
    return this.q.recv(batch.data, batch.meta, batch.headroom, timeoutMs);
  }
  send(batch: PacketBatch, count: number): number {
    return this.q.send(batch.data, batch.meta, count);
  }
  onReadable(cb: (() => void) | null, options: { unref?: boolean } = {}): void {
    this.q.onReadable(cb, options.unref ?? false);
  }
  close(): void {
    this.q.close();
  }
}

/** Address map values of the XDP classifier (native/xdp_prog.h kXdpAddr*). */
export const XDP_ADDR_VIP = 1;
export const XDP_ADDR_SNAT = 2;

/**
 * io: afxdp on one interface: the classifier program attached with a bpf_link (detached when
 * closed, or when the process dies) and its address maps. Frames to a VIP address, and TCP/UDP
 * to a SNAT address within the SNAT port range (and ICMP errors quoting such a packet), go to the
 * AF_XDP socket of their receive queue; everything else, and frames to other MACs, to the
 * kernel, which never sees weir's traffic (no nftables guard). Throws naming the errno, the
 * verifier's complaint, or the capabilities (CAP_NET_ADMIN, CAP_BPF, ...).
 */
export class XdpClassifier {
  readonly ifname: string;
  private readonly prog: NativeXdpProgram;

  constructor(ifname: string, options: NativeXdpProgramOptions, native: NativeAddon = loadNative()) {
    this.ifname = ifname;
    this.prog = new native.XdpProgram(ifname, options);
  }
  /** The XSKMAP the AF_XDP sockets register in (a descriptor: valid in every thread). */
  get xskMapFd(): number {
    return this.prog.xskMapFd;
  }
  get mode(): 'native' | 'generic' {
    return this.prog.mode;
  }
  /** Makes the maps hold exactly these VIP and SNAT addresses (text); an address in both is a VIP. */
  setAddresses(vips: readonly string[], snat: readonly string[]): void {
    const flags = new Map<string, number>();
    for (const a of snat) flags.set(a, XDP_ADDR_SNAT);
    for (const a of vips) flags.set(a, XDP_ADDR_VIP);
    const v4 = [...flags].filter(([a]) => !a.includes(':'));
    const v6 = [...flags].filter(([a]) => a.includes(':'));
    const pack = (list: [string, number][], size: number): Uint8Array => {
      const out = new Uint8Array(list.length * size);
      list.forEach(([a], i) => {
        const b = parseIp(a);
        if (!b || b.length !== size)
          throw new Error(`XDP ${this.ifname}: "${a}" is not an IPv${size === 4 ? 4 : 6} address`);
        out.set(b, i * size);
      });
      return out;
    };
    this.prog.setAddresses(
      pack(v4, 4),
      Uint8Array.from(v4.map(([, f]) => f)),
      pack(v6, 16),
      Uint8Array.from(v6.map(([, f]) => f)),
    );
  }
  close(): void {
    this.prog.close();
  }
}

/**
 * One AF_XDP socket (copy mode) on receive queue `queue` of an interface whose XdpClassifier
 * redirects to it: receives what the program sends there and transmits frames out of that
 * interface. Throws naming the interface, queue and errno (EINVAL at bind: the interface has
 * fewer queues).
 */
export class XdpPort implements PolledPort {
  readonly name: string;
  readonly queue: number;
  private readonly sock: NativeXskSocket;

  constructor(
    ifname: string,
    queue: number,
    xskMapFd: number,
    options: NativeXskOptions = {},
    native: NativeAddon = loadNative(),
  ) {
    this.name = ifname;
    this.queue = queue;
    this.sock = new native.XskSocket(ifname, queue, xskMapFd, options);
  }
  get fd(): number {
    return this.sock.fd;
  }
  get ifindex(): number {
    return this.sock.ifindex;
  }
  get rxHandle(): NativeXskSocket {
    return this.sock;
  }
  recv(batch: PacketBatch, timeoutMs = 0): number {
    return this.sock.recv(batch.data, batch.meta, batch.headroom, timeoutMs);
  }
  send(batch: PacketBatch, count: number): number {
    return this.sock.send(batch.data, batch.meta, count);
  }
  stats(): ReturnType<NativeXskSocket['stats']> {
    return this.sock.stats();
  }
  onReadable(): void {
    throw new Error('XdpPort: wait with PortPoller (worker threads), not onReadable');
  }
  close(): void {
    this.sock.close();
  }
}

/**
 * How a worker thread sleeps until any of its ports has packets: wait() first spins up to
 * spinUs watching the rings (no syscall; rings only), then blocks in poll() on every port.
 * A packet that arrives wakes it at once: nothing waits for a timer.
 */
export class PortPoller {
  private readonly p: NativePoller;

  constructor(ports: readonly PolledPort[], native: NativeAddon = loadNative()) {
    this.p = new native.Poller(ports.map((x) => x.rxHandle));
  }
  /** True when a port may have packets, false when timeoutMs passed. */
  wait(timeoutMs: number, spinUs = 0): boolean {
    return this.p.wait(timeoutMs, spinUs);
  }
}

/**
 * Sends whole IP packets (headers built by the caller) through an IPPROTO_RAW socket; the
 * kernel routes each by its destination address and resolves the neighbour. Used for NAT
 * output and GRE encapsulation. Slots whose first nibble isn't the socket's family are refused
 * with EINVAL (WEIR_F_TX_ERROR). Throws naming CAP_NET_RAW when privileges are missing.
 */
export class RawIpSender implements PacketSink {
  readonly family: 4 | 6;
  private readonly sock: NativeRawSocket;

  constructor(family: 4 | 6, options: { device?: string } = {}, native: NativeAddon = loadNative()) {
    this.family = family;
    this.sock = new native.RawSocket(family, options.device);
  }
  send(batch: PacketBatch, count: number): number {
    return this.sock.send(batch.data, batch.meta, count);
  }
  close(): void {
    this.sock.close();
  }
}

/** IPPROTO_GRE (RFC 2784): the protocol RawIpReceiver listens to unless told otherwise. */
const IPPROTO_GRE = 47;

export interface RawIpReceiverOptions {
  /** IP protocol number to receive, 1..254 (default IPPROTO_GRE = 47). */
  protocol?: number;
  /** SO_BINDTODEVICE: only packets that arrived on this interface. */
  device?: string;
  /**
   * Receive queue in bytes (SO_RCVBUFFORCE with CAP_NET_ADMIN, else SO_RCVBUF capped by
   * net.core.rmem_max; the kernel doubles it for bookkeeping). Default: the kernel's.
   */
  rcvbuf?: number;
}

/**
 * Receives the packets of one IP protocol addressed to this host through a raw socket, in
 * batches (recvmmsg). Every slot holds a whole IP packet starting with the outer header, so
 * parsePacket(..., LINKTYPE_RAW, ...) reads it the same for both families:
 * - IPv4: the header as it arrived.
 * - IPv6: the kernel hands raw sockets only the payload; the addon writes an IPv6 header in
 *   front (source, destination from IPV6_PKTINFO, hop limit, traffic class; flow label 0,
 *   no extension headers) and sets WEIR_F_SYNTH_HDR in META_FLAGS.
 * META_IFINDEX holds the receiving interface, META_PROTO ETH_P_IP / ETH_P_IPV6. A packet larger
 * than the slot is cut (WEIR_F_TRUNCATED, full size in META_WIRE_LEN). IPv4 fragments arrive
 * reassembled. While this socket is open the kernel stops answering "protocol unreachable"
 * for the protocol. Throws naming CAP_NET_RAW when privileges are missing.
 */
export class RawIpReceiver implements PacketSource, ReadinessSource {
  readonly family: 4 | 6;
  readonly protocol: number;
  private readonly sock: NativeRawRecvSocket;

  constructor(family: 4 | 6, options: RawIpReceiverOptions = {}, native: NativeAddon = loadNative()) {
    this.family = family;
    this.protocol = options.protocol ?? IPPROTO_GRE;
    this.sock = new native.RawRecvSocket(family, this.protocol, options.device, options.rcvbuf);
  }
  get fd(): number {
    return this.sock.fd;
  }
  /** See PacketSource.recv; IPv6 needs batch.headroom + 60 <= slotSize (40 for the header). */
  recv(batch: PacketBatch, timeoutMs = 0): number {
    return this.sock.recv(batch.data, batch.meta, batch.headroom, timeoutMs);
  }
  onReadable(cb: (() => void) | null, options: { unref?: boolean } = {}): void {
    this.sock.onReadable(cb, options.unref ?? false);
  }
  /** Closes the socket (and stops onReadable); safe to call twice. */
  close(): void {
    this.sock.close();
  }
}
