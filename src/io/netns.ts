// Runs code with the current thread inside another network namespace (setns affects only the
// calling thread), then switches back. Sockets and TUNs opened inside stay in that namespace.
import { closeSync, openSync } from 'node:fs';
import path from 'node:path';
import { loadNative } from './native.js';
import type { NativeAddon } from './native.js';

/**
 * Calls fn() inside namespace `ns` (a name under /var/run/netns, or a path such as
 * /proc/PID/ns/net) and restores the thread's namespace afterwards, also when fn throws.
 * fn must be synchronous: an await would let other code run inside the namespace.
 * Needs CAP_SYS_ADMIN; throws naming it.
 */
export function withNetns<T>(ns: string, fn: () => T, native: NativeAddon = loadNative()): T {
  const target = ns.includes('/') ? ns : path.join('/var/run/netns', ns);
  const home = openSync('/proc/thread-self/ns/net', 'r');
  try {
    const fd = openSync(target, 'r');
    try {
      native.setNetns(fd);
    } finally {
      closeSync(fd);
    }
    try {
      return fn();
    } finally {
      native.setNetns(home);
    }
  } finally {
    closeSync(home);
  }
}
