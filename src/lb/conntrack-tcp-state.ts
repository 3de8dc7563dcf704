// Connection-table states and the TCP state machine a middlebox infers from packet flags.
// Pure functions over small integers; used by src/lb/conntrack.ts on the packet path.

/** Entry states. 0–7 are TCP; UDP, ICMP and OTHER are single-state protocols. Stored in 4 bits. */
export const CT_NONE = 0; // TCP entry created, no packet tracked yet
export const CT_SYN_SENT = 1;
export const CT_SYN_RECV = 2;
export const CT_ESTABLISHED = 3;
export const CT_FIN_WAIT = 4; // client sent the first FIN
export const CT_CLOSE_WAIT = 5; // server sent the first FIN (seen in NAT mode only)
export const CT_TIME_WAIT = 6; // both FINs seen (NAT) or the client ACKed after its FIN (DSR)
export const CT_CLOSED = 7; // RST seen
export const CT_UDP = 8;
export const CT_ICMP = 9; // ICMP and ICMPv6
export const CT_OTHER = 10; // any other IP protocol; uses the UDP timeout
// nat UDP (replies pass weir): a flow is a "stream" (CT_UDP, the long `udp` timeout) only once
// traffic went both ways more than once, as Linux conntrack marks UDP ASSURED; before that it
// holds its SNAT port only briefly (conntrack's unreplied/replied split, nf_conntrack_proto_udp.c).
export const CT_UDP_UNREPLIED = 11; // nat UDP, no reply yet
export const CT_UDP_REPLIED = 12; // nat UDP, replied but not both ways twice (DNS-shaped)
export const CT_NSTATES = 13;

export const CT_STATE_NAMES: readonly string[] = [
  'NONE',
  'SYN_SENT',
  'SYN_RECV',
  'ESTABLISHED',
  'FIN_WAIT',
  'CLOSE_WAIT',
  'TIME_WAIT',
  'CLOSED',
  'UDP',
  'ICMP',
  'OTHER',
  'UDP_UNREPLIED',
  'UDP_REPLIED',
];

/** TCP header flag bits (RFC 9293 §3.1). */
export const TH_FIN = 0x01;
export const TH_SYN = 0x02;
export const TH_RST = 0x04;
export const TH_ACK = 0x10;

/** Packet direction relative to the entry: ORIG = client → VIP, REPLY = backend → SNAT address. */
export const CT_DIR_ORIG = 0;
export const CT_DIR_REPLY = 1;

export { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from '../packet/constants.js';
import { IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP } from '../packet/constants.js';

/** The state a new entry of protocol `proto` starts in (`nat`: the entry has a reply key). */
export function ctInitialState(proto: number, nat = false): number {
  if (proto === IPPROTO_TCP) return CT_NONE;
  if (proto === IPPROTO_UDP) return nat ? CT_UDP_UNREPLIED : CT_UDP;
  if (proto === IPPROTO_ICMP || proto === IPPROTO_ICMPV6) return CT_ICMP;
  return CT_OTHER;
}

/** Half-open: a handshake that has not completed. Preferred victims when the table is full. */
export function ctIsHalfOpen(state: number): boolean {
  return state === CT_NONE || state === CT_SYN_SENT || state === CT_SYN_RECV;
}

/**
 * Next state of a nat UDP entry after a packet, given its packet counts with that packet
 * included: a reply makes it REPLIED; at least two packets each way make it a stream (CT_UDP).
 * A DNS query and its answer (one each way, or a retried query) never become a stream.
 */
export function udpNextState(state: number, pktsOrig: number, pktsReply: number): number {
  if (state !== CT_UDP_UNREPLIED && state !== CT_UDP_REPLIED) return state;
  if (pktsOrig >= 2 && pktsReply >= 2) return CT_UDP;
  return pktsReply > 0 ? CT_UDP_REPLIED : CT_UDP_UNREPLIED;
}

/**
 * Next TCP state after a packet with `flags` travelling in `dir`. `bothDirs` is true in NAT
 * mode, where replies pass through the balancer; in DSR modes only client packets are seen.
 * A simplification of the RFC 9293 §3.3.2 diagram as seen from the middle (Linux conntrack
 * and IPVS do the same kind of thing): no sequence-number checks, a RST closes from any
 * state, a SYN reopens a TIME_WAIT or CLOSED tuple, and a mid-stream packet on a fresh entry
 * (flow moved here from another instance by ECMP) is taken as ESTABLISHED.
 * Non-TCP states are returned unchanged.
 */
export function tcpNextState(state: number, dir: number, flags: number, bothDirs: boolean): number {
  if (state > CT_CLOSED) return state;
  if ((flags & TH_RST) !== 0) return CT_CLOSED;
  const syn = (flags & TH_SYN) !== 0;
  const ack = (flags & TH_ACK) !== 0;
  const fin = (flags & TH_FIN) !== 0;
  if (dir === CT_DIR_ORIG) {
    switch (state) {
      case CT_NONE:
        if (syn && !ack) return CT_SYN_SENT;
        if (fin) return CT_FIN_WAIT;
        return CT_ESTABLISHED;
      case CT_SYN_SENT:
        if (fin) return CT_FIN_WAIT;
        // DSR: the client's ACK of the handshake proves the backend answered.
        // NAT: an ACK must follow the SYN-ACK we would have seen, so it changes nothing.
        if (ack && !syn && !bothDirs) return CT_ESTABLISHED;
        return CT_SYN_SENT;
      case CT_SYN_RECV:
        if (fin) return CT_FIN_WAIT;
        if (ack && !syn) return CT_ESTABLISHED;
        return CT_SYN_RECV;
      case CT_ESTABLISHED:
        return fin ? CT_FIN_WAIT : CT_ESTABLISHED;
      case CT_FIN_WAIT:
        // DSR: after its FIN the client only ACKs; a pure ACK is taken as the last ACK.
        if (!bothDirs && ack && !fin && !syn) return CT_TIME_WAIT;
        return CT_FIN_WAIT;
      case CT_CLOSE_WAIT:
        return fin ? CT_TIME_WAIT : CT_CLOSE_WAIT;
      default: // TIME_WAIT, CLOSED: a new SYN reuses the tuple
        return syn && !ack ? CT_SYN_SENT : state;
    }
  }
  switch (state) {
    case CT_SYN_SENT:
      return syn ? CT_SYN_RECV : CT_SYN_SENT; // SYN-ACK, or SYN of a simultaneous open
    case CT_SYN_RECV:
    case CT_ESTABLISHED:
      return fin ? CT_CLOSE_WAIT : state;
    case CT_FIN_WAIT:
      return fin ? CT_TIME_WAIT : CT_FIN_WAIT;
    default: // NONE, CLOSE_WAIT, TIME_WAIT, CLOSED
      return state;
  }
}
