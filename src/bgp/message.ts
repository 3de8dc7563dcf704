// BGP-4 message codec (RFC 4271 §4) with capabilities (RFC 5492), 4-octet AS (RFC 6793),
// multiprotocol IPv6 (RFC 4760), route refresh (RFC 2918), graceful restart and End-of-RIB
// (RFC 4724), communities (RFC 1997) and large communities (RFC 8092).
// Pure: no sockets, no timers, no logging. Decoding never throws; it returns either a message or
// a BgpError carrying the NOTIFICATION code/subcode/data that RFC 4271 §6 prescribes.
import {
  AFI_IPV4,
  AFI_IPV6,
  SAFI_UNICAST,
  formatIpv4,
  formatIpv6,
  parseIpv4,
  parseIpv6,
  parsePrefix,
  formatPrefix,
  type Afi,
} from './ip.js';

// ---- wire constants ---------------------------------------------------------------------------

export const BGP_MARKER_LEN = 16; // §4.1: 16 octets, all ones
export const BGP_HEADER_LEN = 19; // marker(16) + length(2) + type(1)
export const BGP_MAX_MESSAGE_LEN = 4096; // §4.1 (RFC 8654 extended messages not negotiated)
export const BGP_VERSION = 4;
export const BGP_PORT = 179;
export const AS_TRANS = 23456; // RFC 6793 §9: stands in for a 4-octet AS in 2-octet fields

// Message types, §4.1 and RFC 2918.
export const BGP_MSG_OPEN = 1;
export const BGP_MSG_UPDATE = 2;
export const BGP_MSG_NOTIFICATION = 3;
export const BGP_MSG_KEEPALIVE = 4;
export const BGP_MSG_ROUTE_REFRESH = 5;

// NOTIFICATION error codes, §4.5.
export const ERR_MSG_HEADER = 1;
export const ERR_OPEN = 2;
export const ERR_UPDATE = 3;
export const ERR_HOLD_TIMER_EXPIRED = 4;
export const ERR_FSM = 5;
export const ERR_CEASE = 6;

// Message Header Error subcodes, §6.1.
export const HDR_CONNECTION_NOT_SYNCHRONIZED = 1;
export const HDR_BAD_MESSAGE_LENGTH = 2;
export const HDR_BAD_MESSAGE_TYPE = 3;

// OPEN Message Error subcodes, §6.2 and RFC 5492 §5.
export const OPEN_UNSPECIFIC = 0;
export const OPEN_UNSUPPORTED_VERSION = 1;
export const OPEN_BAD_PEER_AS = 2;
export const OPEN_BAD_BGP_IDENTIFIER = 3;
export const OPEN_UNSUPPORTED_OPTIONAL_PARAMETER = 4;
export const OPEN_UNACCEPTABLE_HOLD_TIME = 6;
export const OPEN_UNSUPPORTED_CAPABILITY = 7;

// UPDATE Message Error subcodes, §6.3.
export const UPD_MALFORMED_ATTRIBUTE_LIST = 1;
export const UPD_UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE = 2;
export const UPD_MISSING_WELL_KNOWN_ATTRIBUTE = 3;
export const UPD_ATTRIBUTE_FLAGS_ERROR = 4;
export const UPD_ATTRIBUTE_LENGTH_ERROR = 5;
export const UPD_INVALID_ORIGIN = 6;
export const UPD_INVALID_NEXT_HOP = 8;
export const UPD_OPTIONAL_ATTRIBUTE_ERROR = 9;
export const UPD_INVALID_NETWORK_FIELD = 10;
export const UPD_MALFORMED_AS_PATH = 11;

// Cease subcodes, RFC 4486 §4.
export const CEASE_MAX_PREFIXES = 1;
export const CEASE_ADMINISTRATIVE_SHUTDOWN = 2;
export const CEASE_PEER_DECONFIGURED = 3;
export const CEASE_ADMINISTRATIVE_RESET = 4;
export const CEASE_CONNECTION_REJECTED = 5;
export const CEASE_OTHER_CONFIGURATION_CHANGE = 6;
export const CEASE_CONNECTION_COLLISION = 7;
export const CEASE_OUT_OF_RESOURCES = 8;

// OPEN optional parameter types.
export const OPT_PARAM_CAPABILITIES = 2; // RFC 5492 §4
const OPT_PARAM_EXTENDED = 255; // RFC 9072 §2: non-extended type 255 flags the extended format

// Capability codes (IANA).
export const CAP_MULTIPROTOCOL = 1; // RFC 4760 §8
export const CAP_ROUTE_REFRESH = 2; // RFC 2918
export const CAP_GRACEFUL_RESTART = 64; // RFC 4724 §3
export const CAP_FOUR_OCTET_AS = 65; // RFC 6793
/** Cisco's pre-standard route refresh code, still sent by some routers beside code 2. */
export const CAP_ROUTE_REFRESH_OLD = 128;

// Graceful restart capability flags (RFC 4724 §3, RFC 8538 §2).
export const GR_FLAG_RESTART_STATE = 0x8; // R: the sender has restarted
export const GR_FLAG_NOTIFICATION = 0x4; // N: RFC 8538 (not used by weir, decoded)
export const GR_AF_FLAG_FORWARDING = 0x80; // F: forwarding state preserved for this AFI/SAFI
export const GR_MAX_RESTART_TIME = 0xfff; // 12 bits, seconds

/** Cease subcode "BFD Down" (RFC 9384 §2): the session is torn down because BFD declared the peer down. */
export const CEASE_BFD_DOWN = 10;

// Path attribute flags, §4.3.
export const ATTR_FLAG_OPTIONAL = 0x80;
export const ATTR_FLAG_TRANSITIVE = 0x40;
export const ATTR_FLAG_PARTIAL = 0x20;
export const ATTR_FLAG_EXTENDED_LENGTH = 0x10;

// Path attribute type codes.
export const ATTR_ORIGIN = 1; // well-known mandatory, §5.1.1
export const ATTR_AS_PATH = 2; // well-known mandatory, §5.1.2
export const ATTR_NEXT_HOP = 3; // well-known mandatory for IPv4 NLRI, §5.1.3
export const ATTR_MULTI_EXIT_DISC = 4; // optional non-transitive, §5.1.4
export const ATTR_LOCAL_PREF = 5; // well-known (iBGP), §5.1.5
export const ATTR_ATOMIC_AGGREGATE = 6; // well-known discretionary, §5.1.6
export const ATTR_AGGREGATOR = 7; // optional transitive, §5.1.7
export const ATTR_COMMUNITIES = 8; // optional transitive, RFC 1997
export const ATTR_MP_REACH_NLRI = 14; // optional non-transitive, RFC 4760 §3
export const ATTR_MP_UNREACH_NLRI = 15; // optional non-transitive, RFC 4760 §4
export const ATTR_AS4_PATH = 17; // optional transitive, RFC 6793 §3
export const ATTR_LARGE_COMMUNITY = 32; // optional transitive, RFC 8092

export const ORIGIN_IGP = 0;
export const ORIGIN_EGP = 1;
export const ORIGIN_INCOMPLETE = 2;

// AS_PATH segment types, §4.3 and RFC 5065 §3.
export const AS_SET = 1;
export const AS_SEQUENCE = 2;
export const AS_CONFED_SEQUENCE = 3;
export const AS_CONFED_SET = 4;

/** RFC 8326 §5: GRACEFUL_SHUTDOWN well-known community 65535:0. */
export const COMMUNITY_GRACEFUL_SHUTDOWN = 0xffff0000;

// ---- message model ----------------------------------------------------------------------------

/** One AFI/SAFI of the graceful restart capability (RFC 4724 §3). */
export interface GracefulRestartFamily {
  afi: number;
  safi: number;
  /** F bit: the sender's forwarding state for this family survived its restart. */
  forwarding: boolean;
}

export type Capability =
  | { kind: 'multiprotocol'; afi: number; safi: number }
  | { kind: 'route-refresh' } // RFC 2918 §2: no value
  | {
      kind: 'graceful-restart'; // RFC 4724 §3
      /** R bit: the sender is restarting (it keeps no routes of ours and may defer its End-of-RIB). */
      restarting: boolean;
      /** N bit (RFC 8538): the sender supports graceful restart after a NOTIFICATION. */
      notification: boolean;
      /** Seconds the sender expects to need to come back (0..4095). */
      restartTime: number;
      families: GracefulRestartFamily[];
    }
  | { kind: 'four-octet-as'; asn: number }
  | { kind: 'other'; code: number; value: Uint8Array }; // preserved, not interpreted

export interface OpenMessage {
  type: 'open';
  version: number;
  /** The speaker's AS: the 4-octet capability value when present, else the 2-octet field. */
  asn: number;
  /** The 2-octet My Autonomous System field as sent (AS_TRANS when asn > 65535). */
  myAsField: number;
  holdTime: number; // seconds; 0 or >= 3 (§4.2)
  bgpId: string; // dotted quad
  capabilities: Capability[];
}

export interface AsPathSegment {
  type: number; // AS_SET | AS_SEQUENCE | AS_CONFED_*
  asns: number[];
}

/** [global administrator, local data part 1, local data part 2], RFC 8092 §3. */
export type LargeCommunity = [number, number, number];

export interface MpReach {
  afi: number;
  safi: number;
  /** Next hop(s) as text: one address, or global + link-local for IPv6 with length 32. */
  nextHops: string[];
  nlri: string[];
  /** For an AFI/SAFI we do not parse: the next hop and NLRI bytes as received. */
  raw?: { nextHop: Uint8Array; nlri: Uint8Array };
}

export interface MpUnreach {
  afi: number;
  safi: number;
  withdrawn: string[];
  raw?: Uint8Array;
}

export interface RawAttribute {
  flags: number;
  type: number;
  value: Uint8Array;
}

export interface PathAttributes {
  origin?: number;
  asPath?: AsPathSegment[];
  nextHop?: string;
  med?: number;
  localPref?: number;
  atomicAggregate?: boolean;
  aggregator?: { asn: number; address: string };
  /** RFC 1997 communities as u32 (high 16 bits = AS). */
  communities?: number[];
  largeCommunities?: LargeCommunity[];
  mpReach?: MpReach;
  mpUnreach?: MpUnreach;
  /** Attributes we do not interpret (AS4_PATH, extended communities, ...), kept in order. */
  other?: RawAttribute[];
}

export interface UpdateMessage {
  type: 'update';
  withdrawn: string[]; // IPv4 prefixes
  attrs: PathAttributes;
  nlri: string[]; // IPv4 prefixes
}

export interface NotificationMessage {
  type: 'notification';
  code: number;
  subcode: number;
  data: Uint8Array;
}

export interface KeepaliveMessage {
  type: 'keepalive';
}

export interface RouteRefreshMessage {
  type: 'route-refresh';
  afi: number;
  safi: number;
}

export type BgpMessage = OpenMessage | UpdateMessage | NotificationMessage | KeepaliveMessage | RouteRefreshMessage;

/** A decode failure: what to put in the NOTIFICATION we answer with (§6) and why. */
export interface BgpError {
  code: number;
  subcode: number;
  data: Uint8Array;
  reason: string;
  /** RFC 7606 would allow treat-as-withdraw instead of a reset; informational only. */
  treatAsWithdraw?: boolean;
}

export type DecodeResult<T> = { ok: true; value: T } | { ok: false; error: BgpError };

export interface CodecOptions {
  /** Both sides advertised the 4-octet AS capability: AS numbers in AS_PATH/AGGREGATOR are 4 bytes. */
  fourOctetAs?: boolean;
}

// ---- small helpers ----------------------------------------------------------------------------

const EMPTY = new Uint8Array(0);

function fail<T>(
  code: number,
  subcode: number,
  reason: string,
  data: Uint8Array = EMPTY,
  treatAsWithdraw?: boolean,
): DecodeResult<T> {
  const error: BgpError = { code, subcode, data: Uint8Array.from(data), reason };
  if (treatAsWithdraw) error.treatAsWithdraw = true;
  return { ok: false, error };
}

const u16 = (b: Uint8Array, o: number): number => (b[o] << 8) | b[o + 1];
const u32 = (b: Uint8Array, o: number): number =>
  ((b[o] << 24) >>> 0) + ((b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]);
const u16bytes = (v: number): Uint8Array => Uint8Array.of(v >> 8, v & 0xff);

/** Makes a community from its two halves, e.g. community(65535, 0). */
export function community(asn: number, value: number): number {
  return ((asn & 0xffff) * 0x10000 + (value & 0xffff)) >>> 0;
}

/** Parses "65535:0" (or a well-known name) into a u32 community; throws on bad text. */
export function parseCommunity(text: string): number {
  if (text.toLowerCase() === 'graceful_shutdown') return COMMUNITY_GRACEFUL_SHUTDOWN;
  const m = /^(\d{1,5}):(\d{1,5})$/.exec(text);
  if (!m || Number(m[1]) > 0xffff || Number(m[2]) > 0xffff)
    throw new Error(`bad community ${JSON.stringify(text)} (want "asn:value", 16 bits each)`);
  return community(Number(m[1]), Number(m[2]));
}

export function formatCommunity(c: number): string {
  return `${c >>> 16}:${c & 0xffff}`;
}

/** Parses "4200000001:1:2" into a large community; throws on bad text. */
export function parseLargeCommunity(text: string): LargeCommunity {
  const m = /^(\d{1,10}):(\d{1,10}):(\d{1,10})$/.exec(text);
  const parts = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [];
  if (!m || parts.some((p) => p > 0xffffffff))
    throw new Error(`bad large community ${JSON.stringify(text)} (want "a:b:c", 32 bits each)`);
  return parts as LargeCommunity;
}

/** The RFC 8203/9003 shutdown communication carried in a Cease NOTIFICATION, if any. */
export function shutdownCommunication(n: NotificationMessage): string | undefined {
  if (n.code !== ERR_CEASE || (n.subcode !== CEASE_ADMINISTRATIVE_SHUTDOWN && n.subcode !== CEASE_ADMINISTRATIVE_RESET))
    return undefined;
  if (n.data.length < 1 || n.data[0] + 1 > n.data.length) return undefined;
  return Buffer.from(n.data.subarray(1, 1 + n.data[0])).toString('utf8');
}

/** Human name of a NOTIFICATION code/subcode, for logs. */
export function notificationName(code: number, subcode: number): string {
  const codes: Record<number, [string, string[]]> = {
    1: ['Message Header Error', ['', 'Connection Not Synchronized', 'Bad Message Length', 'Bad Message Type']],
    2: [
      'OPEN Message Error',
      [
        '',
        'Unsupported Version Number',
        'Bad Peer AS',
        'Bad BGP Identifier',
        'Unsupported Optional Parameter',
        '',
        'Unacceptable Hold Time',
        'Unsupported Capability',
      ],
    ],
    3: [
      'UPDATE Message Error',
      [
        '',
        'Malformed Attribute List',
        'Unrecognized Well-known Attribute',
        'Missing Well-known Attribute',
        'Attribute Flags Error',
        'Attribute Length Error',
        'Invalid ORIGIN Attribute',
        '',
        'Invalid NEXT_HOP Attribute',
        'Optional Attribute Error',
        'Invalid Network Field',
        'Malformed AS_PATH',
      ],
    ],
    4: ['Hold Timer Expired', []],
    5: ['Finite State Machine Error', []],
    6: [
      'Cease',
      [
        '',
        'Maximum Number of Prefixes Reached',
        'Administrative Shutdown',
        'Peer De-configured',
        'Administrative Reset',
        'Connection Rejected',
        'Other Configuration Change',
        'Connection Collision Resolution',
        'Out of Resources',
        'Hard Reset',
        'BFD Down',
      ],
    ],
  };
  const c = codes[code];
  if (!c) return `code ${code}/${subcode}`;
  const s = c[1][subcode];
  return s ? `${c[0]} / ${s}` : subcode === 0 ? c[0] : `${c[0]} / subcode ${subcode}`;
}

// ---- header and framing -----------------------------------------------------------------------

/**
 * Checks the 19-byte header at the start of `b` (§4.1, §6.1): marker all ones, length within
 * 19..4096, known type. Returns the message length and type. `b` must hold >= 19 bytes.
 */
export function checkHeader(b: Uint8Array): DecodeResult<{ length: number; type: number }> {
  for (let i = 0; i < BGP_MARKER_LEN; i++) {
    if (b[i] !== 0xff) return fail(ERR_MSG_HEADER, HDR_CONNECTION_NOT_SYNCHRONIZED, 'marker is not all ones');
  }
  const length = u16(b, 16);
  const type = b[18];
  if (length < BGP_HEADER_LEN || length > BGP_MAX_MESSAGE_LEN) {
    return fail(
      ERR_MSG_HEADER,
      HDR_BAD_MESSAGE_LENGTH,
      `message length ${length} outside ${BGP_HEADER_LEN}..${BGP_MAX_MESSAGE_LEN}`,
      b.subarray(16, 18),
    );
  }
  if (type < BGP_MSG_OPEN || type > BGP_MSG_ROUTE_REFRESH) {
    return fail(ERR_MSG_HEADER, HDR_BAD_MESSAGE_TYPE, `unknown message type ${type}`, b.subarray(18, 19));
  }
  return { ok: true, value: { length, type } };
}

/**
 * Splits a TCP byte stream into whole BGP messages. A header error is final: once the stream
 * is out of sync nothing after it can be trusted, so the framer reports the error and stops.
 */
export class BgpFramer {
  private buf: Uint8Array = EMPTY;
  private broken = false;

  /** Appends bytes and returns every message completed by them (frames are copies). */
  push(chunk: Uint8Array): DecodeResult<Uint8Array>[] {
    const out: DecodeResult<Uint8Array>[] = [];
    if (this.broken) return out;
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    let off = 0;
    while (this.buf.length - off >= BGP_HEADER_LEN) {
      const h = checkHeader(this.buf.subarray(off, off + BGP_HEADER_LEN));
      if (!h.ok) {
        this.broken = true;
        this.buf = EMPTY;
        out.push(h);
        return out;
      }
      if (this.buf.length - off < h.value.length) break;
      out.push({ ok: true, value: Uint8Array.prototype.slice.call(this.buf, off, off + h.value.length) });
      off += h.value.length;
    }
    this.buf = off === this.buf.length ? EMPTY : Uint8Array.prototype.slice.call(this.buf, off);
    return out;
  }

  /** Bytes held waiting for the rest of a message. */
  get pending(): number {
    return this.buf.length;
  }
}

// ---- decoding ---------------------------------------------------------------------------------

/** Decodes exactly one whole message (header included). Never throws. */
export function decodeMessage(b: Uint8Array, opts: CodecOptions = {}): DecodeResult<BgpMessage> {
  if (b.length < BGP_HEADER_LEN)
    return fail(ERR_MSG_HEADER, HDR_BAD_MESSAGE_LENGTH, `${b.length} bytes is shorter than a header`);
  const h = checkHeader(b);
  if (!h.ok) return h;
  const { length, type } = h.value;
  const lenField = b.subarray(16, 18);
  if (length !== b.length)
    return fail(ERR_MSG_HEADER, HDR_BAD_MESSAGE_LENGTH, `length field ${length} but ${b.length} bytes`, lenField);
  switch (type) {
    case BGP_MSG_OPEN:
      // §4.2: fixed part is 10 octets after the header.
      if (length < BGP_HEADER_LEN + 10)
        return fail(ERR_MSG_HEADER, HDR_BAD_MESSAGE_LENGTH, `OPEN of ${length} bytes`, lenField);
      return decodeOpen(b);
    case BGP_MSG_UPDATE:
      // §4.3: withdrawn length(2) + attribute length(2) at least.
      if (length < BGP_HEADER_LEN + 4)
        return fail(ERR_MSG_HEADER, HDR_BAD_MESSAGE_LENGTH, `UPDATE of ${length} bytes`, lenField);
      return decodeUpdate(b, opts);
    case BGP_MSG_NOTIFICATION:
      // §4.5: error code(1) + subcode(1) + data.
      if (length < BGP_HEADER_LEN + 2)
        return fail(ERR_MSG_HEADER, HDR_BAD_MESSAGE_LENGTH, `NOTIFICATION of ${length} bytes`, lenField);
      return { ok: true, value: { type: 'notification', code: b[19], subcode: b[20], data: b.slice(21) } };
    case BGP_MSG_KEEPALIVE:
      // §4.4: a KEEPALIVE is the header alone.
      if (length !== BGP_HEADER_LEN)
        return fail(ERR_MSG_HEADER, HDR_BAD_MESSAGE_LENGTH, `KEEPALIVE of ${length} bytes`, lenField);
      return { ok: true, value: { type: 'keepalive' } };
    default:
      // RFC 2918 §3: AFI(2) reserved(1) SAFI(1).
      if (length !== BGP_HEADER_LEN + 4)
        return fail(ERR_MSG_HEADER, HDR_BAD_MESSAGE_LENGTH, `ROUTE-REFRESH of ${length} bytes`, lenField);
      return { ok: true, value: { type: 'route-refresh', afi: u16(b, 19), safi: b[22] } };
  }
}

function decodeOpen(b: Uint8Array): DecodeResult<OpenMessage> {
  const version = b[19]; // §4.2 Version
  const myAsField = u16(b, 20); // My Autonomous System (2 octets)
  const holdTime = u16(b, 22); // Hold Time, seconds
  const bgpIdBytes = b.subarray(24, 28); // BGP Identifier
  let optLen = b[28]; // Optional Parameters Length
  // §6.2: the data is the largest locally supported version, as 2 octets.
  if (version !== BGP_VERSION)
    return fail(ERR_OPEN, OPEN_UNSUPPORTED_VERSION, `BGP version ${version}`, u16bytes(BGP_VERSION));
  // §6.2: hold time 1 or 2 seconds must be rejected.
  if (holdTime === 1 || holdTime === 2) return fail(ERR_OPEN, OPEN_UNACCEPTABLE_HOLD_TIME, `hold time ${holdTime} s`);
  // RFC 6286 §2.2: the identifier is a non-zero 32-bit value.
  if (u32(bgpIdBytes, 0) === 0) return fail(ERR_OPEN, OPEN_BAD_BGP_IDENTIFIER, 'BGP identifier 0.0.0.0');
  if (myAsField === 0) return fail(ERR_OPEN, OPEN_BAD_PEER_AS, 'AS 0 in OPEN', u16bytes(0));

  let p = 29;
  let extended = false;
  // RFC 9072 §2: length 255 and first parameter type 255 → 2-octet lengths follow.
  if (optLen === 255 && b.length > 29 && b[29] === OPT_PARAM_EXTENDED) {
    if (b.length < 32) return fail(ERR_OPEN, OPEN_UNSPECIFIC, 'truncated extended optional parameters length');
    optLen = u16(b, 30);
    p = 32;
    extended = true;
  }
  if (p + optLen !== b.length)
    return fail(ERR_OPEN, OPEN_UNSPECIFIC, `optional parameters length ${optLen} does not match message`);
  const end = p + optLen;
  const capabilities: Capability[] = [];
  let as4: number | undefined;
  while (p < end) {
    const hdr = extended ? 3 : 2;
    if (end - p < hdr) return fail(ERR_OPEN, OPEN_UNSPECIFIC, 'truncated optional parameter');
    const ptype = b[p];
    const plen = extended ? u16(b, p + 1) : b[p + 1];
    p += hdr;
    if (end - p < plen) return fail(ERR_OPEN, OPEN_UNSPECIFIC, 'optional parameter overruns the message');
    if (ptype !== OPT_PARAM_CAPABILITIES)
      return fail(ERR_OPEN, OPEN_UNSUPPORTED_OPTIONAL_PARAMETER, `optional parameter type ${ptype}`);
    // RFC 5492 §4: a sequence of (code(1), length(1), value).
    const pend = p + plen;
    while (p < pend) {
      if (pend - p < 2) return fail(ERR_OPEN, OPEN_UNSPECIFIC, 'truncated capability');
      const code = b[p];
      const clen = b[p + 1];
      p += 2;
      if (pend - p < clen) return fail(ERR_OPEN, OPEN_UNSPECIFIC, `capability ${code} overruns its parameter`);
      const v = b.subarray(p, p + clen);
      p += clen;
      if (code === CAP_MULTIPROTOCOL) {
        // RFC 4760 §8: AFI(2) reserved(1) SAFI(1).
        if (clen !== 4) return fail(ERR_OPEN, OPEN_UNSPECIFIC, `multiprotocol capability of length ${clen}`);
        capabilities.push({ kind: 'multiprotocol', afi: u16(v, 0), safi: v[3] });
      } else if (code === CAP_ROUTE_REFRESH) {
        // RFC 2918 §2: Capability Length 0.
        if (clen !== 0) return fail(ERR_OPEN, OPEN_UNSPECIFIC, `route refresh capability of length ${clen}`);
        capabilities.push({ kind: 'route-refresh' });
      } else if (code === CAP_GRACEFUL_RESTART) {
        // RFC 4724 §3: Restart Flags(4 bits) Restart Time(12 bits), then AFI(2) SAFI(1) Flags(1) per family.
        if (clen < 2 || (clen - 2) % 4 !== 0)
          return fail(ERR_OPEN, OPEN_UNSPECIFIC, `graceful restart capability of length ${clen}`);
        const families: GracefulRestartFamily[] = [];
        for (let i = 2; i < clen; i += 4)
          families.push({ afi: u16(v, i), safi: v[i + 2], forwarding: (v[i + 3] & GR_AF_FLAG_FORWARDING) !== 0 });
        const flags = v[0] >> 4;
        capabilities.push({
          kind: 'graceful-restart',
          restarting: (flags & GR_FLAG_RESTART_STATE) !== 0,
          notification: (flags & GR_FLAG_NOTIFICATION) !== 0,
          restartTime: u16(v, 0) & GR_MAX_RESTART_TIME,
          families,
        });
      } else if (code === CAP_FOUR_OCTET_AS) {
        // RFC 6793 §3: the 4-octet AS number.
        if (clen !== 4) return fail(ERR_OPEN, OPEN_UNSPECIFIC, `4-octet AS capability of length ${clen}`);
        as4 = u32(v, 0);
        if (as4 === 0) return fail(ERR_OPEN, OPEN_BAD_PEER_AS, 'AS 0 in 4-octet AS capability', v);
        capabilities.push({ kind: 'four-octet-as', asn: as4 });
      } else {
        capabilities.push({ kind: 'other', code, value: v.slice() });
      }
    }
  }
  return {
    ok: true,
    value: {
      type: 'open',
      version,
      asn: as4 ?? myAsField,
      myAsField,
      holdTime,
      bgpId: formatIpv4(bgpIdBytes),
      capabilities,
    },
  };
}

/** Reads a run of (length, prefix) NLRI entries (§4.3, RFC 4760 §5); bytes beyond `len` bits are zeroed. */
function decodePrefixes(b: Uint8Array, start: number, end: number, afi: Afi, what: string): DecodeResult<string[]> {
  const out: string[] = [];
  const max = afi === AFI_IPV4 ? 32 : 128;
  let p = start;
  while (p < end) {
    const len = b[p];
    if (len > max) return fail(ERR_UPDATE, UPD_INVALID_NETWORK_FIELD, `${what}: prefix length ${len} > ${max}`);
    const n = (len + 7) >> 3;
    if (p + 1 + n > end) return fail(ERR_UPDATE, UPD_INVALID_NETWORK_FIELD, `${what}: prefix overruns its field`);
    const addr = new Uint8Array(max / 8);
    addr.set(b.subarray(p + 1, p + 1 + n));
    if (len & 7) addr[n - 1] &= (0xff << (8 - (len & 7))) & 0xff;
    out.push(formatPrefix({ afi, addr, len }));
    p += 1 + n;
  }
  return { ok: true, value: out };
}

// Expected (optional, transitive) flag bits of the attributes we recognise (§5, RFC 4760/1997/8092).
const KNOWN_FLAGS: Record<number, number> = {
  [ATTR_ORIGIN]: ATTR_FLAG_TRANSITIVE,
  [ATTR_AS_PATH]: ATTR_FLAG_TRANSITIVE,
  [ATTR_NEXT_HOP]: ATTR_FLAG_TRANSITIVE,
  [ATTR_MULTI_EXIT_DISC]: ATTR_FLAG_OPTIONAL,
  [ATTR_LOCAL_PREF]: ATTR_FLAG_TRANSITIVE,
  [ATTR_ATOMIC_AGGREGATE]: ATTR_FLAG_TRANSITIVE,
  [ATTR_AGGREGATOR]: ATTR_FLAG_OPTIONAL | ATTR_FLAG_TRANSITIVE,
  [ATTR_COMMUNITIES]: ATTR_FLAG_OPTIONAL | ATTR_FLAG_TRANSITIVE,
  [ATTR_MP_REACH_NLRI]: ATTR_FLAG_OPTIONAL,
  [ATTR_MP_UNREACH_NLRI]: ATTR_FLAG_OPTIONAL,
  [ATTR_LARGE_COMMUNITY]: ATTR_FLAG_OPTIONAL | ATTR_FLAG_TRANSITIVE,
};

function decodeAsPath(v: Uint8Array, width: 2 | 4, whole: Uint8Array): DecodeResult<AsPathSegment[]> {
  // §4.3 AS_PATH: segments of type(1), count(1), count × AS number (2 or 4 octets, RFC 6793 §4).
  const segs: AsPathSegment[] = [];
  let p = 0;
  while (p < v.length) {
    if (v.length - p < 2)
      return fail(ERR_UPDATE, UPD_MALFORMED_AS_PATH, 'truncated AS_PATH segment header', whole, true);
    const type = v[p];
    const count = v[p + 1];
    p += 2;
    if (type < AS_SET || type > AS_CONFED_SET)
      return fail(ERR_UPDATE, UPD_MALFORMED_AS_PATH, `AS_PATH segment type ${type}`, whole, true);
    if (count === 0) return fail(ERR_UPDATE, UPD_MALFORMED_AS_PATH, 'empty AS_PATH segment', whole, true); // RFC 7606 §7.2
    if (v.length - p < count * width)
      return fail(ERR_UPDATE, UPD_MALFORMED_AS_PATH, 'AS_PATH segment overruns the attribute', whole, true);
    const asns: number[] = [];
    for (let i = 0; i < count; i++, p += width) asns.push(width === 4 ? u32(v, p) : u16(v, p));
    segs.push({ type, asns });
  }
  return { ok: true, value: segs };
}

function decodeMpReach(v: Uint8Array, whole: Uint8Array): DecodeResult<MpReach> {
  // RFC 4760 §3: AFI(2) SAFI(1) NH length(1) NH reserved(1) NLRI.
  if (v.length < 5) return fail(ERR_UPDATE, UPD_OPTIONAL_ATTRIBUTE_ERROR, `MP_REACH_NLRI of ${v.length} bytes`, whole);
  const afi = u16(v, 0);
  const safi = v[2];
  const nhLen = v[3];
  if (4 + nhLen + 1 > v.length)
    return fail(ERR_UPDATE, UPD_OPTIONAL_ATTRIBUTE_ERROR, 'MP_REACH_NLRI next hop overruns the attribute', whole);
  const nh = v.subarray(4, 4 + nhLen);
  const nlriStart = 4 + nhLen + 1; // skip the reserved octet
  if (afi === AFI_IPV6 && safi === SAFI_UNICAST) {
    // RFC 2545 §3: a global address, optionally followed by a link-local one.
    if (nhLen !== 16 && nhLen !== 32)
      return fail(ERR_UPDATE, UPD_OPTIONAL_ATTRIBUTE_ERROR, `IPv6 next hop of ${nhLen} bytes`, whole);
    const nextHops = [formatIpv6(nh, 0)];
    if (nhLen === 32) nextHops.push(formatIpv6(nh, 16));
    const nlri = decodePrefixes(v, nlriStart, v.length, AFI_IPV6, 'MP_REACH_NLRI');
    if (!nlri.ok) return nlri;
    return { ok: true, value: { afi, safi, nextHops, nlri: nlri.value } };
  }
  if (afi === AFI_IPV4 && safi === SAFI_UNICAST && (nhLen === 4 || nhLen === 16 || nhLen === 32)) {
    // IPv4 NLRI with an IPv4 (RFC 4760) or IPv6 (RFC 8950) next hop.
    const nextHops =
      nhLen === 4 ? [formatIpv4(nh)] : [formatIpv6(nh, 0), ...(nhLen === 32 ? [formatIpv6(nh, 16)] : [])];
    const nlri = decodePrefixes(v, nlriStart, v.length, AFI_IPV4, 'MP_REACH_NLRI');
    if (!nlri.ok) return nlri;
    return { ok: true, value: { afi, safi, nextHops, nlri: nlri.value } };
  }
  if (afi === AFI_IPV4 && safi === SAFI_UNICAST)
    return fail(ERR_UPDATE, UPD_OPTIONAL_ATTRIBUTE_ERROR, `IPv4 next hop of ${nhLen} bytes`, whole);
  return {
    ok: true,
    value: { afi, safi, nextHops: [], nlri: [], raw: { nextHop: nh.slice(), nlri: v.slice(nlriStart) } },
  };
}

function decodeMpUnreach(v: Uint8Array, whole: Uint8Array): DecodeResult<MpUnreach> {
  // RFC 4760 §4: AFI(2) SAFI(1) withdrawn routes.
  if (v.length < 3)
    return fail(ERR_UPDATE, UPD_OPTIONAL_ATTRIBUTE_ERROR, `MP_UNREACH_NLRI of ${v.length} bytes`, whole);
  const afi = u16(v, 0);
  const safi = v[2];
  if ((afi === AFI_IPV4 || afi === AFI_IPV6) && safi === SAFI_UNICAST) {
    const w = decodePrefixes(v, 3, v.length, afi, 'MP_UNREACH_NLRI');
    if (!w.ok) return w;
    return { ok: true, value: { afi, safi, withdrawn: w.value } };
  }
  return { ok: true, value: { afi, safi, withdrawn: [], raw: v.slice(3) } };
}

/** §6.3: a NEXT_HOP must be a usable unicast address. */
function badNextHop(a: Uint8Array): boolean {
  const first = a[0];
  return u32(a, 0) === 0 || first >= 224; /* multicast, class E, broadcast */
}

function decodeUpdate(b: Uint8Array, opts: CodecOptions): DecodeResult<UpdateMessage> {
  const end = b.length;
  let p = BGP_HEADER_LEN;
  // §4.3: Withdrawn Routes Length(2), Withdrawn Routes, Total Path Attribute Length(2), attributes, NLRI.
  const wlen = u16(b, p);
  p += 2;
  // §6.3: lengths too large for the message → Malformed Attribute List.
  if (p + wlen + 2 > end)
    return fail(ERR_UPDATE, UPD_MALFORMED_ATTRIBUTE_LIST, `withdrawn routes length ${wlen} overruns the message`);
  const withdrawn = decodePrefixes(b, p, p + wlen, AFI_IPV4, 'withdrawn routes');
  if (!withdrawn.ok) return withdrawn;
  p += wlen;
  const alen = u16(b, p);
  p += 2;
  if (p + alen > end)
    return fail(ERR_UPDATE, UPD_MALFORMED_ATTRIBUTE_LIST, `path attribute length ${alen} overruns the message`);
  const aend = p + alen;
  const attrs: PathAttributes = {};
  const seen = new Set<number>();
  while (p < aend) {
    // §4.3: flags(1) type(1) length(1 or 2, by the Extended Length bit) value.
    if (aend - p < 3) return fail(ERR_UPDATE, UPD_MALFORMED_ATTRIBUTE_LIST, 'truncated path attribute header');
    const flags = b[p];
    const type = b[p + 1];
    const ext = (flags & ATTR_FLAG_EXTENDED_LENGTH) !== 0;
    if (ext && aend - p < 4) return fail(ERR_UPDATE, UPD_MALFORMED_ATTRIBUTE_LIST, 'truncated path attribute header');
    const len = ext ? u16(b, p + 2) : b[p + 2];
    const vstart = p + (ext ? 4 : 3);
    if (vstart + len > aend)
      return fail(
        ERR_UPDATE,
        UPD_MALFORMED_ATTRIBUTE_LIST,
        `attribute ${type} length ${len} overruns the attribute list`,
      );
    const whole = b.subarray(p, vstart + len); // §6.3: the Data field carries the erroneous attribute
    const v = b.subarray(vstart, vstart + len);
    p = vstart + len;
    // §6.3: an attribute appearing twice → Malformed Attribute List.
    if (seen.has(type)) return fail(ERR_UPDATE, UPD_MALFORMED_ATTRIBUTE_LIST, `attribute ${type} appears twice`);
    seen.add(type);
    const expect = KNOWN_FLAGS[type];
    if (expect !== undefined) {
      const got = flags & (ATTR_FLAG_OPTIONAL | ATTR_FLAG_TRANSITIVE);
      // Partial is only meaningful on optional transitive attributes (§4.3).
      const partialOk = expect === (ATTR_FLAG_OPTIONAL | ATTR_FLAG_TRANSITIVE) || (flags & ATTR_FLAG_PARTIAL) === 0;
      if (got !== expect || !partialOk)
        return fail(ERR_UPDATE, UPD_ATTRIBUTE_FLAGS_ERROR, `attribute ${type} flags 0x${flags.toString(16)}`, whole);
    }
    const width = opts.fourOctetAs ? 4 : 2;
    switch (type) {
      case ATTR_ORIGIN:
        if (len !== 1) return fail(ERR_UPDATE, UPD_ATTRIBUTE_LENGTH_ERROR, `ORIGIN of ${len} bytes`, whole, true);
        if (v[0] > ORIGIN_INCOMPLETE) return fail(ERR_UPDATE, UPD_INVALID_ORIGIN, `ORIGIN ${v[0]}`, whole, true);
        attrs.origin = v[0];
        break;
      case ATTR_AS_PATH: {
        const r = decodeAsPath(v, width, whole);
        if (!r.ok) return r;
        attrs.asPath = r.value;
        break;
      }
      case ATTR_NEXT_HOP:
        if (len !== 4) return fail(ERR_UPDATE, UPD_ATTRIBUTE_LENGTH_ERROR, `NEXT_HOP of ${len} bytes`, whole, true);
        if (badNextHop(v)) return fail(ERR_UPDATE, UPD_INVALID_NEXT_HOP, `NEXT_HOP ${formatIpv4(v)}`, whole, true);
        attrs.nextHop = formatIpv4(v);
        break;
      case ATTR_MULTI_EXIT_DISC:
        if (len !== 4)
          return fail(ERR_UPDATE, UPD_ATTRIBUTE_LENGTH_ERROR, `MULTI_EXIT_DISC of ${len} bytes`, whole, true);
        attrs.med = u32(v, 0);
        break;
      case ATTR_LOCAL_PREF:
        if (len !== 4) return fail(ERR_UPDATE, UPD_ATTRIBUTE_LENGTH_ERROR, `LOCAL_PREF of ${len} bytes`, whole, true);
        attrs.localPref = u32(v, 0);
        break;
      case ATTR_ATOMIC_AGGREGATE:
        if (len !== 0) return fail(ERR_UPDATE, UPD_ATTRIBUTE_LENGTH_ERROR, `ATOMIC_AGGREGATE of ${len} bytes`, whole);
        attrs.atomicAggregate = true;
        break;
      case ATTR_AGGREGATOR:
        // §5.1.7: AS (2 or 4 octets) + IPv4 address.
        if (len !== width + 4) return fail(ERR_UPDATE, UPD_ATTRIBUTE_LENGTH_ERROR, `AGGREGATOR of ${len} bytes`, whole);
        attrs.aggregator = { asn: width === 4 ? u32(v, 0) : u16(v, 0), address: formatIpv4(v, width) };
        break;
      case ATTR_COMMUNITIES:
        // RFC 1997 §3: a non-empty list of 4-octet values (RFC 7606 §7.8).
        if (len === 0 || len % 4 !== 0)
          return fail(ERR_UPDATE, UPD_OPTIONAL_ATTRIBUTE_ERROR, `COMMUNITIES of ${len} bytes`, whole, true);
        attrs.communities = [];
        for (let i = 0; i < len; i += 4) attrs.communities.push(u32(v, i));
        break;
      case ATTR_LARGE_COMMUNITY:
        // RFC 8092 §3, §6: a non-empty list of 12-octet values.
        if (len === 0 || len % 12 !== 0)
          return fail(ERR_UPDATE, UPD_OPTIONAL_ATTRIBUTE_ERROR, `LARGE_COMMUNITY of ${len} bytes`, whole, true);
        attrs.largeCommunities = [];
        for (let i = 0; i < len; i += 12) attrs.largeCommunities.push([u32(v, i), u32(v, i + 4), u32(v, i + 8)]);
        break;
      case ATTR_MP_REACH_NLRI: {
        const r = decodeMpReach(v, whole);
        if (!r.ok) return r;
        attrs.mpReach = r.value;
        break;
      }
      case ATTR_MP_UNREACH_NLRI: {
        const r = decodeMpUnreach(v, whole);
        if (!r.ok) return r;
        attrs.mpUnreach = r.value;
        break;
      }
      default:
        // §6.3: an unrecognised attribute without the Optional bit is a well-known one we lack.
        if ((flags & ATTR_FLAG_OPTIONAL) === 0)
          return fail(
            ERR_UPDATE,
            UPD_UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
            `unrecognized well-known attribute ${type}`,
            whole,
          );
        (attrs.other ??= []).push({ flags: flags & ~ATTR_FLAG_EXTENDED_LENGTH, type, value: v.slice() });
    }
  }
  const nlri = decodePrefixes(b, aend, end, AFI_IPV4, 'NLRI');
  if (!nlri.ok) return nlri;
  // §6.3: mandatory well-known attributes must be present when the UPDATE carries routes.
  const reach =
    nlri.value.length > 0 ||
    (attrs.mpReach !== undefined && (attrs.mpReach.nlri.length > 0 || attrs.mpReach.raw !== undefined));
  if (reach) {
    const required = [ATTR_ORIGIN, ATTR_AS_PATH, ...(nlri.value.length > 0 ? [ATTR_NEXT_HOP] : [])];
    for (const t of required) {
      if (!seen.has(t))
        return fail(
          ERR_UPDATE,
          UPD_MISSING_WELL_KNOWN_ATTRIBUTE,
          `missing well-known attribute ${t}`,
          Uint8Array.of(t),
          true,
        );
    }
  }
  return { ok: true, value: { type: 'update', withdrawn: withdrawn.value, attrs, nlri: nlri.value } };
}

// ---- encoding ---------------------------------------------------------------------------------
// Encoders may throw clear Errors on bad input (control plane); they never emit > 4096 bytes.

class Writer {
  private buf = new Uint8Array(BGP_MAX_MESSAGE_LEN);
  len = 0;
  private room(n: number): void {
    if (this.len + n > this.buf.length) throw new Error(`BGP message would exceed ${BGP_MAX_MESSAGE_LEN} bytes`);
  }
  u8(v: number): this {
    this.room(1);
    this.buf[this.len++] = v & 0xff;
    return this;
  }
  u16(v: number): this {
    this.room(2);
    this.buf[this.len++] = (v >> 8) & 0xff;
    this.buf[this.len++] = v & 0xff;
    return this;
  }
  u32(v: number): this {
    this.room(4);
    this.buf[this.len++] = (v >>> 24) & 0xff;
    this.buf[this.len++] = (v >>> 16) & 0xff;
    this.buf[this.len++] = (v >>> 8) & 0xff;
    this.buf[this.len++] = v & 0xff;
    return this;
  }
  bytes(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.len);
    this.len += b.length;
    return this;
  }
  /** Writes a placeholder 16-bit length; returns the position to patch. */
  mark16(): number {
    this.u16(0);
    return this.len - 2;
  }
  patch16(at: number, v: number): void {
    this.buf[at] = (v >> 8) & 0xff;
    this.buf[at + 1] = v & 0xff;
  }
  patch8(at: number, v: number): void {
    this.buf[at] = v & 0xff;
  }
  done(): Uint8Array {
    return this.buf.slice(0, this.len);
  }
}

function header(w: Writer, type: number): void {
  for (let i = 0; i < BGP_MARKER_LEN; i++) w.u8(0xff); // §4.1 marker
  w.u16(0); // length, patched by finish()
  w.u8(type);
}

function finish(w: Writer): Uint8Array {
  w.patch16(16, w.len);
  return w.done();
}

function checkU32(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new Error(`${what} ${v} is not a 32-bit unsigned integer`);
  return v;
}

export interface OpenInput {
  asn: number;
  holdTime: number;
  bgpId: string;
  capabilities: Capability[];
}

export function encodeOpen(o: OpenInput): Uint8Array {
  checkU32(o.asn, 'AS number');
  if (!Number.isInteger(o.holdTime) || o.holdTime < 0 || o.holdTime > 0xffff || o.holdTime === 1 || o.holdTime === 2) {
    throw new Error(`hold time ${o.holdTime} must be 0 or 3..65535 s (RFC 4271 §4.2)`);
  }
  const id = parseIpv4(o.bgpId);
  if (!id || u32(id, 0) === 0)
    throw new Error(`BGP identifier ${JSON.stringify(o.bgpId)} must be a non-zero IPv4 address`);
  const w = new Writer();
  header(w, BGP_MSG_OPEN);
  w.u8(BGP_VERSION); // §4.2 Version
  w.u16(o.asn > 0xffff ? AS_TRANS : o.asn); // My Autonomous System (RFC 6793 §4.1: AS_TRANS if it doesn't fit)
  w.u16(o.holdTime); // Hold Time
  w.bytes(id); // BGP Identifier
  const optLenAt = w.len;
  w.u8(0); // Optional Parameters Length, patched below
  if (o.capabilities.length > 0) {
    w.u8(OPT_PARAM_CAPABILITIES); // one Capabilities parameter holding all of them (RFC 5492 §4)
    const plenAt = w.len;
    w.u8(0);
    for (const c of o.capabilities) {
      if (c.kind === 'multiprotocol') {
        w.u8(CAP_MULTIPROTOCOL).u8(4).u16(c.afi).u8(0).u8(c.safi); // AFI, reserved, SAFI
      } else if (c.kind === 'route-refresh') {
        w.u8(CAP_ROUTE_REFRESH).u8(0); // RFC 2918 §2
      } else if (c.kind === 'graceful-restart') {
        if (!Number.isInteger(c.restartTime) || c.restartTime < 0 || c.restartTime > GR_MAX_RESTART_TIME) {
          throw new Error(`graceful restart time ${c.restartTime} must be 0..${GR_MAX_RESTART_TIME} s (RFC 4724 §3)`);
        }
        if (c.families.length > 63) throw new Error('graceful restart capability with more than 63 families');
        const flags = (c.restarting ? GR_FLAG_RESTART_STATE : 0) | (c.notification ? GR_FLAG_NOTIFICATION : 0);
        w.u8(CAP_GRACEFUL_RESTART)
          .u8(2 + 4 * c.families.length)
          .u16((flags << 12) | c.restartTime); // RFC 4724 §3
        for (const f of c.families)
          w.u16(f.afi)
            .u8(f.safi)
            .u8(f.forwarding ? GR_AF_FLAG_FORWARDING : 0);
      } else if (c.kind === 'four-octet-as') {
        w.u8(CAP_FOUR_OCTET_AS).u8(4).u32(checkU32(c.asn, 'AS number'));
      } else {
        if (c.value.length > 255) throw new Error(`capability ${c.code} value too long`);
        w.u8(c.code).u8(c.value.length).bytes(c.value);
      }
    }
    const plen = w.len - plenAt - 1;
    if (plen > 255) throw new Error('capabilities exceed 255 bytes');
    w.patch8(plenAt, plen);
    w.patch8(optLenAt, plen + 2);
  }
  return finish(w);
}

export function encodeKeepalive(): Uint8Array {
  const w = new Writer();
  header(w, BGP_MSG_KEEPALIVE);
  return finish(w);
}

export function encodeNotification(code: number, subcode: number, data: Uint8Array = EMPTY): Uint8Array {
  const w = new Writer();
  header(w, BGP_MSG_NOTIFICATION);
  w.u8(code).u8(subcode).bytes(data); // §4.5
  return finish(w);
}

/** RFC 8203/9003 Cease data: length(1) + UTF-8 text, at most 255 bytes. */
export function shutdownData(message: string): Uint8Array {
  let text = Buffer.from(message, 'utf8');
  if (text.length > 255) text = text.subarray(0, 255);
  return Uint8Array.of(text.length, ...text);
}

export function encodeRouteRefresh(afi: number, safi: number): Uint8Array {
  const w = new Writer();
  header(w, BGP_MSG_ROUTE_REFRESH);
  w.u16(afi).u8(0).u8(safi);
  return finish(w);
}

function writePrefixes(w: Writer, prefixes: string[], afi: Afi): void {
  for (const text of prefixes) {
    const p = parsePrefix(text);
    if (p.afi !== afi) throw new Error(`prefix ${text} is not ${afi === AFI_IPV4 ? 'IPv4' : 'IPv6'}`);
    w.u8(p.len).bytes(p.addr.subarray(0, (p.len + 7) >> 3)); // §4.3 (length, prefix)
  }
}

function writeAttr(w: Writer, flags: number, type: number, body: (w: Writer) => void): void {
  // Write with a 2-byte length, then shrink to 1 byte when it fits (§4.3 Extended Length).
  const start = w.len;
  w.u8(flags | ATTR_FLAG_EXTENDED_LENGTH).u8(type);
  const lenAt = w.mark16();
  body(w);
  const len = w.len - lenAt - 2;
  if (len <= 255) {
    const tmp = w.done().slice(lenAt + 2, w.len);
    w.len = start;
    w.u8(flags & ~ATTR_FLAG_EXTENDED_LENGTH)
      .u8(type)
      .u8(len)
      .bytes(tmp);
  } else {
    w.patch16(lenAt, len);
  }
}

function writeAsPath(w: Writer, segs: AsPathSegment[], width: 2 | 4): void {
  for (const s of segs) {
    if (s.asns.length === 0 || s.asns.length > 255) throw new Error(`AS_PATH segment of ${s.asns.length} AS numbers`);
    w.u8(s.type).u8(s.asns.length);
    for (const a of s.asns) {
      checkU32(a, 'AS number');
      if (width === 4) w.u32(a);
      else w.u16(a > 0xffff ? AS_TRANS : a); // RFC 6793 §4.2.2
    }
  }
}

export interface UpdateInput {
  withdrawn?: string[];
  attrs?: PathAttributes;
  nlri?: string[];
}

/**
 * Encodes an UPDATE, attributes in type-code order. Without 4-octet AS, AS numbers above 65535
 * become AS_TRANS in AS_PATH and the real path goes into AS4_PATH (RFC 6793 §4.2.2).
 */
export function encodeUpdate(u: UpdateInput, opts: CodecOptions = {}): Uint8Array {
  const width = opts.fourOctetAs ? 4 : 2;
  const a = u.attrs ?? {};
  const w = new Writer();
  header(w, BGP_MSG_UPDATE);
  const wlenAt = w.mark16();
  writePrefixes(w, u.withdrawn ?? [], AFI_IPV4);
  w.patch16(wlenAt, w.len - wlenAt - 2);
  const alenAt = w.mark16();
  const T = ATTR_FLAG_TRANSITIVE;
  const O = ATTR_FLAG_OPTIONAL;
  type Item = [number, () => void];
  const items: Item[] = [];
  if (a.origin !== undefined) items.push([ATTR_ORIGIN, () => writeAttr(w, T, ATTR_ORIGIN, (x) => x.u8(a.origin!))]);
  if (a.asPath !== undefined)
    items.push([ATTR_AS_PATH, () => writeAttr(w, T, ATTR_AS_PATH, (x) => writeAsPath(x, a.asPath!, width))]);
  if (a.nextHop !== undefined) {
    const nh = parseIpv4(a.nextHop);
    if (!nh) throw new Error(`NEXT_HOP ${a.nextHop} is not IPv4`);
    items.push([ATTR_NEXT_HOP, () => writeAttr(w, T, ATTR_NEXT_HOP, (x) => x.bytes(nh))]);
  }
  if (a.med !== undefined)
    items.push([
      ATTR_MULTI_EXIT_DISC,
      () => writeAttr(w, O, ATTR_MULTI_EXIT_DISC, (x) => x.u32(checkU32(a.med!, 'MED'))),
    ]);
  if (a.localPref !== undefined)
    items.push([
      ATTR_LOCAL_PREF,
      () => writeAttr(w, T, ATTR_LOCAL_PREF, (x) => x.u32(checkU32(a.localPref!, 'LOCAL_PREF'))),
    ]);
  if (a.atomicAggregate) items.push([ATTR_ATOMIC_AGGREGATE, () => writeAttr(w, T, ATTR_ATOMIC_AGGREGATE, () => {})]);
  if (a.aggregator !== undefined) {
    const addr = parseIpv4(a.aggregator.address);
    if (!addr) throw new Error(`AGGREGATOR address ${a.aggregator.address} is not IPv4`);
    const ag = a.aggregator;
    items.push([
      ATTR_AGGREGATOR,
      () =>
        writeAttr(w, O | T, ATTR_AGGREGATOR, (x) =>
          (width === 4 ? x.u32(ag.asn) : x.u16(ag.asn > 0xffff ? AS_TRANS : ag.asn)).bytes(addr),
        ),
    ]);
  }
  if (a.communities !== undefined && a.communities.length > 0) {
    items.push([
      ATTR_COMMUNITIES,
      () =>
        writeAttr(w, O | T, ATTR_COMMUNITIES, (x) => a.communities!.forEach((c) => x.u32(checkU32(c, 'community')))),
    ]);
  }
  if (a.mpReach !== undefined) {
    const m = a.mpReach;
    items.push([
      ATTR_MP_REACH_NLRI,
      () =>
        writeAttr(w, O, ATTR_MP_REACH_NLRI, (x) => {
          x.u16(m.afi).u8(m.safi); // RFC 4760 §3 AFI, SAFI
          if (m.raw) {
            x.u8(m.raw.nextHop.length).bytes(m.raw.nextHop).u8(0).bytes(m.raw.nlri);
            return;
          }
          const hops = m.nextHops.map((t) => parseIpv4(t) ?? parseIpv6(t));
          if (hops.length === 0 || hops.length > 2 || hops.some((h) => !h))
            throw new Error(`bad MP_REACH_NLRI next hops ${JSON.stringify(m.nextHops)}`);
          x.u8(hops.reduce((n, h) => n + h!.length, 0)); // Length of Next Hop Network Address
          for (const h of hops) x.bytes(h!);
          x.u8(0); // Reserved
          writePrefixes(x, m.nlri, m.afi as Afi);
        }),
    ]);
  }
  if (a.mpUnreach !== undefined) {
    const m = a.mpUnreach;
    items.push([
      ATTR_MP_UNREACH_NLRI,
      () =>
        writeAttr(w, O, ATTR_MP_UNREACH_NLRI, (x) => {
          x.u16(m.afi).u8(m.safi); // RFC 4760 §4
          if (m.raw) x.bytes(m.raw);
          else writePrefixes(x, m.withdrawn, m.afi as Afi);
        }),
    ]);
  }
  if (
    !opts.fourOctetAs &&
    a.asPath?.some((s) => s.asns.some((n) => n > 0xffff)) &&
    !a.other?.some((o) => o.type === ATTR_AS4_PATH)
  ) {
    items.push([ATTR_AS4_PATH, () => writeAttr(w, O | T, ATTR_AS4_PATH, (x) => writeAsPath(x, a.asPath!, 4))]);
  }
  if (a.largeCommunities !== undefined && a.largeCommunities.length > 0) {
    items.push([
      ATTR_LARGE_COMMUNITY,
      () =>
        writeAttr(w, O | T, ATTR_LARGE_COMMUNITY, (x) =>
          a.largeCommunities!.forEach(([g, l1, l2]) =>
            x
              .u32(checkU32(g, 'large community'))
              .u32(checkU32(l1, 'large community'))
              .u32(checkU32(l2, 'large community')),
          ),
        ),
    ]);
  }
  for (const o of a.other ?? []) items.push([o.type, () => writeAttr(w, o.flags, o.type, (x) => x.bytes(o.value))]);
  const types = new Set<number>();
  for (const [t] of items) {
    if (types.has(t)) throw new Error(`attribute ${t} given twice`);
    types.add(t);
  }
  items.sort((x, y) => x[0] - y[0]).forEach(([, write]) => write());
  w.patch16(alenAt, w.len - alenAt - 2);
  writePrefixes(w, u.nlri ?? [], AFI_IPV4);
  return finish(w);
}

/**
 * The End-of-RIB marker of an AFI/SAFI (RFC 4724 §2): for IPv4 unicast an UPDATE with no
 * withdrawn routes, attributes or NLRI; for any other family an UPDATE carrying only an empty
 * MP_UNREACH_NLRI of that family.
 */
export function encodeEndOfRib(afi: number, safi: number): Uint8Array {
  if (afi === AFI_IPV4 && safi === SAFI_UNICAST) return encodeUpdate({});
  return encodeUpdate({ attrs: { mpUnreach: { afi, safi, withdrawn: [], raw: EMPTY } } });
}

/** The AFI/SAFI whose End-of-RIB marker this UPDATE is (RFC 4724 §2), or undefined. */
export function endOfRib(u: UpdateMessage): { afi: number; safi: number } | undefined {
  if (u.withdrawn.length > 0 || u.nlri.length > 0) return undefined;
  const keys = Object.keys(u.attrs);
  if (keys.length === 0) return { afi: AFI_IPV4, safi: SAFI_UNICAST };
  const m = u.attrs.mpUnreach;
  if (keys.length !== 1 || !m || m.withdrawn.length > 0 || (m.raw !== undefined && m.raw.length > 0)) return undefined;
  return { afi: m.afi, safi: m.safi };
}

/** Encodes any message model (the inverse of decodeMessage). */
export function encodeMessage(m: BgpMessage, opts: CodecOptions = {}): Uint8Array {
  switch (m.type) {
    case 'open':
      return encodeOpen(m);
    case 'update':
      return encodeUpdate(m, opts);
    case 'notification':
      return encodeNotification(m.code, m.subcode, m.data);
    case 'keepalive':
      return encodeKeepalive();
    case 'route-refresh':
      return encodeRouteRefresh(m.afi, m.safi);
  }
}

/** The wire type byte of a whole message, or -1 when too short to have one. */
export function messageType(b: Uint8Array): number {
  return b.length >= BGP_HEADER_LEN ? b[18] : -1;
}

/** Hex text of bytes (for logs and fixtures). */
export function toHex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.length).toString('hex');
}
