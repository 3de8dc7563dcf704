// Public face of packet I/O: batches, ports (AF_PACKET, TUN, raw IP), the in-memory port for
// tests, namespace switching and the addon loader.
export * from './batch.js';
export * from './ports.js';
export { MemoryPort } from './memory-port.js';
export type { InjectedPacket } from './memory-port.js';
export { withNetns } from './netns.js';
export { loadNative, nativeCandidates, NATIVE_ABI_VERSION } from './native.js';
export type { NativeAddon } from './native.js';
