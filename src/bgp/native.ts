// The BGP speaker's view of the native addon (native/bgp_native.cc): TCP-MD5 socket helpers and
// the BFD engine, with types. The addon is loaded by src/io/native.ts; this module checks the
// BGP part's own ABI number and is the only place that casts the addon to these types.
import { loadNative } from '../io/native.js';

/** native/bgp_native.cc kBgpAbiVersion. */
export const BGP_NATIVE_ABI = 1;

/** A BFD state change reported by the engine's thread (native/bfd.cc). */
export interface BfdNativeEvent {
  discriminator: number;
  peer: string;
  state: BfdStateName;
  previous: BfdStateName;
  /** Local diagnostic (RFC 5880 §4.1): 1 detection time expired, 3 neighbour signalled down, 7 admin down. */
  diag: number;
  remoteDiag: number;
  /** Wall clock of the change, ms (the thread's, not the event loop's). */
  atMs: number;
}

export type BfdStateName = 'AdminDown' | 'Down' | 'Init' | 'Up';

export interface BfdNativeSession {
  discriminator: number;
  remoteDiscriminator: number;
  peer: string;
  sourcePort: number;
  state: BfdStateName;
  remoteState: BfdStateName;
  diag: number;
  remoteDiag: number;
  /** The interval in use: max(our DesiredMinTx, the peer's RequiredMinRx). */
  txIntervalUs: number;
  /** The peer's Detect Mult × max(our RequiredMinRx, its DesiredMinTx). */
  detectTimeUs: number;
  rxPackets: number;
  txPackets: number;
  upCount: number;
  sinceMs: number;
}

/** Packets the engine discarded, by reason (native/bfd.h Drop). */
export const BFD_DROP_REASONS = [
  'short',
  'version',
  'length',
  'detectMult',
  'multipoint',
  'myDiscriminator',
  'yourDiscriminatorZero',
  'authentication',
  'ttl',
  'unknownDiscriminator',
  'unknownPeer',
  'wrongSource',
] as const;
export type BfdDropReason = (typeof BFD_DROP_REASONS)[number];

export interface BfdNativeStats {
  rxPackets: number;
  txPackets: number;
  txErrors: number;
  /** Packets not sent because JavaScript had not called heartbeat() within heartbeatTimeoutMs. */
  txSuppressed: number;
  /** Times the heartbeat went stale and came back. */
  stalls: number;
  drops: Record<BfdDropReason, number>;
}

export interface BfdNativeEngine {
  /** The UDP port it receives on (3784, or the ephemeral one of port: 0). */
  readonly port: number;
  /** Returns the local discriminator. Throws on bad options, a taken port 3784 or a socket error. */
  addSession(o: {
    peer: string;
    local?: string;
    minTxUs: number;
    minRxUs: number;
    multiplier: number;
    remotePort?: number;
  }): number;
  /** Sends AdminDown and forgets the session; false when unknown. */
  removeSession(discriminator: number): boolean;
  /** The event loop is alive: the thread keeps transmitting for heartbeatTimeoutMs more. */
  heartbeat(): void;
  sessions(): BfdNativeSession[];
  stats(): BfdNativeStats;
  /** AdminDown on every session, then stops the thread and closes the sockets. */
  close(): void;
}

/** RFC 5880 §4.1 fields as bfdEncode takes them and bfdDecode returns them. */
export interface BfdPacketFields {
  version?: number;
  diag?: number;
  state?: number;
  poll?: boolean;
  final?: boolean;
  cpi?: boolean;
  auth?: boolean;
  demand?: boolean;
  multipoint?: boolean;
  detectMult?: number;
  myDisc?: number;
  yourDisc?: number;
  desiredMinTxUs?: number;
  requiredMinRxUs?: number;
  requiredMinEchoRxUs?: number;
}

export type BfdDecoded =
  | ({ ok: true; stateName: BfdStateName; length: number } & Required<BfdPacketFields>)
  | { ok: false; reason: BfdDropReason };

export interface BgpNativeAddon {
  bgpAbiVersion(): number;
  /** A non-blocking, close-on-exec TCP socket fd (not bound, not connected). */
  tcpSocket(family: 4 | 6): number;
  tcpBind(fd: number, address: string, port: number, opts?: { reuseAddr?: boolean; v6Only?: boolean }): void;
  /** TCP_MD5SIG for one peer on fd; null removes it. Throws an Error with `code` (errno name). */
  setTcpMd5(fd: number, peer: string, key: string | Uint8Array | null): void;
  closeFd(fd: number): void;
  BfdEngine: new (o: {
    onEvent: (ev: BfdNativeEvent) => void;
    port?: number;
    heartbeatTimeoutMs?: number;
  }) => BfdNativeEngine;
  bfdEncode(fields: BfdPacketFields): Buffer;
  bfdDecode(bytes: Uint8Array): BfdDecoded;
}

let cached: BgpNativeAddon | undefined;

/** Loads the addon once and checks its BGP ABI. Throws with the loader's fixes when it is missing or stale. */
export function loadBgpNative(): BgpNativeAddon {
  if (cached) return cached;
  const addon = loadNative() as unknown as Partial<BgpNativeAddon>; // the one cast: the addon's BGP exports
  const abi = typeof addon.bgpAbiVersion === 'function' ? addon.bgpAbiVersion() : 0;
  if (abi !== BGP_NATIVE_ABI) {
    throw new Error(
      `weir native addon: BGP ABI ${abi} does not match this weir (${BGP_NATIVE_ABI}); it is stale: rebuild it (npm rebuild)`,
    );
  }
  cached = addon as BgpNativeAddon;
  return cached;
}
