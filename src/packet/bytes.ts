// Byte copy helper shared by the builders: memmove within one buffer without allocating.

// One-entry cache of a whole-buffer view, so views over the same ArrayBuffer (e.g. rx and tx
// slabs carved from one SharedArrayBuffer) copy with copyWithin and allocate nothing.
let cachedBuffer: ArrayBufferLike | undefined;
let cachedView: Uint8Array = new Uint8Array(0);

/**
 * Copies src[srcOff, srcOff+len) to dst[dstOff...]; overlapping ranges are safe. Views of the
 * same ArrayBuffer use copyWithin (no allocation; the first call per buffer makes one view);
 * across buffers short copies are a byte loop and longer ones allocate one subarray view.
 */
export function copyBytes(dst: Uint8Array, dstOff: number, src: Uint8Array, srcOff: number, len: number): void {
  if (dst === src) {
    dst.copyWithin(dstOff, srcOff, srcOff + len);
  } else if (dst.buffer === src.buffer) {
    if (cachedBuffer !== dst.buffer) {
      cachedBuffer = dst.buffer;
      cachedView = new Uint8Array(dst.buffer);
    }
    const d = dst.byteOffset + dstOff;
    const s = src.byteOffset + srcOff;
    cachedView.copyWithin(d, s, s + len);
  } else if (len <= 64) {
    for (let i = 0; i < len; i++) dst[dstOff + i] = src[srcOff + i];
  } else {
    dst.set(src.subarray(srcOff, srcOff + len), dstOff);
  }
}
