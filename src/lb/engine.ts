// The per-packet engine of the data plane: parse → match a VIP → conntrack → Maglev (+ SNAT
// port) → rewrite / encapsulate, returning a verdict that says where the bytes go. Pure and
// synchronous; allocates nothing per packet, never throws on a packet, counts every verdict.
//
// Policies (the README and docs repeat them for operators):
// - Unknown traffic (no VIP, no NAT flow, non-IP frames): VERDICT_PASS (AF_PACKET: the kernel
//   already has its copy; leave it alone) or VERDICT_DROP, per `unknownTraffic`. Counted.
// - nat: client → VIP is rewritten to SNAT addr/port → backend; replies backend → SNAT are
//   rewritten to VIP → client; both leave as VERDICT_TX_IP (the kernel routes them), except
//   that packets to a backend with a resolved next hop (VipTable.backendHasHop) leave as
//   VERDICT_TX_L2 frames to that MAC ("next-hop output", also for dsr-gre): the kernel's route
//   lookup and output hooks cost about as much per packet as the rest of weir. Backends
//   must be of the VIP's family (no NAT46/64). TTL is not decremented (weir acts as a host-side
//   proxy, as Katran and IPVS-DR do). ICMP errors about a tracked NAT flow are translated in
//   both directions, outer and quoted headers, after RFC 5508 §7 / RFC 3022 §4.3: quoted
//   IPv4 header checksum and quoted L4 checksum adjusted (RFC 1624) as the original would be,
//   ICMP checksum recomputed. The outer source of an error towards the client is rewritten to
//   the VIP only when it is the backend itself (a router's address stays as it is).
// - dsr-gre: the client packet, untouched, inside outer IPv4/IPv6 + GRE (RFC 2784) to the
//   backend. Outer + inner above `pathMtu`: DF set (IPv4) or IPv6 → ICMP fragmentation needed
//   (RFC 1191 §4) / packet too big (RFC 4443 §3.2) to the client, from the VIP, MTU = pathMtu
//   − overhead; DF clear → dropped and counted (dropTooBigNoDf): a raw IP_HDRINCL send does not
//   fragment and weir does not fragment the outer packet either (as GLB: "will not fragment").
//   Give the links towards the backends a larger MTU or clamp the MSS. Generated errors are
//   rate-limited per engine by a token bucket of `icmpRate` per second (RFC 4443 §2.4(f)).
// - ICMP errors addressed to a VIP address and quoting a VIP flow (e.g. fragmentation needed
//   about the backend's VIP → client reply, RFC 1191) go to the backend that owns the quoted
//   flow: the conntrack entry of the reversed quote if any, else Maglev on the reversed quote
//   (the same backend the client's packets reach). In dsr-l2 by MAC, in dsr-gre encapsulated.
// - dsr-l2: destination MAC := backend MAC, VERDICT_TX_L2 on the backend's interface (its
//   ifindex in META_IFINDEX; 0 = the receiving one), source MAC := that interface's MAC (or
//   localMac, or the frame's old destination MAC, i.e. ours). Needs Ethernet input.
// - Fragments addressed to a VIP address: dropped (default) or passed, per `fragments`; they
//   cannot be balanced consistently because later fragments carry no ports (Katran drops them
//   too). Counted either way. (PMTU discovery keeps TCP unfragmented.)
// - Established flows keep their backend (conntrack's backendId) across table swaps while that
//   backend id is still in the VIP's backend list; a flow whose backend left the list (or whose
//   VIP id changed) is deleted and scheduled again with the current Maglev table (counted as
//   rescheduled); so is a nat flow whose SNAT address is no longer its VIP's (the replies to the
//   old address would not come back through weir). Drain = weight 0 in Maglev, backend still listed.
// - Offloads: TP_STATUS_CSUMNOTREADY → the L4 checksum is computed in full before any rewrite
//   (csumCompleted); TP_STATUS_GSO_TCP or an IP packet longer than `mtu` → dropGso. Operators
//   turn GRO/LRO off on the receiving NIC and tx offload off on veth peers (see the README).
// - nat SNAT: a new flow takes an (address, port) of its VIP's pool, addresses in turn, then the
//   next port (SnatAllocator proposes, the connection table refuses a reply key in use); after
//   `tries` refusals it is dropped as dropSnatExhausted (README "SNAT ports").
// - Rate limits: a packet that would open a flow first takes a token from its client prefix's
//   bucket, then from the instance's (rate-limit.ts); without one it is dropped as
//   dropRateLimitClient / dropRateLimitInstance. Packets of existing flows never pay.
// - Conntrack full: nat drops the packet (dropConntrackFull; replies could not be mapped);
//   DSR forwards it statelessly by Maglev (ctInsertFailed).
// - nat: a SYN with FIN or RST, or with a bad IPv4 header or TCP checksum, opens no flow
//   (dropBadSyn): the backend would drop it anyway, and its retransmission must not pass for
//   the backend's silence.
// - Passive health (nat TCP only: DSR never sees replies): a backend answering a client's SYN
//   with RST, or a client retransmitting its SYN (≥ SYN_RETRANSMIT_MIN_MS later, checksums
//   good) while the backend has sent nothing, is a failed connection, counted once; a SYN-ACK
//   is a working one. Events go into `passive` for the worker to drain after each batch. A
//   success is reported only after a failure was reported for that backend (flags shared by
//   the workers), so healthy traffic produces no events at all.

import {
  buildIcmpFragNeeded,
  buildIcmpv6PacketTooBig,
  copyBytes,
  csumApplyDelta,
  csumFold,
  encapGre,
  encapGreInPlace,
  fillL4Checksum,
  icmpErrorAllowed,
  ipv4ChecksumOk,
  l4ChecksumOk,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV6_MIN_MTU,
  isIcmpError,
  LINKTYPE_ETHERNET,
  PacketInfo,
  parseIcmpQuote,
  parsePacket,
  PKT_ERR_L3_UNSUPPORTED,
  PKT_ERROR_NAMES,
  readU16,
  ETH_HLEN,
  LINKTYPE_RAW,
  TP_STATUS_CSUMNOTREADY,
  TP_STATUS_GSO_TCP,
  rewriteDstAddr,
  rewriteDstPort,
  rewriteSrcAddr,
  rewriteSrcPort,
  setEthDst,
  setEthSrc,
  writeU16,
  readTcpOptions,
  TcpOptions,
  TcpSegmentSpec,
  writeTcpSegment,
  type SynOptionSpec,
} from '../packet/index.js';
import { CT_DIR_ORIG, CT_DIR_REPLY, CT_ERR_REPLY_IN_USE, type ConnTable } from './conntrack.js';
import {
  CT_CLOSED,
  CT_SYN_RECV,
  CT_SYN_SENT,
  CT_TIME_WAIT,
  TH_ACK,
  TH_FIN,
  TH_RST,
  TH_SYN,
} from './conntrack-tcp-state.js';
import { flowHashV4, flowHashV6 } from './flow-hash.js';
import type { SnatAllocator } from './snat.js';
import { RL_ALLOW, RL_DENY_CLIENT, type RateLimiter } from './rate-limit.js';
import {
  FRAG_DROP,
  MODE_DSR_GRE,
  MODE_NAT,
  SYN_PROXY_AUTO,
  SYN_PROXY_OFF,
  SYN_PROXY_ON,
  type VipTable,
} from './vip-table.js';
import { COOKIE_MSS, CookieOptions, cookieMssIndex, SynCookies } from './syncookie.js';
import { counterSet } from '../util/counters.js';

// ─── verdicts: where the output goes ──────────────────────────────────────────────────────
/** Drop the packet (EngineOutput.reason says why). */
export const VERDICT_DROP = 0;
/** Send the Ethernet frame at out.buf[out.off, +out.len) out of the AF_PACKET socket. */
export const VERDICT_TX_L2 = 1;
/** Send the IP packet at out.buf[out.off, +out.len) through the raw IP socket (kernel routes it). */
export const VERDICT_TX_IP = 2;
/** Not ours: leave it to the kernel. */
export const VERDICT_PASS = 3;
export const VERDICT_NAMES: readonly string[] = ['DROP', 'TX_L2', 'TX_IP', 'PASS'];

// ─── counters (indexes into Engine.counters) ──────────────────────────────────────────────
export const ENGINE_COUNTERS = counterSet({
  rx: 'Packets the engine received.',
  txNat: 'nat: client packets sent on to a backend, translated.',
  txNatReply: 'nat: backend replies sent on to the client, translated back.',
  txGre: 'dsr-gre: client packets sent to a backend inside GRE.',
  txL2: 'dsr-l2: client frames sent to a backend by MAC.',
  txIcmpToBackend: 'ICMP errors about a flow passed on to its backend.',
  txIcmpToClient: 'ICMP errors about a nat flow passed on to its client, translated.',
  txFragNeeded: 'ICMP fragmentation-needed / packet-too-big sent to clients (dsr-gre outer header too big).',
  passNoVip: 'Packets for no VIP and no nat flow, left to the kernel (unknown_traffic: pass).',
  passNotIp: 'Frames that are not IP, left to the kernel.',
  passFragment: 'IP fragments to a VIP, left to the kernel (fragments: pass).',
  dropNoVip: 'Packets for no VIP and no nat flow, dropped (unknown_traffic: drop).',
  dropFragment: 'IP fragments to a VIP, dropped (fragments: drop).',
  dropMalformed: 'Packets whose headers do not parse.',
  dropTruncated: 'Packets cut by the I/O layer (larger than a slot).',
  dropGso: 'GRO/GSO super-frames (offloads on: turn them off on the interfaces weir uses).',
  dropChecksum: 'Packets whose partial checksum could not be completed.',
  dropNoBackend: 'New flows to a VIP with no backend taking flows.',
  dropConntrackFull: 'nat packets dropped because the connection table is full.',
  dropSnatExhausted: 'New nat flows with no free SNAT port.',
  dropNoRoom: 'Outputs that do not fit where they must be built or sent.',
  dropTooBigNoDf: 'dsr-gre packets too big for the path without DF (weir does not fragment).',
  dropIcmpUnmatched: 'ICMP errors that quote no flow weir knows.',
  dropIcmpNotAllowed: 'Packets that may not be answered with an ICMP error (RFC 1812 §4.3.2.7).',
  dropNoL2: 'dsr-l2 packets without an Ethernet header (io: tun).',
  dropKeyConflict: "Client packets whose key is another flow's reply key.",
  newFlows: 'Flows that got a backend from the Maglev table.',
  ctInsertFailed: 'dsr flows forwarded without an entry (connection table full).',
  rescheduled: 'Flows moved to another backend because theirs left the VIP.',
  csumCompleted: 'Partial checksums completed in software (tx offload on a veth peer).',
  dropIcmpRateLimited: 'ICMP errors weir did not send (rate limit, RFC 4443 §2.4(f)).',
  synRst: 'nat: SYNs a backend answered with RST (passive health).',
  synUnanswered: 'nat: SYNs a client retransmitted that the backend never answered (passive health).',
  passiveLost: 'Passive health events dropped because a batch had too many.',
  dropBadSyn: 'nat: SYNs with FIN/RST or a bad checksum (they open no flow).',
  txNextHop: "Of txNat, txGre and txIcmpToBackend: packets sent as frames to the backend's next hop (l2_output).",
  dropRateLimitClient: "New flows over their client prefix's rate (rate_limits.per_client_*).",
  dropRateLimitInstance: "New flows over the instance's rate (rate_limits.new_flows_per_second).",
  txSynCookie: 'nat SYN proxy: SYN-ACKs with a cookie sent to clients (no state kept).',
  txProxySyn: 'nat SYN proxy: SYNs sent to a backend for a client whose ACK carried a valid cookie.',
  txProxyAck: "nat SYN proxy: ACKs sent to a backend for its SYN-ACK (the client's handshake was with weir).",
  synProxied: 'nat SYN proxy: connections established with a backend through a cookie handshake.',
  txProxyRst:
    'nat SYN proxy: RSTs sent to a backend whose SYN-ACK acknowledged another SYN (an older connection on the SNAT port).',
  dropBadCookie: 'nat SYN proxy: packets opening no flow, without a valid cookie, while cookies are in use.',
  dropProxyPending: 'nat SYN proxy: packets of a flow whose backend has not answered the SYN yet (the client resends).',
  dropProxyHeld:
    "nat SYN proxy: a client's first data segment held until the backend's SYN-ACK, then sent with weir's ACK (txProxyAck).",
  synProxyAutoOn:
    'nat SYN proxy: times the auto VIPs switched to cookies (half-open handshakes above syn_proxy_threshold).',
  synReopened:
    'SYNs whose tuple was closed (TIME_WAIT or reset) and that started a new flow, scheduled afresh, as Linux conntrack does.',
});
export const ENGINE_COUNTER_NAMES = ENGINE_COUNTERS.names;
export const {
  rx: C_RX,
  txNat: C_TX_NAT,
  txNatReply: C_TX_NAT_REPLY,
  txGre: C_TX_GRE,
  txL2: C_TX_L2,
  txIcmpToBackend: C_TX_ICMP_TO_BACKEND,
  txIcmpToClient: C_TX_ICMP_TO_CLIENT,
  txFragNeeded: C_TX_FRAG_NEEDED,
  passNoVip: C_PASS_NO_VIP,
  passNotIp: C_PASS_NOT_IP,
  passFragment: C_PASS_FRAGMENT,
  dropNoVip: C_DROP_NO_VIP,
  dropFragment: C_DROP_FRAGMENT,
  dropMalformed: C_DROP_MALFORMED,
  dropTruncated: C_DROP_TRUNCATED,
  dropGso: C_DROP_GSO,
  dropChecksum: C_DROP_CHECKSUM,
  dropNoBackend: C_DROP_NO_BACKEND,
  dropConntrackFull: C_DROP_CT_FULL,
  dropSnatExhausted: C_DROP_SNAT_EXHAUSTED,
  dropNoRoom: C_DROP_NO_ROOM,
  dropTooBigNoDf: C_DROP_TOO_BIG_NO_DF,
  dropIcmpUnmatched: C_DROP_ICMP_UNMATCHED,
  dropIcmpNotAllowed: C_DROP_ICMP_NOT_ALLOWED,
  dropNoL2: C_DROP_NO_L2,
  dropKeyConflict: C_DROP_KEY_CONFLICT,
  newFlows: C_NEW_FLOWS,
  ctInsertFailed: C_CT_INSERT_FAILED,
  rescheduled: C_RESCHEDULED,
  csumCompleted: C_CSUM_COMPLETED,
  dropIcmpRateLimited: C_DROP_ICMP_RATE,
  synRst: C_SYN_RST,
  synUnanswered: C_SYN_UNANSWERED,
  passiveLost: C_PASSIVE_LOST,
  dropBadSyn: C_DROP_BAD_SYN,
  txNextHop: C_TX_NEXT_HOP,
  dropRateLimitClient: C_DROP_RL_CLIENT,
  dropRateLimitInstance: C_DROP_RL_INSTANCE,
  txSynCookie: C_TX_SYN_COOKIE,
  txProxySyn: C_TX_PROXY_SYN,
  txProxyAck: C_TX_PROXY_ACK,
  synProxied: C_SYN_PROXIED,
  txProxyRst: C_TX_PROXY_RST,
  dropBadCookie: C_DROP_BAD_COOKIE,
  dropProxyPending: C_DROP_PROXY_PENDING,
  dropProxyHeld: C_DROP_PROXY_HELD,
  synProxyAutoOn: C_SYN_PROXY_AUTO_ON,
  synReopened: C_SYN_REOPENED,
} = ENGINE_COUNTERS.index;

// ─── SYN proxy: the conntrack word W_PX of a flow opened by a cookie ────────────────────────
/** Weir sent the backend its SYN and waits for the SYN-ACK. */
export const PX_PENDING = 1;
/** The backend answered: seq delta and TSval offset are set. */
export const PX_ESTABLISHED = 2;
const PX_STATE = 3;
/** The client offered timestamps (weir echoed them in its SYN-ACK and sent them to the backend). */
const PX_TS = 1 << 2;
/** The client's window scale + 1 (4 bits; 0: none). */
const PX_CWS_SHIFT = 3;
/** The backend's window scale + 1 (4 bits; 0: none, or the client offered none). */
const PX_BWS_SHIFT = 7;
/** The client's window field of its first ACK (16 bits), for weir's ACK to the backend. */
const PX_WIN_SHIFT = 16;
/**
 * Window scale weir announces in cookie SYN-ACKs (when the client offered one): what Linux
 * announces with its default tcp_rmem maximum (6 MB), so that with Linux backends the backend's
 * windows pass unchanged; other shifts are rescaled (RFC 7323 §2.3).
 */
export const PROXY_WSCALE = 7;
/** A client packet this long after its flow was opened while the backend is still silent re-sends the SYN. */
export const PROXY_RETRY_MS = 1000;
/** syn_proxy auto: time constant of the half-open handshake estimate (ms). */
const PX_HALF_TAU_MS = 1000;
/** Window of a cookie SYN-ACK (RFC 7323 §2.2: the window of a SYN is never scaled). */
const PROXY_SYNACK_WINDOW = 65535;

// Writes the 32-bit value v at buf[at] and returns the unfolded RFC 1624 delta of the checksum
// over words aligned to `base` (v may be signed; a field at an odd offset spans three words).
function put32d(buf: Uint8Array, base: number, at: number, v: number): number {
  const s = ((at - base) & 1) === 0 ? at : at - 1;
  const words = s === at ? 2 : 3;
  let d = 0;
  for (let i = 0; i < words; i++) d += ~((buf[s + 2 * i] << 8) | (buf[s + 2 * i + 1] | 0)) & 0xffff;
  buf[at] = v >>> 24;
  buf[at + 1] = (v >>> 16) & 0xff;
  buf[at + 2] = (v >>> 8) & 0xff;
  buf[at + 3] = v & 0xff;
  for (let i = 0; i < words; i++) d += (buf[s + 2 * i] << 8) | (buf[s + 2 * i + 1] | 0);
  return d;
}

// ─── passive health events (Engine.passive) ───────────────────────────────────────────────
/** The backend completed a handshake (SYN-ACK) after this engine reported it failing. */
export const PASSIVE_OK = 0;
/** The backend answered a client's SYN with RST. */
export const PASSIVE_RST = 1;
/** The client retransmitted its SYN and the backend had sent nothing. */
export const PASSIVE_NO_ANSWER = 2;
/** Events an engine holds between drains; more in one batch are counted as passiveLost. */
export const PASSIVE_CAPACITY = 256;
/**
 * A repeated SYN counts as a retransmission only this long after the first: the initial RTO is
 * 1 s (RFC 6298 §2.1, Linux TCP_TIMEOUT_INIT); a duplicate sooner is not the backend's silence.
 */
export const SYN_RETRANSMIT_MIN_MS = 800;

/** Preallocated result of Engine.process(); one per caller, reused for every packet. */
export class EngineOutput {
  verdict = VERDICT_DROP;
  /** The counter (C_*) the packet was counted under: why it was dropped, passed or sent. */
  reason = 0;
  /** The buffer holding the output: the input buffer, or the engine's scratch area. */
  buf: Uint8Array = new Uint8Array(0);
  off = 0;
  len = 0;
  /** VERDICT_TX_L2: interface index to send on; 0 = the interface the packet came in on. */
  ifindex = 0;
  // Per-VIP traffic accounting (the data plane counts from these, src/dataplane/traffic.ts).
  /** Table index of the VIP the packet belongs to (TCP/UDP of a VIP flow), -1 none. */
  vip = -1;
  /** Table index of its backend, -1 none (yet). */
  backend = -1;
  /** 1: a nat reply, backend → client; 0: client → VIP. */
  toClient = 0;
  /** 1: the packet opened a flow (Maglev chose the backend). */
  newFlow = 0;
  /** IP total length of the packet as received. */
  ipLen = 0;
}

export interface EngineOptions {
  /** LINKTYPE_ETHERNET (AF_PACKET, default) or LINKTYPE_RAW (TUN). */
  linkType?: number;
  /**
   * 65536 bytes, by backendId: 1 while a passive failure was reported and no success since.
   * Workers share one (a SYN and its SYN-ACK usually reach different workers); default: own.
   */
  passiveFlags?: Uint8Array;
  /** Token buckets on new flows (rate_limits), shared by the workers; default none. */
  limiter?: RateLimiter;
  /**
   * HOLD_POOL_BYTES shared by the workers' engines: client segments the SYN proxy holds until the
   * backend's SYN-ACK, which may reach another worker (default: the engine's own).
   */
  holdPool?: SharedArrayBuffer;
}

/** Client segments the SYN proxy can hold at once (per pool), and the bytes of one slot. */
export const HOLD_SLOTS = 256;
export const HOLD_SLOT_BYTES = 2048;
export const HOLD_POOL_BYTES = HOLD_SLOTS * HOLD_SLOT_BYTES;
// Slot header (Int32 words): owner (0 free, -1 being written or read, entry + 1), the entry's
// creation time (tells a reused entry from the one that held), hold time, length; then the IP packet.
const HOLD_HDR = 16;
const HOLD_MAX = HOLD_SLOT_BYTES - HOLD_HDR;
/** A held segment older than this is forgotten (its flow never got its SYN-ACK; the client resends). */
const HOLD_STALE_MS = 2000;
const HOLD_TRIES = 16;

function rd32(buf: Uint8Array, o: number): number {
  return (buf[o] << 24) | (buf[o + 1] << 16) | (buf[o + 2] << 8) | buf[o + 3];
}

// Writes n bytes from src at buf[at] and returns the unfolded RFC 1624 delta sum(~old)+sum(new).
function putBytes(buf: Uint8Array, at: number, src: Uint8Array, srcOff: number, n: number): number {
  let d = 0;
  for (let i = 0; i < n; i += 2) {
    const hi = src[srcOff + i],
      lo = src[srcOff + i + 1];
    d += (~((buf[at + i] << 8) | buf[at + i + 1]) & 0xffff) + ((hi << 8) | lo);
    buf[at + i] = hi;
    buf[at + i + 1] = lo;
  }
  return d;
}

function putPort(buf: Uint8Array, at: number, port: number): number {
  const d = (~((buf[at] << 8) | buf[at + 1]) & 0xffff) + (port & 0xffff);
  writeU16(buf, at, port);
  return d;
}

/**
 * The outer IPv6 flow label of a GRE packet (RFC 6438 §3: derived from the inner flow, for
 * ECMP entropy): a seeded multiply-xorshift of the inner addresses (addrLen bytes at sOff and
 * dOff), protocol and ports; 20 bits, never 0. Every instance computes the same label for a
 * flow. Returns a small integer (no boxing).
 */
export function greFlowLabel(
  seed: number,
  proto: number,
  buf: Uint8Array,
  sOff: number,
  dOff: number,
  addrLen: number,
  sport: number,
  dport: number,
): number {
  let h = Math.imul(seed ^ proto, 0x9e3779b1);
  for (let i = 0; i < addrLen; i += 4) {
    h = Math.imul(h ^ rd32(buf, sOff + i), 0x85ebca77);
    h = Math.imul(h ^ (h >>> 15) ^ rd32(buf, dOff + i), 0xc2b2ae3d);
  }
  h = Math.imul(h ^ (h >>> 13) ^ ((sport << 16) | dport), 0x27d4eb2f);
  h ^= h >>> 16;
  const l = h & 0xfffff;
  return l === 0 ? 1 : l;
}

export class Engine {
  /** Counters by C_* index (per engine = per worker; plain increments). */
  readonly counters: Float64Array;
  /** Parse failures by -PKT_ERR_* (names: PKT_ERROR_NAMES). */
  readonly pktErrors = new Float64Array(PKT_ERROR_NAMES.length);
  readonly linkType: number;
  private t: VipTable;
  private readonly ct: ConnTable;
  private readonly snat: SnatAllocator;
  private readonly info = new PacketInfo();
  private readonly quote = new PacketInfo();
  /** Output area for generated ICMP errors and for GRE when the input has too little headroom. */
  readonly scratch = new Uint8Array(65536 + 128);
  private readonly a6 = new Uint8Array(64);
  private minStart = 0;
  private now = 0;
  // Token bucket for generated ICMP errors (RFC 4443 §2.4(f), RFC 1812 §4.3.2.8).
  private icmpTokens = 0;
  private icmpLast = 0;
  /** Passive health events since the last drain: [vipId << 16 | backendId, PASSIVE_*] pairs. */
  readonly passive = new Int32Array(PASSIVE_CAPACITY * 2);
  /** Events in `passive`; the worker reads them and sets this back to 0. */
  passiveCount = 0;
  /** backendId (unique per VIP and backend) → 1 while a failure was reported and no success since. */
  private readonly failing: Uint8Array;
  private readonly limiter: RateLimiter | null;
  // SYN proxy: cookies of the table's key, option scratch, segment spec (all reused).
  private cookies: SynCookies;
  private readonly topt = new TcpOptions();
  private readonly copt = new CookieOptions();
  private readonly seg = new TcpSegmentSpec();
  private readonly synSpec: SynOptionSpec = { mss: 0, wscale: -1, sackPerm: false, tsval: 0, tsecr: 0, ts: false };
  // auto: handshakes left half-open (decaying estimate, see pxSyn); cookies above the threshold.
  private pxHalf = 0;
  // Held client segments: header words and bytes over one (shared) buffer; a scan cursor.
  private readonly holdW: Int32Array;
  private readonly holdB: Uint8Array;
  private holdCursor = 0;
  private pxLast = 0;
  private pxFlood = false;
  // The SNAT address index, port and backend id of a flow just closed by a reopening SYN (−1: none).
  private reSnatIdx = -1;
  private reSnatPort = 0;
  private reBackendId = -1;

  constructor(
    conntrack: ConnTable,
    tables: VipTable,
    snat: SnatAllocator,
    counters?: Float64Array,
    opts: EngineOptions = {},
  ) {
    this.ct = conntrack;
    this.t = tables;
    this.snat = snat;
    if (tables.snatPools > snat.maxPools)
      throw new Error(`VIP table has ${tables.snatPools} SNAT pools, the allocator ${snat.maxPools}`);
    if (counters && counters.length < ENGINE_COUNTER_NAMES.length)
      throw new Error(`counters need ${ENGINE_COUNTER_NAMES.length} slots`);
    this.counters = counters ?? new Float64Array(ENGINE_COUNTER_NAMES.length);
    this.linkType = opts.linkType ?? LINKTYPE_ETHERNET;
    this.icmpTokens = tables.icmpRate;
    this.cookies = new SynCookies(tables.cookieK0, tables.cookieK1);
    if (opts.passiveFlags && opts.passiveFlags.length < 65536) throw new Error('passiveFlags needs 65536 bytes');
    this.failing = opts.passiveFlags ?? new Uint8Array(65536);
    this.limiter = opts.limiter ?? null;
    const pool = opts.holdPool ?? new SharedArrayBuffer(HOLD_POOL_BYTES);
    if (pool.byteLength < HOLD_POOL_BYTES) throw new Error(`holdPool needs ${HOLD_POOL_BYTES} bytes`);
    this.holdW = new Int32Array(pool, 0, HOLD_POOL_BYTES / 4);
    this.holdB = new Uint8Array(pool, 0, HOLD_POOL_BYTES);
  }

  /** Publishes a new table: the next packet uses it. Throws if its SNAT pools do not fit the allocator. */
  setTables(t: VipTable): void {
    if (t.snatPools > this.snat.maxPools)
      throw new Error(`VIP table has ${t.snatPools} SNAT pools, the allocator ${this.snat.maxPools}`);
    if (t.cookieK0 !== this.t.cookieK0 || t.cookieK1 !== this.t.cookieK1)
      this.cookies = new SynCookies(t.cookieK0, t.cookieK1);
    this.t = t;
  }

  /** True while this engine answers new flows to `auto` SYN-proxy VIPs with cookies. */
  get synProxyFlooding(): boolean {
    return this.pxFlood;
  }
  get tables(): VipTable {
    return this.t;
  }

  /** Counter values by name, plus parse errors as "pkt:<NAME>" (control plane). */
  stats(): Record<string, number> {
    const o: Record<string, number> = {};
    Object.assign(o, ENGINE_COUNTERS.read(this.counters));
    this.pktErrors.forEach((v, i) => {
      if (v > 0) o[`pkt:${PKT_ERROR_NAMES[i]}`] = v;
    });
    return o;
  }

  private give(out: EngineOutput, verdict: number, reason: number): number {
    this.counters[reason]++;
    out.verdict = verdict;
    out.reason = reason;
    return verdict;
  }
  private drop(out: EngineOutput, reason: number): number {
    return this.give(out, VERDICT_DROP, reason);
  }
  private unknown(out: EngineOutput): number {
    return this.t.unknownPass
      ? this.give(out, VERDICT_PASS, C_PASS_NO_VIP)
      : this.give(out, VERDICT_DROP, C_DROP_NO_VIP);
  }
  private txIp(out: EngineOutput, buf: Uint8Array, reason: number): number {
    out.buf = buf;
    out.off = this.info.l3Off;
    out.len = this.info.ipTotalLen;
    return this.give(out, VERDICT_TX_IP, reason);
  }

  /**
   * Processes one packet at buf[off, off+len) (framed per linkType), received with TP_STATUS_*
   * `flags`, at conntrack time `now`. Rewrites in place where it can; encapsulation writes the
   * outer header into the `room` bytes before `off` (default: all of buf before off) or, if
   * they are too few, into `scratch`; generated ICMP errors go to `scratch`. Fills `out` and
   * returns out.verdict. Never throws; writes only within buf[off - room, off + len) and scratch.
   */
  process(
    buf: Uint8Array,
    off: number,
    len: number,
    flags: number,
    now: number,
    out: EngineOutput,
    room = off,
  ): number {
    this.counters[C_RX]++;
    out.buf = buf;
    out.off = off;
    out.len = len;
    out.vip = out.backend = -1;
    out.toClient = out.newFlow = 0;
    this.minStart = off - (room < off ? room : off);
    this.now = now;
    const info = this.info,
      t = this.t;
    const r = parsePacket(buf, off, len, this.linkType, info);
    if (r < 0) {
      if (r === PKT_ERR_L3_UNSUPPORTED)
        return this.give(
          out,
          t.unknownPass ? VERDICT_PASS : VERDICT_DROP,
          t.unknownPass ? C_PASS_NOT_IP : C_DROP_NO_VIP,
        );
      if (-r < this.pktErrors.length) this.pktErrors[-r]++;
      return this.drop(out, C_DROP_MALFORMED);
    }
    const fam = info.ipVersion;
    if (info.isFragment) {
      if (!t.isVipAddress(fam, buf, info.dstAddrOff)) return this.unknown(out);
      return t.fragments === FRAG_DROP
        ? this.drop(out, C_DROP_FRAGMENT)
        : this.give(out, VERDICT_PASS, C_PASS_FRAGMENT);
    }
    const proto = info.protocol;
    if ((proto === IPPROTO_TCP || proto === IPPROTO_UDP) && info.l4Parsed) {
      const v = t.findVip(fam, buf, info.dstAddrOff, proto, info.dstPort);
      if (v >= 0) return this.toVip(v, buf, flags, now, out);
      if (t.isSnatAddress(fam, buf, info.dstAddrOff)) return this.natReply(buf, flags, now, out);
      return this.unknown(out);
    }
    if (isIcmpError(info)) return this.icmpError(buf, flags, out);
    return this.unknown(out);
  }

  /** Offload checks before forwarding: 0 if fine, else the drop counter. */
  private prep(buf: Uint8Array, flags: number): number {
    const info = this.info;
    if ((flags & TP_STATUS_GSO_TCP) !== 0 || info.ipTotalLen > this.t.mtu) return C_DROP_GSO;
    if ((flags & TP_STATUS_CSUMNOTREADY) !== 0 && info.l4CsumOff >= 0) {
      // The field holds only the pseudo-header sum: compute the whole checksum (it skips the field).
      if (fillL4Checksum(buf, info) < 0) return C_DROP_CHECKSUM;
      this.counters[C_CSUM_COMPLETED]++;
    }
    return 0;
  }

  private lookup(buf: Uint8Array, proto: number, sOff: number, sport: number, dOff: number, dport: number): number {
    return this.info.ipVersion === 4
      ? this.ct.lookup4(proto, rd32(buf, sOff), sport, rd32(buf, dOff), dport)
      : this.ct.lookup6(proto, buf, sOff, sport, dOff, dport);
  }

  private hash(
    v: number,
    buf: Uint8Array,
    proto: number,
    sOff: number,
    sport: number,
    dOff: number,
    dport: number,
  ): number {
    const t = this.t;
    return this.info.ipVersion === 4
      ? flowHashV4(t.seed, t.vipHashFields[v], proto, rd32(buf, sOff), rd32(buf, dOff), sport, dport)
      : flowHashV6(t.seed, t.vipHashFields[v], proto, buf, sOff, dOff, sport, dport);
  }

  // Client → VIP.
  private toVip(v: number, buf: Uint8Array, flags: number, now: number, out: EngineOutput): number {
    const info = this.info,
      t = this.t,
      ct = this.ct;
    out.vip = v;
    out.ipLen = info.ipTotalLen;
    const bad = this.prep(buf, flags);
    if (bad !== 0) return this.drop(out, bad);
    const proto = info.protocol,
      sp = info.srcPort,
      dp = info.dstPort;
    const mode = t.vipMode[v];
    this.reSnatIdx = -1;
    let e = this.lookup(buf, proto, info.srcAddrOff, sp, info.dstAddrOff, dp);
    let b = -1;
    if (e >= 0) {
      if (ct.lastDir !== CT_DIR_ORIG) return this.drop(out, C_DROP_KEY_CONFLICT); // another flow's reply key
      // Same VIP id and NAT-ness (and nat: SNAT address still in the pool) as now, backend still
      // listed: keep the flow where it is. A flow on a SNAT address a reload took away would get
      // no replies through weir, so it is scheduled again.
      let si = -1;
      if (
        ct.vipIdOf(e) === t.vipId[v] &&
        ct.isNat(e) === (mode === MODE_NAT) &&
        (mode !== MODE_NAT || (si = this.snatIndex(e, v)) >= 0)
      ) {
        b = t.backendOf(v, ct.backendIdOf(e));
      }
      if (b < 0) {
        ct.remove(e);
        e = -1;
        this.counters[C_RESCHEDULED]++;
      }
      // A new connection on a closed tuple (the client reused its port): a new flow, scheduled
      // afresh, so it does not follow the old one to a backend that was drained or removed since
      // (Linux conntrack reopens TIME_WAIT/CLOSE on a SYN, as does IPVS conn_reuse_mode).
      else if (
        proto === IPPROTO_TCP &&
        (info.tcpFlags & (TH_SYN | TH_ACK | TH_RST | TH_FIN)) === TH_SYN &&
        (ct.stateOf(e) === CT_TIME_WAIT || ct.stateOf(e) === CT_CLOSED)
      ) {
        // nat, after a close by FINs: the new flow keeps the old SNAT address and port if it lands
        // on the same backend (natInsert), whose TIME_WAIT then sees the same 4-tuple. Not after a
        // RST: that leaves no TIME_WAIT, and a backend that ignored the RST (RFC 5961 §3) would
        // still hold the old connection on that 4-tuple.
        if (mode === MODE_NAT && ct.stateOf(e) === CT_TIME_WAIT) {
          this.reSnatIdx = si;
          this.reSnatPort = ct.snatPort(e);
          this.reBackendId = ct.backendIdOf(e);
        }
        ct.remove(e);
        e = -1;
        b = -1;
        this.counters[C_SYN_REOPENED]++;
      }
      // The first retransmission of a SYN the backend never answered (nat: replies pass here).
      else if (
        mode === MODE_NAT &&
        proto === IPPROTO_TCP &&
        (info.tcpFlags & (TH_SYN | TH_ACK | TH_RST | TH_FIN)) === TH_SYN &&
        ct.stateOf(e) === CT_SYN_SENT &&
        ct.pkts(e, CT_DIR_REPLY) === 0 &&
        ct.pkts(e, CT_DIR_ORIG) === 1
      )
        this.synRetransmitted(e, buf, now);
    }
    if (e >= 0 && mode === MODE_NAT && proto === IPPROTO_TCP) {
      let w = ct.proxyOf(e);
      if (w !== 0) {
        const f = info.tcpFlags;
        if ((w & PX_STATE) === PX_PENDING) {
          // The backend has not answered weir's SYN yet: nothing can be translated.
          if ((f & TH_RST) !== 0) {
            this.holdTake(e, ct.createdAt(e), true);
            ct.remove(e);
            return this.drop(out, C_DROP_PROXY_PENDING);
          }
          if ((f & TH_SYN) === 0 && ((now - ct.createdAt(e)) | 0) < PROXY_RETRY_MS) {
            const r = this.pxHold(e, buf, now, out);
            if (r >= 0) return r;
            w = ct.proxyOf(e); // the backend answered meanwhile: forward it as usual
          } else {
            // A new SYN on the tuple, or a client still resending after PROXY_RETRY_MS (weir's
            // SYN or the backend's SYN-ACK was lost): open again, the cookie checks once more.
            this.holdTake(e, ct.createdAt(e), true);
            ct.remove(e);
            e = -1;
          }
        }
        if (e < 0 || (w & PX_STATE) !== PX_ESTABLISHED) {
          /* opened again below */
        } else if ((f & (TH_SYN | TH_ACK)) === TH_SYN) {
          ct.remove(e); // a new connection on the tuple of a proxied one
          e = -1;
        } else {
          ct.track(e, CT_DIR_ORIG, f, info.ipTotalLen, now);
          this.natRewrite(buf, e, 3, ct.snatPort(e), 2, ct.backendPort(e));
          this.pxToBackend(buf, e, w);
          if (t.backendHasHop[b] !== 0) return this.hopOut(buf, info.l3Off, info.ipTotalLen, b, out, C_TX_NAT);
          return this.txIp(out, buf, C_TX_NAT);
        }
      }
    }
    if (e < 0 && t.vipSynProxy[v] !== SYN_PROXY_OFF) {
      const r = this.proxyFirst(v, buf, now, out);
      if (r >= 0) return r;
    }
    if (e < 0) {
      if (this.limiter !== null && this.limited(buf, now, out)) return VERDICT_DROP;
      const h = this.hash(v, buf, proto, info.srcAddrOff, sp, info.dstAddrOff, dp);
      const idx = t.maglev[v].lookup(h);
      if (!(idx >= 0 && idx < t.vipBackendCount[v])) return this.drop(out, C_DROP_NO_BACKEND);
      b = t.vipBackendBase[v] + idx;
      if (mode === MODE_NAT) {
        if (proto === IPPROTO_TCP && (info.tcpFlags & TH_SYN) !== 0 && !this.goodSyn(buf))
          return this.drop(out, C_DROP_BAD_SYN);
        e = this.natInsert(v, b, buf, now);
        if (e < 0) return this.drop(out, e === CT_ERR_REPLY_IN_USE ? C_DROP_SNAT_EXHAUSTED : C_DROP_CT_FULL);
      } else {
        e =
          info.ipVersion === 4
            ? ct.insert4(
                proto,
                rd32(buf, info.srcAddrOff),
                sp,
                rd32(buf, info.dstAddrOff),
                dp,
                t.vipId[v],
                t.backendId[b],
                now,
              )
            : ct.insert6(proto, buf, info.srcAddrOff, sp, info.dstAddrOff, dp, t.vipId[v], t.backendId[b], now);
        if (e < 0) this.counters[C_CT_INSERT_FAILED]++;
        else if (ct.backendIdOf(e) !== t.backendId[b]) {
          const b2 = t.backendOf(v, ct.backendIdOf(e)); // another worker inserted first: follow it
          if (b2 >= 0) b = b2;
        }
      }
      this.counters[C_NEW_FLOWS]++;
      out.newFlow = 1;
    }
    out.backend = b;
    if (e >= 0) {
      // auto: the client's ACK that completes a plain-nat handshake (see pxSyn)
      if (
        (info.tcpFlags & (TH_SYN | TH_ACK | TH_RST)) === TH_ACK &&
        t.vipSynProxy[v] === SYN_PROXY_AUTO &&
        ct.stateOf(e) === CT_SYN_RECV
      ) {
        const st = ct.track(e, CT_DIR_ORIG, info.tcpFlags, info.ipTotalLen, now);
        if (st >= 0 && st !== CT_SYN_RECV) this.pxDone(now);
      } else ct.track(e, CT_DIR_ORIG, info.tcpFlags, info.ipTotalLen, now);
    }

    if (mode === MODE_NAT) {
      // RFC 3022 §4.1: destination → backend, source → SNAT, checksums fixed incrementally.
      // Addresses go through bytes for both families: a uint32 above 2^31 crossing a call
      // would be boxed (a heap allocation per packet).
      this.natRewrite(buf, e, 3, ct.snatPort(e), 2, ct.backendPort(e));
      if (t.backendHasHop[b] !== 0) return this.hopOut(buf, info.l3Off, info.ipTotalLen, b, out, C_TX_NAT);
      return this.txIp(out, buf, C_TX_NAT);
    }
    if (mode === MODE_DSR_GRE) {
      const fl = greFlowLabel(t.seed, proto, buf, info.srcAddrOff, info.dstAddrOff, info.addrLen, sp, dp);
      return this.greOut(buf, b, fl, out, true, C_TX_GRE);
    }
    return this.l2Out(buf, b, out, C_TX_L2);
  }

  // rate_limits: true (and the drop counted in `out`) when the client's prefix or the instance
  // has no token left for a new flow.
  private limited(buf: Uint8Array, now: number, out: EngineOutput): boolean {
    const rl = this.limiter!.admit(this.info.ipVersion, buf, this.info.srcAddrOff, now);
    if (rl === RL_ALLOW) return false;
    this.drop(out, rl === RL_DENY_CLIENT ? C_DROP_RL_CLIENT : C_DROP_RL_INSTANCE);
    return true;
  }

  // The entry's SNAT address as an index into VIP v's pool (−1: not in it any more).
  private snatIndex(e: number, v: number): number {
    const t = this.t,
      base = t.vipSnatBase[v],
      end = base + t.vipSnatCount[v];
    if (this.info.ipVersion === 4) {
      const s = this.ct.snatAddr4(e) | 0;
      for (let i = base; i < end; i++) if (t.snatAddr4[i] === s) return i - base;
      return -1;
    }
    const a = this.a6;
    this.ct.copyAddr6(e, 3, a, 0);
    for (let i = base; i < end; i++) {
      let j = 0;
      while (j < 16 && a[j] === t.snatAddr[i * 16 + j]) j++;
      if (j === 16) return i - base;
    }
    return -1;
  }

  // New source and destination (entry addresses by copyAddr6 index: 0 client, 1 VIP, 2 backend,
  // 3 SNAT) and ports, every checksum fixed incrementally.
  private natRewrite(buf: Uint8Array, e: number, src: number, sport: number, dst: number, dport: number): void {
    const info = this.info,
      a = this.a6,
      n = info.addrLen,
      ct = this.ct;
    ct.copyAddr6(e, src, a, 0);
    ct.copyAddr6(e, dst, a, 16);
    rewriteSrcAddr(buf, info, a, 0, n);
    rewriteDstAddr(buf, info, a, 16, n);
    rewriteSrcPort(buf, info, sport);
    rewriteDstPort(buf, info, dport);
  }

  private natInsert(v: number, b: number, buf: Uint8Array, now: number): number {
    const info = this.info,
      t = this.t,
      ct = this.ct,
      snat = this.snat;
    const pool = t.vipSnatPool[v],
      min = t.vipSnatMin[v],
      nAddr = t.vipSnatCount[v];
    const bport = t.backendPort[b] !== 0 ? t.backendPort[b] : info.dstPort;
    const proto = info.protocol;
    // A reopened tuple (a client reusing its port) on the same backend tries its old SNAT
    // address and port first. The backend then sees the same 4-tuple as before, whose
    // TIME_WAIT accepts the new SYN by its newer timestamp (RFC 7323 §5.8; Linux clocks
    // timestamps per 4-tuple: one client's SYNs to one VIP carry unrelated TSvals on the 6.18
    // kernel here). A port that last carried another client's connection fails PAWS there instead: a
    // challenge ACK, the client's RST, and a SYN resent up to 1 s later. (SYN-proxied flows open
    // on the cookie's ACK and take a fresh port.)
    const re =
      this.reSnatIdx >= 0 &&
      t.backendId[b] === this.reBackendId &&
      this.reSnatPort >= min &&
      this.reSnatPort <= t.vipSnatMax[v]
        ? 1 + (this.reSnatPort - min) * nAddr + this.reSnatIdx
        : 0;
    this.reSnatIdx = -1;
    for (let i = 0; i < snat.tries; i++) {
      // One candidate (address, port) of the pool's addresses × ports: consecutive candidates
      // take the addresses in turn, then the next port.
      const c = i === 0 && re !== 0 ? snat.prefer(re) : snat.propose(pool, 1, nAddr * (t.vipSnatMax[v] - min + 1));
      if (c === 0) break;
      const sa = t.vipSnatBase[v] + ((c - 1) % nAddr),
        port = min + (((c - 1) / nAddr) | 0);
      let e: number;
      if (info.ipVersion === 4) {
        e = ct.insertNat4(
          proto,
          rd32(buf, info.srcAddrOff),
          info.srcPort,
          rd32(buf, info.dstAddrOff),
          info.dstPort,
          t.vipId[v],
          t.backendId[b],
          t.backendAddr4[b],
          bport,
          t.snatAddr4[sa],
          port,
          now,
        );
      } else {
        ct.stageKey6(proto, buf, info.srcAddrOff, info.srcPort, info.dstAddrOff, info.dstPort);
        const a = this.a6;
        for (let j = 0; j < 16; j++) {
          a[j] = t.backendAddr[b * 16 + j];
          a[16 + j] = t.snatAddr[sa * 16 + j];
        }
        ct.stageReply6(a, 0, bport, 16, port);
        e = ct.insertStaged(t.vipId[v], t.backendId[b], now, true);
      }
      if (e !== CT_ERR_REPLY_IN_USE) return e;
      snat.collided();
    }
    snat.exhausted();
    return CT_ERR_REPLY_IN_USE;
  }

  // Backend → SNAT address: a reply of a NAT flow, or not ours.
  private natReply(buf: Uint8Array, flags: number, now: number, out: EngineOutput): number {
    const info = this.info,
      ct = this.ct;
    const e = this.lookup(buf, info.protocol, info.srcAddrOff, info.srcPort, info.dstAddrOff, info.dstPort);
    if (e < 0 || ct.lastDir !== CT_DIR_REPLY) return this.unknown(out);
    const t = this.t,
      v = t.vipById[ct.vipIdOf(e)];
    if (v >= 0) {
      out.vip = v;
      out.backend = t.backendOf(v, ct.backendIdOf(e));
      out.toClient = 1;
      out.ipLen = info.ipTotalLen;
    }
    const bad = this.prep(buf, flags);
    if (bad !== 0) return this.drop(out, bad);
    if (info.protocol === IPPROTO_TCP && ct.stateOf(e) === CT_SYN_SENT) this.synAnswered(e, info.tcpFlags);
    const w = info.protocol === IPPROTO_TCP ? ct.proxyOf(e) : 0;
    if (w !== 0) {
      const f = info.tcpFlags;
      if ((f & (TH_SYN | TH_ACK | TH_RST)) === (TH_SYN | TH_ACK)) return this.pxSynAck(e, w, buf, now, out);
      if ((w & PX_STATE) === PX_PENDING) {
        if ((f & TH_RST) !== 0) return this.pxRefused(e, buf, now, out);
        return this.drop(out, C_DROP_PROXY_PENDING);
      }
    }
    ct.track(e, CT_DIR_REPLY, info.tcpFlags, info.ipTotalLen, now);
    this.natRewrite(buf, e, 1, ct.vipPort(e), 0, ct.clientPort(e));
    if (w !== 0) this.pxToClient(buf, e, w);
    return this.txIp(out, buf, C_TX_NAT_REPLY);
  }

  // ─── SYN proxy (nat TCP VIPs, syn_proxy on | auto) ──────────────────────────────────────
  // After nftables' synproxy and RFC 4987 §3.6: weir answers a client's SYN with a SYN-ACK whose
  // ISN is a cookie (syncookie.ts) and keeps nothing. The client's ACK (ack − 1 = a valid cookie)
  // opens the flow: conntrack entry + SNAT port, and a SYN to the backend with the client's ISN
  // and the options the cookie kept. The backend's SYN-ACK sets the translation (seq delta =
  // cookie − backend ISN; TSval offset) and weir ACKs it. From then on: client → backend
  // ack/SACK − delta, TSecr − offset; backend → client seq + delta, TSval + offset, window
  // rescaled to the shift weir announced. Client data that arrives before the backend answered
  // is dropped (counted): the client resends it.

  // A packet to a SYN-proxy VIP that has no flow. Returns a verdict, or -1 for the normal path
  // (auto below its threshold: no cookies).
  private proxyFirst(v: number, buf: Uint8Array, now: number, out: EngineOutput): number {
    const info = this.info,
      f = info.tcpFlags;
    const cookies = ((f & TH_SYN) !== 0 ? this.pxSyn(now) : this.pxAge(now)) || this.t.vipSynProxy[v] === SYN_PROXY_ON;
    if ((f & TH_SYN) !== 0) {
      if (!cookies) return -1;
      if ((f & (TH_ACK | TH_FIN | TH_RST)) !== 0 || !this.goodSyn(buf)) return this.drop(out, C_DROP_BAD_SYN);
      return this.cookieSynAck(buf, now, out);
    }
    if ((f & (TH_ACK | TH_RST)) === TH_ACK && this.cookieOk(buf, now)) {
      this.pxDone(now);
      return this.proxyOpen(v, buf, now, out);
    }
    return cookies ? this.drop(out, C_DROP_BAD_COOKIE) : -1;
  }

  // auto, after Linux's SYN backlog (cookies once half-open requests overflow it) rather than a
  // rate of new flows, which legitimate busy traffic also reaches: pxHalf counts handshakes left
  // half-open, +1 per SYN that would open a flow, −1 per handshake completed (the client's ACK
  // after the backend's SYN-ACK, or a valid cookie), decaying with a 1 s time constant, at most
  // the threshold. Unanswered SYNs at r/s push it towards r; legitimate traffic keeps it near 0
  // (a sudden rise of r/s adds about r × handshake time for a moment). Cookies from above the
  // threshold (per worker) until below half of it.
  private pxSyn(now: number): boolean {
    this.pxAge(now);
    const rate = this.t.synProxyRate;
    this.pxHalf += 1;
    if (this.pxHalf > rate) {
      if (!this.pxFlood) {
        this.pxFlood = true;
        this.counters[C_SYN_PROXY_AUTO_ON]++;
      }
      // Bounded like a backlog: cookies end ~0.7 s (ln 2 · τ) after a flood, whatever its size.
      this.pxHalf = rate;
    }
    return this.pxFlood;
  }

  private pxDone(now: number): void {
    this.pxHalf = this.pxHalf >= 1 ? this.pxHalf - 1 : 0;
    this.pxAge(now);
  }

  private pxAge(now: number): boolean {
    const dt = (now - this.pxLast) | 0;
    if (dt > 0) {
      this.pxHalf = dt >= PX_HALF_TAU_MS * 16 ? 0 : this.pxHalf * Math.exp(-dt / PX_HALF_TAU_MS);
      this.pxLast = now;
    } else if (dt < 0) this.pxLast = now;
    if (this.pxFlood && this.pxHalf < this.t.synProxyRate / 2) this.pxFlood = false;
    return this.pxFlood;
  }

  private stageCookie(buf: Uint8Array): void {
    const info = this.info;
    if (info.ipVersion === 4)
      this.cookies.stage4(rd32(buf, info.srcAddrOff), info.srcPort, rd32(buf, info.dstAddrOff), info.dstPort);
    else this.cookies.stage6(buf, info.srcAddrOff, info.srcPort, info.dstAddrOff, info.dstPort);
  }

  // The cookie SYN-ACK for a client's SYN, from the VIP (RFC 9293 §3.5; options RFC 7323, 2018).
  private cookieSynAck(buf: Uint8Array, now: number, out: EngineOutput): number {
    const info = this.info,
      l4 = info.l4Off,
      o = this.topt,
      c = this.copt,
      sp = this.synSpec,
      g = this.seg;
    readTcpOptions(buf, l4, info.l4HdrLen, o);
    // RFC 9293 §3.7.1: no MSS option means 536 (IPv4) / 1220 (IPv6, RFC 8200 §8.3)
    c.mssIndex = cookieMssIndex(o.mss >= 0 ? o.mss : info.ipVersion === 4 ? 536 : 1220);
    c.wscale = o.wscale;
    c.sackPerm = o.sackPerm;
    c.timestamps = o.tsOff >= 0;
    this.stageCookie(buf);
    const isn = rd32(buf, l4 + 4);
    const cookie = this.cookies.make(isn, c, now) | 0;
    sp.mss = this.t.pathMtu - (info.ipVersion === 4 ? 40 : 60);
    sp.wscale = c.wscale >= 0 ? PROXY_WSCALE : -1;
    sp.sackPerm = c.sackPerm;
    sp.ts = c.timestamps;
    sp.tsval = cookie; // weir's first TSval is the cookie: nothing to keep (the translation starts from it)
    sp.tsecr = c.timestamps ? rd32(buf, o.tsOff) : 0;
    g.addrLen = info.addrLen;
    g.src = buf;
    g.srcOff = info.dstAddrOff;
    g.dst = buf;
    g.dstOff = info.srcAddrOff;
    g.sport = info.dstPort;
    g.dport = info.srcPort;
    g.seq = cookie;
    g.ack = (isn + 1) | 0;
    g.flags = TH_SYN | TH_ACK;
    g.window = PROXY_SYNACK_WINDOW;
    g.synOptions = sp;
    const n = writeTcpSegment(this.scratch, 0, g);
    g.src = g.dst = this.a6; // keep no reference to the packet buffer
    if (n < 0) return this.drop(out, C_DROP_NO_ROOM);
    out.buf = this.scratch;
    out.off = 0;
    out.len = n;
    return this.give(out, VERDICT_TX_IP, C_TX_SYN_COOKIE);
  }

  // The client's ACK (or first data) carries ack − 1 = a cookie of this key, from the last two
  // slots; checksums good (the packet's options become the flow's). Fills copt.
  private cookieOk(buf: Uint8Array, now: number): boolean {
    const info = this.info,
      l4 = info.l4Off;
    this.stageCookie(buf);
    if (!this.cookies.check(rd32(buf, l4 + 4), rd32(buf, l4 + 8), now, this.copt)) return false;
    if (info.ipVersion === 4 && !ipv4ChecksumOk(buf, info.l3Off, info.ipHdrLen)) return false;
    return l4ChecksumOk(buf, info);
  }

  // A proven client: entry + SNAT port, and weir's SYN to the backend with the client's ISN
  // and the options its cookie kept. The client's packet itself goes no further (data in it is
  // resent by the client once the backend's side is up).
  private proxyOpen(v: number, buf: Uint8Array, now: number, out: EngineOutput): number {
    const info = this.info,
      t = this.t,
      ct = this.ct,
      c = this.copt,
      o = this.topt,
      l4 = info.l4Off;
    // rate_limits count flows that open: a proven client here, never a (maybe spoofed) SYN.
    if (this.limiter !== null && this.limited(buf, now, out)) return VERDICT_DROP;
    const h = this.hash(v, buf, IPPROTO_TCP, info.srcAddrOff, info.srcPort, info.dstAddrOff, info.dstPort);
    const idx = t.maglev[v].lookup(h);
    if (!(idx >= 0 && idx < t.vipBackendCount[v])) return this.drop(out, C_DROP_NO_BACKEND);
    const b = t.vipBackendBase[v] + idx;
    const e = this.natInsert(v, b, buf, now);
    if (e < 0) return this.drop(out, e === CT_ERR_REPLY_IN_USE ? C_DROP_SNAT_EXHAUSTED : C_DROP_CT_FULL);
    this.counters[C_NEW_FLOWS]++;
    const seq = rd32(buf, l4 + 4),
      ack = rd32(buf, l4 + 8);
    readTcpOptions(buf, l4, info.l4HdrLen, o);
    const ts = c.timestamps && o.tsOff >= 0;
    const win = readU16(buf, l4 + 14);
    const px =
      PX_PENDING | (ts ? PX_TS : 0) | ((c.wscale >= 0 ? c.wscale + 1 : 0) << PX_CWS_SHIFT) | (win << PX_WIN_SHIFT);
    // pending: the cookie and the client's ISN until the backend's SYN-ACK
    ct.setProxy(e, px, (ack - 1) | 0, (seq - 1) | 0);
    ct.track(e, CT_DIR_ORIG, TH_SYN, info.ipTotalLen, now);
    const sp = this.synSpec,
      g = this.seg;
    sp.mss = COOKIE_MSS[c.mssIndex];
    sp.wscale = c.wscale;
    sp.sackPerm = c.sackPerm;
    sp.ts = ts;
    sp.tsval = ts ? rd32(buf, o.tsOff) : 0; // the client's clock passes through untranslated
    sp.tsecr = 0;
    g.synOptions = sp;
    g.seq = (seq - 1) | 0; // the client's ISN: its sequence space needs no translation
    g.ack = 0;
    g.flags = TH_SYN;
    // RFC 7323 §2.2: a SYN's window is never scaled; the client's real window, at most 65535
    const cw = c.wscale >= 0 ? win << c.wscale : win;
    g.window = cw > 0xffff ? 0xffff : cw;
    return this.toBackend(e, b, out, C_TX_PROXY_SYN);
  }

  // Fills this.seg's addresses (conntrack address slots `from` → `to`, through this.a6) and ports.
  private segEnds(e: number, from: number, to: number, sport: number, dport: number): void {
    const g = this.seg,
      a = this.a6;
    this.ct.copyAddr6(e, from, a, 0);
    this.ct.copyAddr6(e, to, a, 16);
    g.addrLen = this.info.addrLen;
    g.src = a;
    g.srcOff = 0;
    g.dst = a;
    g.dstOff = 16;
    g.sport = sport;
    g.dport = dport;
  }

  // Builds this.seg (ports and addresses filled here) from the flow's SNAT side to its backend
  // and sends it, as a frame to the backend's next hop when it has one.
  private toBackend(e: number, b: number, out: EngineOutput, reason: number): number {
    const ct = this.ct,
      g = this.seg;
    this.segEnds(e, 3, 2, ct.snatPort(e), ct.backendPort(e)); // SNAT → backend
    const s = this.scratch;
    const n = writeTcpSegment(s, ETH_HLEN, g);
    if (n < 0) return this.drop(out, C_DROP_NO_ROOM);
    if (b >= 0 && this.t.backendHasHop[b] !== 0) return this.hopOut(s, ETH_HLEN, n, b, out, reason);
    out.buf = s;
    out.off = ETH_HLEN;
    out.len = n;
    return this.give(out, VERDICT_TX_IP, reason);
  }

  // The backend's SYN-ACK to weir's SYN (or a retransmission of it): fix the translation once,
  // and ACK it in the client's name. Nothing goes to the client: its handshake was with weir.
  private pxSynAck(e: number, w: number, buf: Uint8Array, now: number, out: EngineOutput): number {
    const info = this.info,
      ct = this.ct,
      t = this.t,
      o = this.topt,
      l4 = info.l4Off;
    const bisn = rd32(buf, l4 + 4);
    readTcpOptions(buf, l4, info.l4HdrLen, o);
    const bts = (w & PX_TS) !== 0 && o.tsOff >= 0;
    const btsval = bts ? rd32(buf, o.tsOff) : 0;
    const cws = ((w >>> PX_CWS_SHIFT) & 15) - 1;
    if ((w & PX_STATE) === PX_PENDING) {
      // A SYN-ACK for another SYN (the backend still holds an older connection on this SNAT
      // port): RST it (RFC 9293 §3.10.7.3, seq = its ack); the client's resend opens again.
      if (rd32(buf, l4 + 8) !== ((ct.proxyTs(e) + 1) | 0)) return this.pxResetBackend(e, buf, out);
      // RFC 7323 §2.2: scaling is on only when both SYNs carried the option
      const bws = cws >= 0 && o.wscale >= 0 ? o.wscale : -1;
      const nw = (w & ~(PX_STATE | (15 << PX_BWS_SHIFT))) | PX_ESTABLISHED | ((bws + 1) << PX_BWS_SHIFT);
      const cookie = ct.proxySeq(e) | 0;
      // weir's TSval towards the client started at the cookie (cookieSynAck)
      ct.setProxy(e, nw, (cookie - bisn) | 0, bts ? (cookie - btsval) | 0 : 0);
      this.counters[C_SYN_PROXIED]++;
      ct.track(e, CT_DIR_REPLY, info.tcpFlags, info.ipTotalLen, now);
      // The client's held segment (its ack becomes the backend's ISN + 1) ACKs the SYN-ACK.
      const s = this.holdTake(e, ct.createdAt(e), false);
      if (s >= 0) return this.pxReleaseHeld(e, nw, s, now, out);
      w = nw;
    } else ct.track(e, CT_DIR_REPLY, info.tcpFlags, info.ipTotalLen, now);
    ct.track(e, CT_DIR_ORIG, TH_ACK, 0, now);
    const bws = ((w >>> PX_BWS_SHIFT) & 15) - 1;
    const cwin = (w >>> PX_WIN_SHIFT) & 0xffff;
    const g = this.seg;
    g.synOptions = null;
    g.seq = rd32(buf, l4 + 8); // the backend's ack: the client's ISN + 1
    g.ack = (bisn + 1) | 0;
    g.flags = TH_ACK;
    // The client's window field is scaled by its shift; unscaled if the backend refused scaling.
    const cw = cws > 0 && bws < 0 ? cwin << cws : cwin;
    g.window = cw > 0xffff ? 0xffff : cw;
    g.ts = bts;
    g.tsval = bts ? rd32(buf, o.tsOff + 4) : 0; // the client's TSval the backend echoed
    g.tsecr = btsval;
    const v = t.vipById[ct.vipIdOf(e)];
    const b = v >= 0 ? t.backendOf(v, ct.backendIdOf(e)) : -1;
    const r = this.toBackend(e, b, out, C_TX_PROXY_ACK);
    g.ts = false;
    return r;
  }

  // A client segment with data before the backend answered: into the hold pool (one per flow),
  // counted as dropProxyHeld; sent by whichever worker sees the SYN-ACK. Returns -1 when the
  // backend answered while it was being held (the caller forwards it as usual).
  private pxHold(e: number, buf: Uint8Array, now: number, out: EngineOutput): number {
    const info = this.info,
      ct = this.ct;
    const len = info.ipTotalLen,
      tag = ct.createdAt(e);
    // Only a segment with data, that fits, with good checksums (it goes out with weir's ACK), one per flow.
    if (
      info.payloadOff >= info.l3End ||
      len > HOLD_MAX ||
      (info.ipVersion === 4 && !ipv4ChecksumOk(buf, info.l3Off, info.ipHdrLen)) ||
      !l4ChecksumOk(buf, info) ||
      this.holdFind(e, tag) >= 0
    )
      return this.drop(out, C_DROP_PROXY_PENDING);
    const W = this.holdW,
      B = this.holdB;
    for (let i = 0; i < HOLD_TRIES; i++) {
      const s = this.holdCursor;
      this.holdCursor = s + 1 === HOLD_SLOTS ? 0 : s + 1;
      const h = (s * HOLD_SLOT_BYTES) >> 2;
      const o = Atomics.load(W, h);
      if (o < 0 || (o > 0 && ((now - W[h + 2]) | 0) < HOLD_STALE_MS)) continue;
      if (Atomics.compareExchange(W, h, o, -1) !== o) continue;
      W[h + 1] = tag;
      W[h + 2] = now | 0;
      W[h + 3] = len;
      copyBytes(B, s * HOLD_SLOT_BYTES + HOLD_HDR, buf, info.l3Off, len);
      Atomics.store(W, h, e + 1);
      if ((ct.proxyOf(e) & PX_STATE) === PX_PENDING) return this.drop(out, C_DROP_PROXY_HELD);
      // The SYN-ACK came meanwhile; if its worker did not take the segment, forward it now.
      if (Atomics.compareExchange(W, h, e + 1, 0) === e + 1) return -1;
      return this.drop(out, C_DROP_PROXY_HELD);
    }
    return this.drop(out, C_DROP_PROXY_PENDING);
  }

  // The slot holding entry e's segment (created at `tag`), or -1.
  private holdFind(e: number, tag: number): number {
    const W = this.holdW;
    for (let s = 0; s < HOLD_SLOTS; s++) {
      const h = (s * HOLD_SLOT_BYTES) >> 2;
      if (Atomics.load(W, h) === e + 1 && W[h + 1] === tag) return s;
    }
    return -1;
  }

  // Takes entry e's held segment: returns its slot, marked busy (the caller copies it, then frees
  // it with Atomics.store 0), or -1. With `free`, frees it at once (the flow goes away).
  private holdTake(e: number, tag: number, free: boolean): number {
    const s = this.holdFind(e, tag);
    if (s < 0) return -1;
    const h = (s * HOLD_SLOT_BYTES) >> 2;
    if (Atomics.compareExchange(this.holdW, h, e + 1, free ? 0 : -1) !== e + 1) return -1;
    return s;
  }

  // Sends the held segment of slot s to the backend, translated (it ACKs the SYN-ACK), and frees the slot.
  private pxReleaseHeld(e: number, w: number, s: number, now: number, out: EngineOutput): number {
    const info = this.info,
      ct = this.ct,
      t = this.t,
      sc = this.scratch,
      W = this.holdW;
    const h = (s * HOLD_SLOT_BYTES) >> 2;
    const len = W[h + 3];
    copyBytes(sc, ETH_HLEN, this.holdB, s * HOLD_SLOT_BYTES + HOLD_HDR, len);
    Atomics.store(W, h, 0);
    if (parsePacket(sc, ETH_HLEN, len, LINKTYPE_RAW, info) < 0 || info.protocol !== IPPROTO_TCP)
      return this.drop(out, C_DROP_PROXY_PENDING); // cannot happen: it parsed when it was held
    this.natRewrite(sc, e, 3, ct.snatPort(e), 2, ct.backendPort(e));
    this.pxToBackend(sc, e, w);
    ct.track(e, CT_DIR_ORIG, info.tcpFlags, info.ipTotalLen, now);
    const v = t.vipById[ct.vipIdOf(e)];
    const b = v >= 0 ? t.backendOf(v, ct.backendIdOf(e)) : -1;
    if (b >= 0 && t.backendHasHop[b] !== 0) return this.hopOut(sc, ETH_HLEN, info.ipTotalLen, b, out, C_TX_PROXY_ACK);
    out.buf = sc;
    out.off = ETH_HLEN;
    out.len = info.ipTotalLen;
    return this.give(out, VERDICT_TX_IP, C_TX_PROXY_ACK);
  }

  // RST to the backend for a SYN-ACK that acknowledges no SYN of weir's (seq = its ack, RFC 9293 §3.10.7.3).
  private pxResetBackend(e: number, buf: Uint8Array, out: EngineOutput): number {
    const g = this.seg,
      t = this.t,
      ct = this.ct;
    g.synOptions = null;
    g.ts = false;
    g.seq = rd32(buf, this.info.l4Off + 8);
    g.ack = 0;
    g.flags = TH_RST;
    g.window = 0;
    const v = t.vipById[ct.vipIdOf(e)];
    const b = v >= 0 ? t.backendOf(v, ct.backendIdOf(e)) : -1;
    return this.toBackend(e, b, out, C_TX_PROXY_RST);
  }

  // The backend refused weir's SYN (RST): the client, which thinks it is connected, gets a RST
  // from the VIP in its own sequence space (RFC 9293 §3.10.7.4: in window at rcv.nxt).
  private pxRefused(e: number, buf: Uint8Array, now: number, out: EngineOutput): number {
    const ct = this.ct,
      g = this.seg;
    ct.track(e, CT_DIR_REPLY, TH_RST, this.info.ipTotalLen, now);
    this.segEnds(e, 1, 0, ct.vipPort(e), ct.clientPort(e)); // VIP → client
    g.seq = (ct.proxySeq(e) + 1) | 0; // cookie + 1: what the client expects next
    g.ack = 0;
    g.flags = TH_RST;
    g.window = 0;
    g.synOptions = null;
    g.ts = false;
    const n = writeTcpSegment(this.scratch, 0, g);
    if (n < 0) return this.drop(out, C_DROP_NO_ROOM);
    out.buf = this.scratch;
    out.off = 0;
    out.len = n;
    return this.give(out, VERDICT_TX_IP, C_TX_NAT_REPLY);
  }

  // Client → backend of an established proxied flow (after natRewrite): ack and SACK edges into
  // the backend's sequence space, TSecr into its clock, the window unscaled if the backend
  // refused scaling; checksum adjusted (RFC 1624).
  private pxToBackend(buf: Uint8Array, e: number, w: number): void {
    const info = this.info,
      ct = this.ct,
      l4 = info.l4Off;
    const delta = ct.proxySeq(e) | 0;
    let d = 0;
    if ((info.tcpFlags & TH_ACK) !== 0) d += put32d(buf, l4, l4 + 8, (rd32(buf, l4 + 8) - delta) | 0);
    const cws = ((w >>> PX_CWS_SHIFT) & 15) - 1,
      bws = ((w >>> PX_BWS_SHIFT) & 15) - 1;
    if (cws > 0 && bws < 0) {
      const old = readU16(buf, l4 + 14);
      const nw = old << cws > 0xffff ? 0xffff : old << cws;
      writeU16(buf, l4 + 14, nw);
      d += (~old & 0xffff) + nw;
    }
    if (info.l4HdrLen > 20) {
      const o = this.topt;
      readTcpOptions(buf, l4, info.l4HdrLen, o);
      for (let i = 0; i < o.sackBlocks; i++) {
        const at = o.sackOff + 8 * i;
        d += put32d(buf, l4, at, (rd32(buf, at) - delta) | 0);
        d += put32d(buf, l4, at + 4, (rd32(buf, at + 4) - delta) | 0);
      }
      if (o.tsOff >= 0) d += put32d(buf, l4, o.tsOff + 4, (rd32(buf, o.tsOff + 4) - ct.proxyTs(e)) | 0);
    }
    if (d !== 0) {
      const c = info.l4CsumOff;
      writeU16(buf, c, csumApplyDelta(readU16(buf, c), csumFold(d)));
    }
  }

  // Backend → client of a proxied flow (after natRewrite): seq into the client's view (cookie
  // space), TSval into weir's clock, the window rescaled from the backend's shift to the one weir
  // announced (rounded down: RFC 7323 §2.3 lets a window shrink by less than one unit).
  private pxToClient(buf: Uint8Array, e: number, w: number): void {
    const info = this.info,
      ct = this.ct,
      l4 = info.l4Off;
    let d = put32d(buf, l4, l4 + 4, (rd32(buf, l4 + 4) + (ct.proxySeq(e) | 0)) | 0);
    const cws = ((w >>> PX_CWS_SHIFT) & 15) - 1,
      bws = ((w >>> PX_BWS_SHIFT) & 15) - 1;
    const sw = cws >= 0 ? PROXY_WSCALE : 0,
      sb = bws >= 0 ? bws : 0;
    if (sw !== sb) {
      const old = readU16(buf, l4 + 14);
      const v = (old << sb) >>> sw;
      const nw = v > 0xffff ? 0xffff : v;
      writeU16(buf, l4 + 14, nw);
      d += (~old & 0xffff) + nw;
    }
    if (info.l4HdrLen > 20) {
      const o = this.topt;
      readTcpOptions(buf, l4, info.l4HdrLen, o);
      if (o.tsOff >= 0) d += put32d(buf, l4, o.tsOff, (rd32(buf, o.tsOff) + (ct.proxyTs(e) | 0)) | 0);
    }
    const c = info.l4CsumOff;
    writeU16(buf, c, csumApplyDelta(readU16(buf, c), csumFold(d)));
  }

  // A SYN that opens a nat flow: no FIN or RST with it, checksums good. Any host drops such a
  // SYN silently; let through, its "retransmission" would look like a silent backend.
  private goodSyn(buf: Uint8Array): boolean {
    const info = this.info;
    if ((info.tcpFlags & (TH_FIN | TH_RST)) !== 0) return false;
    if (info.ipVersion === 4 && !ipv4ChecksumOk(buf, info.l3Off, info.ipHdrLen)) return false;
    return l4ChecksumOk(buf, info);
  }

  // A second SYN on an unanswered entry: the backend's silence only if it is a real retransmission
  // (late enough) of a packet the backend could take (checksums good: a corrupt SYN is silently
  // dropped by any host, and clients could otherwise fake failures at will).
  private synRetransmitted(e: number, buf: Uint8Array, now: number): void {
    const ct = this.ct;
    if (((now - ct.lastSeen(e)) | 0) < SYN_RETRANSMIT_MIN_MS || !this.goodSyn(buf)) return;
    this.counters[C_SYN_UNANSWERED]++;
    this.passiveEvent(ct.vipIdOf(e), ct.backendIdOf(e), PASSIVE_NO_ANSWER);
  }

  // The backend's first answer to a client's SYN: RST = a failed connection, SYN-ACK = a working one.
  // A RST after the client retransmitted may belong to a connection already counted as unanswered.
  private synAnswered(e: number, tcpFlags: number): void {
    const ct = this.ct;
    if ((tcpFlags & TH_RST) !== 0) {
      if (ct.pkts(e, CT_DIR_ORIG) !== 1) return;
      this.counters[C_SYN_RST]++;
      this.passiveEvent(ct.vipIdOf(e), ct.backendIdOf(e), PASSIVE_RST);
    } else if ((tcpFlags & (TH_SYN | TH_ACK)) === (TH_SYN | TH_ACK) && this.failing[ct.backendIdOf(e)] !== 0) {
      this.passiveEvent(ct.vipIdOf(e), ct.backendIdOf(e), PASSIVE_OK);
    }
  }

  private passiveEvent(vipId: number, backendId: number, kind: number): void {
    const n = this.passiveCount;
    if (n >= PASSIVE_CAPACITY) {
      this.counters[C_PASSIVE_LOST]++;
      return;
    }
    this.passive[2 * n] = (vipId << 16) | backendId;
    this.passive[2 * n + 1] = kind;
    this.passiveCount = n + 1;
    this.failing[backendId] = kind === PASSIVE_OK ? 0 : 1;
  }

  // The IP packet of `info` inside GRE to backend b (RFC 2784), or an ICMP PMTU error back.
  private greOut(
    buf: Uint8Array,
    b: number,
    flowLabel: number,
    out: EngineOutput,
    mayAnswer: boolean,
    reason: number,
  ): number {
    const info = this.info,
      t = this.t;
    const tun = t.backendTunnel[b];
    if (!tun) return this.drop(out, C_DROP_NO_BACKEND);
    const l3 = info.l3Off,
      ilen = info.ipTotalLen,
      hl = tun.hdrLen;
    if (ilen + hl > t.pathMtu) {
      if (!mayAnswer || (info.ipVersion === 4 && !info.dontFragment)) return this.drop(out, C_DROP_TOO_BIG_NO_DF);
      if (!icmpErrorAllowed(buf, info)) return this.drop(out, C_DROP_ICMP_NOT_ALLOWED);
      if (!this.icmpToken()) return this.drop(out, C_DROP_ICMP_RATE);
      const s = this.scratch;
      let mtu = t.pathMtu - hl;
      let n: number;
      if (info.ipVersion === 4) {
        n = buildIcmpFragNeeded(s, 0, s.length, buf, l3, ilen, mtu, buf, info.dstAddrOff);
      } else {
        if (mtu < IPV6_MIN_MTU) mtu = IPV6_MIN_MTU; // RFC 8200 §5: never below 1280
        n = buildIcmpv6PacketTooBig(s, 0, s.length, buf, l3, ilen, mtu, buf, info.dstAddrOff);
      }
      if (n < 0) return this.drop(out, C_DROP_NO_ROOM);
      out.buf = s;
      out.off = 0;
      out.len = n;
      return this.give(out, VERDICT_TX_IP, C_TX_FRAG_NEEDED);
    }
    const fl = tun.outerVersion === 6 ? flowLabel & 0xfffff : -1;
    const hop = t.backendHasHop[b] !== 0 ? ETH_HLEN : 0; // room for the Ethernet header of next-hop output
    if (l3 - hl - hop >= this.minStart) {
      const start = encapGreInPlace(buf, l3, ilen, tun, fl);
      if (start < 0) return this.drop(out, C_DROP_NO_ROOM);
      if (hop !== 0) return this.hopOut(buf, start, ilen + hl, b, out, reason);
      out.buf = buf;
      out.off = start;
      out.len = ilen + hl;
    } else {
      const n = encapGre(this.scratch, hop, this.scratch.length, buf, l3, ilen, tun, fl);
      if (n < 0) return this.drop(out, C_DROP_NO_ROOM);
      if (hop !== 0) return this.hopOut(this.scratch, hop, n, b, out, reason);
      out.buf = this.scratch;
      out.off = 0;
      out.len = n;
    }
    return this.give(out, VERDICT_TX_IP, reason);
  }

  // The IP packet at buf[start, start+len) as an Ethernet frame to backend b's next hop, out of
  // the interface towards it (no route lookup or output hooks in the kernel). The 14 bytes before
  // `start` must be ours to write: the received frame's own header, or headroom.
  private hopOut(buf: Uint8Array, start: number, len: number, b: number, out: EngineOutput, reason: number): number {
    const t = this.t,
      l2 = start - ETH_HLEN;
    setEthDst(buf, l2, t.backendHopMac, b * 6);
    setEthSrc(buf, l2, t.backendIfMac, b * 6);
    const v6 = buf[start] >> 4 === 6;
    buf[l2 + 12] = v6 ? 0x86 : 0x08; // ethertype (IEEE 802.3): IPv6 or IPv4
    buf[l2 + 13] = v6 ? 0xdd : 0x00;
    out.buf = buf;
    out.off = l2;
    out.len = len + ETH_HLEN;
    out.ifindex = t.backendIfindex[b];
    this.counters[C_TX_NEXT_HOP]++;
    return this.give(out, VERDICT_TX_L2, reason);
  }

  // One token per generated error; the bucket refills at icmpRate per second up to icmpRate.
  private icmpToken(): boolean {
    const rate = this.t.icmpRate,
      now = this.now;
    const dt = (now - this.icmpLast) | 0;
    if (dt > 0) {
      this.icmpTokens += (dt * rate) / 1000;
      if (this.icmpTokens > rate) this.icmpTokens = rate;
      this.icmpLast = now;
    } else if (dt < 0) this.icmpLast = now; // clock went back (wrapped): restart the interval
    if (this.icmpTokens < 1) return false;
    this.icmpTokens -= 1;
    return true;
  }

  // dsr-l2: new MACs, same frame.
  private l2Out(buf: Uint8Array, b: number, out: EngineOutput, reason: number): number {
    const info = this.info,
      t = this.t;
    if (info.l2Len === 0) return this.drop(out, C_DROP_NO_L2);
    const l2 = info.l2Off;
    // Source: the MAC of the interface the frame leaves on (the backend's side of a two-armed
    // host), else localMac, else the frame's old destination (ours, on the receiving side).
    if (t.backendIfindex[b] !== 0) setEthSrc(buf, l2, t.backendIfMac, b * 6);
    else if (t.localMac) setEthSrc(buf, l2, t.localMac, 0);
    else for (let i = 0; i < 6; i++) buf[l2 + 6 + i] = buf[l2 + i];
    setEthDst(buf, l2, t.backendMac, b * 6);
    out.buf = buf;
    out.off = l2;
    out.len = info.l3End - l2;
    out.ifindex = t.backendIfindex[b];
    return this.give(out, VERDICT_TX_L2, reason);
  }

  // ICMP/ICMPv6 errors: about a VIP flow (to the VIP address) or about a NAT flow (to a SNAT address).
  private icmpError(buf: Uint8Array, flags: number, out: EngineOutput): number {
    const info = this.info,
      q = this.quote,
      t = this.t,
      ct = this.ct;
    const fam = info.ipVersion;
    const toVip = t.isVipAddress(fam, buf, info.dstAddrOff);
    const toSnat = !toVip && t.isSnatAddress(fam, buf, info.dstAddrOff);
    if (!toVip && !toSnat) return this.unknown(out);
    const r = parseIcmpQuote(buf, info, q);
    if (r < 0 || q.fragOffset !== 0 || (q.protocol !== IPPROTO_TCP && q.protocol !== IPPROTO_UDP)) {
      return this.drop(out, C_DROP_ICMP_UNMATCHED);
    }
    const bad = this.prep(buf, flags);
    if (bad !== 0) return this.drop(out, bad);
    // The quoted packet went from the VIP (or SNAT address) to the client (or backend); the
    // flow it belongs to is the reversed quote.
    const e = this.lookup(buf, q.protocol, q.dstAddrOff, q.dstPort, q.srcAddrOff, q.srcPort);
    if (toSnat) {
      // Quote: SNAT → backend (our rewritten client packet); error towards the client.
      if (e < 0 || ct.lastDir !== CT_DIR_REPLY) return this.unknown(out);
      const a = this.a6,
        n = q.addrLen;
      ct.copyAddr6(e, 0, a, 0); // client
      ct.copyAddr6(e, 1, a, 16); // VIP
      ct.copyAddr6(e, 2, a, 32); // backend
      this.translateQuote(buf, a, 0, ct.clientPort(e), a, 16, ct.vipPort(e));
      let same = true;
      for (let i = 0; i < n; i++)
        if (buf[info.srcAddrOff + i] !== a[32 + i]) {
          same = false;
          break;
        }
      if (same) rewriteSrcAddr(buf, info, a, 16, n);
      rewriteDstAddr(buf, info, a, 0, n);
      fillL4Checksum(buf, info); // RFC 792 / RFC 4443 §2.3: the message changed, recompute
      return this.txIp(out, buf, C_TX_ICMP_TO_CLIENT);
    }
    const v = t.findVip(fam, buf, q.srcAddrOff, q.protocol, q.srcPort);
    if (v < 0) return this.drop(out, C_DROP_ICMP_UNMATCHED);
    const mode = t.vipMode[v];
    if (mode === MODE_NAT) {
      // Quote: VIP → client (our rewritten reply); error towards the backend.
      if (e < 0 || ct.lastDir !== CT_DIR_ORIG) return this.drop(out, C_DROP_ICMP_UNMATCHED);
      const a = this.a6,
        n = q.addrLen;
      ct.copyAddr6(e, 2, a, 0); // backend
      ct.copyAddr6(e, 3, a, 16); // SNAT
      this.translateQuote(buf, a, 0, ct.backendPort(e), a, 16, ct.snatPort(e));
      rewriteDstAddr(buf, info, a, 0, n);
      fillL4Checksum(buf, info);
      return this.txIp(out, buf, C_TX_ICMP_TO_BACKEND);
    }
    let b = -1;
    if (e >= 0 && ct.lastDir === CT_DIR_ORIG && ct.vipIdOf(e) === t.vipId[v]) b = t.backendOf(v, ct.backendIdOf(e));
    if (b < 0) {
      const h = this.hash(v, buf, q.protocol, q.dstAddrOff, q.dstPort, q.srcAddrOff, q.srcPort);
      const idx = t.maglev[v].lookup(h);
      if (!(idx >= 0 && idx < t.vipBackendCount[v])) return this.drop(out, C_DROP_NO_BACKEND);
      b = t.vipBackendBase[v] + idx;
    }
    if (mode === MODE_DSR_GRE) {
      // The label of the client's flow (the reversed quote), so the error takes the flow's path.
      const fl = greFlowLabel(t.seed, q.protocol, buf, q.dstAddrOff, q.srcAddrOff, q.addrLen, q.dstPort, q.srcPort);
      return this.greOut(buf, b, fl, out, false, C_TX_ICMP_TO_BACKEND);
    }
    return this.l2Out(buf, b, out, C_TX_ICMP_TO_BACKEND);
  }

  // Rewrites the quoted packet's source and destination (address + port) in place, fixing the
  // quoted IPv4 header checksum and, if quoted, its L4 checksum (RFC 5508 §7, RFC 1624).
  private translateQuote(
    buf: Uint8Array,
    src: Uint8Array,
    srcOff: number,
    sport: number,
    dst: Uint8Array,
    dstOff: number,
    dport: number,
  ): void {
    const q = this.quote,
      n = q.addrLen;
    let d = putBytes(buf, q.srcAddrOff, src, srcOff, n) + putBytes(buf, q.dstAddrOff, dst, dstOff, n);
    d = csumFold(d);
    if (n === 4) {
      const c = q.l3Off + 10;
      writeU16(buf, c, csumApplyDelta(readU16(buf, c), d));
    }
    const pd = csumFold(d + putPort(buf, q.l4Off, sport) + putPort(buf, q.l4Off + 2, dport));
    const c = q.l4CsumOff;
    if (c >= 0) {
      const old = readU16(buf, c);
      if (q.protocol === IPPROTO_UDP && old === 0) return; // RFC 768: no checksum stays none
      const nv = csumApplyDelta(old, pd);
      writeU16(buf, c, q.protocol === IPPROTO_UDP && nv === 0 ? 0xffff : nv);
    }
  }

  /**
   * Counts a packet the I/O layer had to cut (never parsed): received and dropped as dropGso when
   * the kernel marked it a TCP GSO super-frame (GRO/LRO on, or a local sender's TSO over veth),
   * else as dropTruncated.
   */
  countTruncated(out: EngineOutput, flags: number): number {
    this.counters[C_RX]++;
    out.vip = out.backend = -1;
    return this.drop(out, (flags & TP_STATUS_GSO_TCP) !== 0 ? C_DROP_GSO : C_DROP_TRUNCATED);
  }

  /** Turns the verdict in `out` into dropNoRoom: its output was built but does not fit where it must go. */
  refuseNoRoom(out: EngineOutput): number {
    this.counters[out.reason]--;
    return this.drop(out, C_DROP_NO_ROOM);
  }

  /** Deletes up to `max` expired connection entries (once per batch: spreads the work). */
  reclaim(now: number, max = 64): void {
    this.ct.reclaim(now, max);
  }
}
