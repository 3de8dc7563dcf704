// Shared helpers for lab tests: decide whether namespaces can be built here, run commands in
// them, and remove every weir-* namespace a test made even when it fails.
import { execFileSync, spawnSync } from 'node:child_process';

/** Why lab tests cannot run here, or undefined when they can (root + iproute2). */
export function labSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'lab tests need root (network namespaces, AF_PACKET); run npm test as root';
  if (spawnSync('ip', ['-V']).status !== 0) return 'lab tests need iproute2 (`ip`)';
  return undefined;
}

/** Runs a command on the host, throwing with its stderr on failure. */
export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs a command inside namespace `ns`. */
export function inNs(ns: string, cmd: string, args: string[]): string {
  return sh('ip', ['netns', 'exec', ns, cmd, ...args]);
}

/** Creates a namespace (removing a stale one of the same name first), with lo up. */
export function addNs(ns: string): void {
  if (!ns.startsWith('weir-')) throw new Error(`lab namespaces are named weir-*: ${ns}`);
  spawnSync('ip', ['netns', 'del', ns]);
  sh('ip', ['netns', 'add', ns]);
  inNs(ns, 'ip', ['link', 'set', 'lo', 'up']);
}

/** Deletes namespaces, ignoring ones already gone. */
export function delNs(...names: string[]): void {
  for (const ns of names) spawnSync('ip', ['netns', 'del', ns]);
}
