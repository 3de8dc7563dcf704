// Shell and process helpers for the side-by-side lab bench: commands in namespaces, bounded
// tools pinned to the client CPUs, long-running servers tracked by PID and stopped by PID, and
// the CPU and memory of a process read from /proc.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';

export class CommandError extends Error {}

/** Runs a command on the host; throws CommandError with its stderr. */
export function sh(cmd: string, args: string[], input?: string): string {
  try {
    return execFileSync(cmd, args, {
      encoding: 'utf8',
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      input,
      timeout: 60_000,
    });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new CommandError(`${cmd} ${args.join(' ')}: ${(e.stderr || e.message).trim()}`);
  }
}

/** Runs a command inside namespace `ns`. */
export function inNs(ns: string, cmd: string, args: string[], input?: string): string {
  return sh('ip', ['netns', 'exec', ns, cmd, ...args], input);
}

/** `sysctl -w` inside a namespace. */
export function sysctl(ns: string, key: string, value: string | number): void {
  inNs(ns, 'sysctl', ['-qw', `${key}=${value}`]);
}

export interface Bounded {
  status: number | null;
  stdout: string;
  stderr: string;
}

/**
 * A traffic tool in `ns`, bounded by `timeout` on top of its own count and time bounds
 * (`signal` first, SIGKILL 2 s later), optionally pinned with taskset. Never throws: the
 * caller reads status and output.
 */
export function bounded(
  ns: string,
  seconds: number,
  cpus: string | undefined,
  cmd: string,
  args: string[],
  signal = 'TERM',
): Bounded {
  const pin = cpus ? ['taskset', '-c', cpus] : [];
  const r = spawnSync(
    'ip',
    ['netns', 'exec', ns, 'timeout', '-s', signal, '-k', '2', String(Math.ceil(seconds)), ...pin, cmd, ...args],
    { encoding: 'utf8', maxBuffer: 1 << 24, timeout: (seconds + 10) * 1000 },
  );
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A long-running process this bench started (its own PID: `ip netns exec` execs the command). */
export interface Started {
  what: string;
  pid: number;
  log: string;
}

const started = new Map<number, Started>();

/** Every process the bench started and has not stopped yet (for teardown on failure). */
export function startedProcesses(): Started[] {
  return [...started.values()];
}

/** Starts `cmd` in `ns` in the background, output appended to `log`. */
export function startIn(ns: string, what: string, log: string, cmd: string, args: string[]): Started {
  const fd = openSync(log, 'a');
  const child = spawn('ip', ['netns', 'exec', ns, cmd, ...args], { stdio: ['ignore', fd, fd], detached: true });
  closeSync(fd);
  child.unref();
  if (child.pid === undefined) throw new Error(`could not start ${what} in ${ns}`);
  const s = { what, pid: child.pid, log };
  started.set(s.pid, s);
  return s;
}

/** Sends `signal` to the PID, waits up to `waitMs` for it to exit, then SIGKILLs it (by PID). */
export async function stopPid(pid: number, signal: NodeJS.Signals = 'SIGTERM', waitMs = 5000): Promise<void> {
  started.delete(pid);
  if (!pidAlive(pid)) return;
  try {
    process.kill(pid, signal);
  } catch {
    return;
  }
  const deadline = Date.now() + waitMs;
  while (pidRunning(pid) && Date.now() < deadline) await sleep(20);
  if (pidRunning(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
    const killDeadline = Date.now() + 2000;
    while (pidRunning(pid) && Date.now() < killDeadline) await sleep(20);
  }
}

/** Synchronous variant for exit handlers: SIGTERM, a short wait, SIGKILL. */
export function stopPidSync(pid: number): void {
  started.delete(pid);
  if (!pidAlive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + 2000;
  while (pidRunning(pid) && Date.now() < deadline) spawnSync('sleep', ['0.02']);
  if (pidRunning(pid))
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Zombie-aware: a child we never wait for stays a zombie; /proc says so. */
export function pidRunning(pid: number): boolean {
  if (!pidAlive(pid)) return false;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

let clkTck = 0;

/** utime + stime of a process, all threads, in seconds (undefined when it is gone). */
export function cpuSeconds(pid: number): number | undefined {
  if (clkTck === 0) clkTck = Number(sh('getconf', ['CLK_TCK']).trim()) || 100;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state is field 3, utime 14, stime 15 (proc(5)).
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / clkTck;
  } catch {
    return undefined;
  }
}

/** VmRSS and VmHWM of a process in MiB. */
export function memoryMiB(pid: number): { rss: number; hwm: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN);
    return { rss: kb('VmRSS') / 1024, hwm: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

/** The last `n` lines of a log file ('' when missing). */
export function logTail(file: string, n = 12): string {
  if (!existsSync(file)) return '';
  return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
}
