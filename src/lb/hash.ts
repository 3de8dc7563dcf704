// 32-bit hash primitives shared by the flow hash, the Maglev table and its fingerprint:
// MurmurHash3 x86_32 (Austin Appleby's public-domain algorithm), written here from its spec.
//
// MUST NOT change. Every weir instance behind the same ECMP routers must compute bit-identical
// Maglev tables and flow hashes, also while a fleet is upgraded one instance at a time. Any
// change to these functions (constants, byte order, tail handling, finalizer) silently sends
// established flows to other backends on the instances running the new code. The golden tests
// (test/unit/maglev-golden.test.ts, test/fixtures/maglev/) and the published MurmurHash3
// vectors in test/unit/flow-hash-vectors.test.ts exist to fail CI on such a change.

const C1 = 0xcc9e2d51;
const C2 = 0x1b873593;

/** One MurmurHash3 body step: mixes the 32-bit word k into the state h. */
export function murmurMix(h: number, k: number): number {
  k = Math.imul(k, C1);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, C2);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

/** MurmurHash3's final avalanche (fmix32); returns uint32. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** MurmurHash3 x86_32 of bytes[off, off+len) with a 32-bit seed; returns uint32. No allocation. */
export function murmur3Bytes(bytes: Uint8Array, seed: number, off = 0, len = bytes.length - off): number {
  let h = seed | 0;
  const end4 = off + (len & ~3);
  let i = off;
  for (; i < end4; i += 4) {
    // Blocks are read little-endian, as the reference implementation does on x86.
    const k = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    h = murmurMix(h, k);
  }
  const tail = len & 3;
  if (tail !== 0) {
    let k = bytes[i];
    if (tail > 1) k ^= bytes[i + 1] << 8;
    if (tail > 2) k ^= bytes[i + 2] << 16;
    k = Math.imul(k, C1);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, C2);
    h ^= k;
  }
  return fmix32(h ^ len);
}

const utf8 = new TextEncoder();

/** MurmurHash3 x86_32 of the UTF-8 bytes of a string (control plane: allocates). */
export function murmur3String(text: string, seed: number): number {
  return murmur3Bytes(utf8.encode(text), seed);
}

/** UTF-8 bytes of a string (control plane). */
export function utf8Bytes(text: string): Uint8Array {
  return utf8.encode(text);
}
