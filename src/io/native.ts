// Loads the C++ addon (build/Release/weir_native.node) and describes its shape in types. The
// only module that touches the untyped addon; everything else imports NativeAddon from here.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The addon's ABI this TypeScript face was written for (native/addon.cc kAbiVersion). */
export const NATIVE_ABI_VERSION = 10;

/** Options of an AF_PACKET socket (native/af_packet.cc). */
export interface NativePacketSocketOptions {
  /** Receive through an mmap ring (default true); false makes a send-only socket. */
  rx?: boolean;
  /**
   * TPACKET_V2 (default): each frame is handed over, and the reader woken, as it arrives.
   * TPACKET_V3: frames packed in blocks, handed over when a block fills or its retire timer
   * fires (retireTimeoutMs), so at light load each packet waits for the timer.
   */
  ringVersion?: 2 | 3;
  /** Ring block size in bytes, a multiple of the page size (default 256 KiB). */
  blockSize?: number;
  /** Ring blocks (default 8). */
  blockCount?: number;
  /** V2: bytes per frame, a multiple of 16 (default 2048); a frame holds 66 bytes of header, then the packet. */
  frameSize?: number;
  /** V3: milliseconds before a partly filled block is handed over (default 1). */
  retireTimeoutMs?: number;
  /** PACKET_FANOUT group id (1..65535); 0 = no fanout (default). A group belongs to one interface. */
  fanoutGroup?: number;
  /** Join a new fanout group whose id the kernel picks (PACKET_FANOUT_FLAG_UNIQUEID); read it from `fanoutGroup`. */
  fanoutUnique?: boolean;
  /** PACKET_FANOUT mode and flags, high half of the option (default PACKET_FANOUT_HASH = 0). */
  fanoutMode?: number;
  /** PACKET_IGNORE_OUTGOING: skip packets this host sends (default true). */
  ignoreOutgoing?: boolean;
  /** PACKET_QDISC_BYPASS for sends (default false). */
  qdiscBypass?: boolean;
  /** SO_SNDBUF in bytes (default: the kernel's). */
  sndbuf?: number;
}

export interface NativePacketSocket {
  readonly fd: number;
  readonly ifindex: number;
  /** The fanout group id the socket is in (0: none). */
  readonly fanoutGroup: number;
  recv(data: Uint8Array, meta: Uint32Array, headroom: number, timeoutMs: number): number;
  send(data: Uint8Array, meta: Uint32Array, count: number): number;
  stats(): { packets: number; drops: number; freezeQueueCount: number };
  onReadable(cb: (() => void) | null, unref?: boolean): void;
  close(): void;
}

export interface NativeTunQueue {
  readonly fd: number;
  readonly name: string;
  recv(data: Uint8Array, meta: Uint32Array, headroom: number, timeoutMs: number): number;
  send(data: Uint8Array, meta: Uint32Array, count: number): number;
  onReadable(cb: (() => void) | null, unref?: boolean): void;
  close(): void;
}

export interface NativeRawSocket {
  readonly fd: number;
  send(data: Uint8Array, meta: Uint32Array, count: number): number;
  close(): void;
}

/** A raw socket for one IP protocol, receive only (native/raw_socket.cc RawRecvSocket). */
export interface NativeRawRecvSocket {
  readonly fd: number;
  recv(data: Uint8Array, meta: Uint32Array, headroom: number, timeoutMs: number): number;
  onReadable(cb: (() => void) | null, unref?: boolean): void;
  close(): void;
}

/** Options of the io: afxdp classifier on one interface (native/af_xdp.cc XdpProgram). */
export interface NativeXdpProgramOptions {
  /** Receive queues that get an AF_XDP socket (entries of the XSKMAP). */
  queues: number;
  /** Largest number of IPv4 (and of IPv6) addresses the maps hold (default 65536). */
  addresses?: number;
  /** The SNAT port range (inclusive): TCP/UDP to a SNAT address within it is weir's. */
  snatPortMin: number;
  snatPortMax: number;
  /** The interface's MAC: frames to other MACs stay with the kernel. */
  mac: Uint8Array;
  /** The driver's XDP hook (default) or the generic one. */
  native?: boolean;
  /** BPF_F_XDP_HAS_FRAGS: frames may span several buffers (an MTU above a page). */
  frags?: boolean;
}

export interface NativeXdpProgram {
  readonly xskMapFd: number;
  readonly mode: 'native' | 'generic';
  /** Makes the address maps hold exactly these (4 / 16 bytes each, network order) with XDP_ADDR_* flags. */
  setAddresses(v4: Uint8Array, flags4: Uint8Array, v6: Uint8Array, flags6: Uint8Array): void;
  close(): void;
}

/** Options of an AF_XDP socket (native/af_xdp.cc XskSocket). */
export interface NativeXskOptions {
  /** UMEM chunks (default 4096; half receive, half send). */
  frames?: number;
  /** Bytes per chunk, a power of two 2048..65536 (default 4096). */
  chunk?: number;
  /** Entries of each ring, a power of two (default 2048). */
  ringSize?: number;
  /** XDP_USE_SG: frames longer than a chunk arrive and leave as chained descriptors. */
  sg?: boolean;
}

export interface NativeXskSocket {
  readonly fd: number;
  readonly ifindex: number;
  recv(data: Uint8Array, meta: Uint32Array, headroom: number, timeoutMs: number): number;
  send(data: Uint8Array, meta: Uint32Array, count: number): number;
  stats(): {
    rxDropped: number;
    rxInvalid: number;
    txInvalid: number;
    rxRingFull: number;
    fillRingEmpty: number;
    txRingEmpty: number;
  };
  close(): void;
}

/** Waits on several receiving sockets (PacketSocket with rx, TunQueue, XskSocket) at once (native/poller.cc). */
export interface NativePoller {
  /** True when a source may have packets; false when timeoutMs passed. Spins up to spinUs watching the rings first. */
  wait(timeoutMs: number, spinUs: number): boolean;
}

/** The addon's exports. Tests may pass a fake of this shape to the classes in src/io. */
export interface NativeAddon {
  abiVersion(): number;
  readonly metaWords: number;
  PacketSocket: new (ifname: string, options?: NativePacketSocketOptions) => NativePacketSocket;
  TunQueue: new (name: string, multiQueue?: boolean) => NativeTunQueue;
  RawSocket: new (family: 4 | 6, bindToDevice?: string) => NativeRawSocket;
  RawRecvSocket: new (family: 4 | 6, protocol: number, bindToDevice?: string, rcvbuf?: number) => NativeRawRecvSocket;
  Poller: new (sources: readonly (NativePacketSocket | NativeTunQueue | NativeXskSocket)[]) => NativePoller;
  XdpProgram: new (ifname: string, options: NativeXdpProgramOptions) => NativeXdpProgram;
  XskSocket: new (ifname: string, queue: number, xskMapFd: number, options?: NativeXskOptions) => NativeXskSocket;
  setNetns(fd: number): void;
  /** GRO and LRO of an interface (SIOCETHTOOL). */
  ethtoolGet(ifname: string): ReceiveAggregation;
  /** Turns GRO and/or LRO on or off; throws with errno (EPERM without CAP_NET_ADMIN). */
  ethtoolSet(ifname: string, want: Partial<ReceiveAggregation>): void;
  /** Scheduling policy of the calling thread only (fifo/rr: priority 1..99; other: nice -20..19). */
  setThreadScheduling(s: { policy: 'other' | 'fifo' | 'rr'; priority?: number; nice?: number }): void;
  /** sd_notify(3): one datagram with `state` to the AF_UNIX socket `path` ($NOTIFY_SOCKET; "@…" abstract). Throws with the errno. */
  sdNotify(path: string, state: string): void;
  /**
   * Every thread keeps only the capabilities numbered in `keep` (effective and permitted; the
   * bounding set too when the process has CAP_SETPCAP; inheritable and ambient emptied). `failed`
   * counts threads that could not be reached (a thread blocking every signal). Masks are hex.
   */
  dropCapabilities(keep: number[]): { threads: number; failed: number; effective: string; bounding: string };
  /** The calling thread's capability masks (hex). */
  capabilities(): { effective: string; permitted: string; bounding: string };
}

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * Where the addon may be: only $WEIR_NATIVE when set; else a source build (build/Release, then
 * build/Debug) and then the prebuilt one for this platform (prebuilds/<platform>-<arch>/weir.node),
 * under the package root above dist/src/io (or src/io when run from source).
 */
export function nativeCandidates(): string[] {
  if (process.env.WEIR_NATIVE) return [path.resolve(process.env.WEIR_NATIVE)];
  const out: string[] = [];
  for (const up of ['../../..', '../..']) {
    const root = path.resolve(here, up);
    for (const kind of ['Release', 'Debug']) out.push(path.join(root, 'build', kind, 'weir_native.node'));
    out.push(path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'weir.node'));
  }
  return out;
}

/** Receive aggregation of an interface: the kernel's GRO and the NIC's LRO. */
export interface ReceiveAggregation {
  gro: boolean;
  lro: boolean;
}

let cached: NativeAddon | undefined;

/** Loads the addon once: the first candidate that loads with this weir's ABI. Throws an Error that lists where it looked and how to fix it. */
export function loadNative(): NativeAddon {
  if (cached) return cached;
  const tried = nativeCandidates();
  const failures: string[] = [];
  let cause: unknown;
  for (const file of tried.filter((p) => existsSync(p))) {
    try {
      const require = createRequire(import.meta.url);
      const addon = require(file) as NativeAddon; // the one untyped line: the addon's exports
      const abi = addon.abiVersion();
      if (abi !== NATIVE_ABI_VERSION) {
        throw new Error(`addon ABI ${abi} does not match this weir (${NATIVE_ABI_VERSION}); it is stale`);
      }
      cached = addon;
      return addon;
    } catch (err) {
      cause ??= err;
      failures.push(`loading ${file} failed: ${(err as Error).message}`);
    }
  }
  const why = failures.length > 0 ? failures.join('\n') : `not found; looked in:\n  ${tried.join('\n  ')}`;
  throw new Error(
    `weir native addon (weir_native.node) ${why}\n` +
      'Possible fixes:\n' +
      '  - build it: `npm install` in the weir folder (or `npm rebuild`); WEIR_BUILD_FROM_SOURCE=1 skips the prebuilt one\n' +
      '  - the build needs g++, make and python3 (Debian: apt-get install -y g++ make python3)\n' +
      '    and the Node headers (set npm_config_nodedir if node-gyp cannot find them offline)\n' +
      '  - or point WEIR_NATIVE at a built weir_native.node',
    { cause },
  );
}
