// The flow hash: a seeded 32-bit hash of a packet's 5-tuple (IPv4 or IPv6) that picks the
// Maglev slot. Hot-path functions take numbers and byte offsets and allocate nothing.
//
// MUST NOT change: every weir instance behind ECMP must map a flow to the same slot, also
// during a rolling upgrade, or flows that move between instances reach another backend.
// Pinned by the vectors in test/unit/flow-hash-vectors.test.ts.
//
// Construction: MurmurHash3's block step over 32-bit words (src/lb/hash.ts), starting from
// the cluster seed, closed by a tag word (family, field choice, byte count) and fmix32. Words
// a client can choose (source address, source port) are never consecutive. The seed keeps the
// tuple → backend map secret from outsiders; see docs/maglev.md for its limits.
import { ipv4ToU32, parseIp } from '../packet/index.js';
import { fmix32, murmur3String, murmurMix } from './hash.js';

/** Hash proto, source, destination and both ports. */
export const HASH_FIVE_TUPLE = 0;
/** Hash only the source address ("sticky by client": all of a client's flows, any protocol). */
export const HASH_SOURCE_ONLY = 1;
/** Hash proto, source, destination and destination port (a client's connections stay together). */
export const HASH_NO_SOURCE_PORT = 2;

export type HashFieldsName = 'five-tuple' | 'source-ip' | 'no-source-port';

const FIELD_CODES: Readonly<Record<HashFieldsName, number>> = {
  'five-tuple': HASH_FIVE_TUPLE,
  'source-ip': HASH_SOURCE_ONLY,
  'no-source-port': HASH_NO_SOURCE_PORT,
};

/** Maps the config's field-choice name to its code. Throws on an unknown name. */
export function hashFieldsCode(name: HashFieldsName): number {
  const code = Object.prototype.hasOwnProperty.call(FIELD_CODES, name) ? FIELD_CODES[name] : undefined;
  if (code === undefined) {
    throw new Error(`unknown hash fields "${name}": expected one of ${Object.keys(FIELD_CODES).join(', ')}`);
  }
  return code;
}

// Seed of the murmur3 pass that turns the config's hash_seed text into the 32-bit cluster seed.
const SEED_TEXT_SEED = 0x77656972; // "weir"

/** Derives the 32-bit cluster seed from the config's hash_seed string (UTF-8 bytes, murmur3). */
export function hashSeed(text: string): number {
  return murmur3String(text, SEED_TEXT_SEED);
}

// Final tag word: keeps v4 and v6 inputs and the three field choices apart even when their
// word streams happen to coincide. family << 16 | fields << 8 | bytes hashed.
const TAG_V4 = 4 << 16;
const TAG_V6 = 6 << 16;

/**
 * Hot path, IPv4. saddr/daddr: the address as a uint32 whose most significant byte is the
 * first octet (the value of the big-endian field). Ports 0..65535 (0 for port-less protocols).
 * An unknown `fields` code is treated as HASH_FIVE_TUPLE (the hot path never throws).
 * Words: saddr, daddr, sport << 16 | dport, proto (source-ip: saddr; no-source-port: saddr,
 * daddr, proto << 16 | dport). Returns uint32. Allocates nothing.
 */
export function flowHashV4(
  seed: number,
  fields: number,
  proto: number,
  saddr: number,
  daddr: number,
  sport: number,
  dport: number,
): number {
  let h = murmurMix(seed | 0, saddr | 0);
  if (fields === HASH_SOURCE_ONLY) return fmix32(h ^ (TAG_V4 | (HASH_SOURCE_ONLY << 8) | 4));
  h = murmurMix(h, daddr | 0);
  if (fields === HASH_NO_SOURCE_PORT) {
    h = murmurMix(h, ((proto & 0xff) << 16) | (dport & 0xffff));
    return fmix32(h ^ (TAG_V4 | (HASH_NO_SOURCE_PORT << 8) | 12));
  }
  h = murmurMix(h, ((sport & 0xffff) << 16) | (dport & 0xffff));
  h = murmurMix(h, proto & 0xff);
  return fmix32(h ^ (TAG_V4 | (HASH_FIVE_TUPLE << 8) | 16));
}

/** Big-endian 32-bit word at buf[i]. */
function word(buf: Uint8Array, i: number): number {
  return (buf[i] << 24) | (buf[i + 1] << 16) | (buf[i + 2] << 8) | buf[i + 3];
}

/**
 * Hot path, IPv6: the 16-byte source and destination addresses are read from buf at saddrOff
 * and daddrOff (the caller has checked the bounds). Same field rules as flowHashV4.
 * Source words are interleaved with destination words (or, for source-ip, with the seed) so no
 * two words a client can choose are consecutive: the known seed-independent MurmurHash3
 * collisions need two consecutive chosen blocks (docs/maglev.md).
 * Returns uint32. Allocates nothing.
 */
export function flowHashV6(
  seed: number,
  fields: number,
  proto: number,
  buf: Uint8Array,
  saddrOff: number,
  daddrOff: number,
  sport: number,
  dport: number,
): number {
  let h = seed | 0;
  if (fields === HASH_SOURCE_ONLY) {
    h = murmurMix(h, word(buf, saddrOff));
    for (let i = 4; i < 16; i += 4) h = murmurMix(murmurMix(h, seed | 0), word(buf, saddrOff + i));
    return fmix32(h ^ (TAG_V6 | (HASH_SOURCE_ONLY << 8) | 28));
  }
  for (let i = 0; i < 16; i += 4) h = murmurMix(murmurMix(h, word(buf, saddrOff + i)), word(buf, daddrOff + i));
  if (fields === HASH_NO_SOURCE_PORT) {
    h = murmurMix(h, ((proto & 0xff) << 16) | (dport & 0xffff));
    return fmix32(h ^ (TAG_V6 | (HASH_NO_SOURCE_PORT << 8) | 36));
  }
  h = murmurMix(h, ((sport & 0xffff) << 16) | (dport & 0xffff));
  h = murmurMix(h, proto & 0xff);
  return fmix32(h ^ (TAG_V6 | (HASH_FIVE_TUPLE << 8) | 40));
}

/**
 * Control plane (allocates; throws on malformed or mixed-family addresses): the flow hash of
 * textual addresses, either family. Equals flowHashV4 / flowHashV6 on the same tuple.
 */
export function flowHashOf(
  seed: number,
  fields: number,
  proto: number,
  src: string,
  sport: number,
  dst: string,
  dport: number,
): number {
  const s = parseIp(src);
  const d = parseIp(dst);
  if (s !== undefined && d !== undefined) {
    if (s.length !== d.length) {
      throw new Error(`flow hash: source ${src} and destination ${dst} are of different address families`);
    }
    if (s.length === 4) return flowHashV4(seed, fields, proto, ipv4ToU32(s), ipv4ToU32(d), sport, dport);
    const buf = new Uint8Array(32);
    buf.set(s, 0);
    buf.set(d, 16);
    return flowHashV6(seed, fields, proto, buf, 0, 16, sport, dport);
  }
  throw new Error(
    `flow hash: cannot parse ${s === undefined ? `source address "${src}"` : `destination address "${dst}"`}`,
  );
}
