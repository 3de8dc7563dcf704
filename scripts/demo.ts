// `npm run demo` (as root): builds the netns lab with weir running in two namespaces, sends a
// few requests to every lab VIP from the client and shows which backend answered and which
// client address it saw, prints lb1's connection table and status, then removes the lab (also
// on Ctrl-C or a failure).
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { VIPS } from '../netns-lab/topology.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const lab = path.join(root, 'netns-lab', 'lab');
const weirCli = path.join(root, 'dist', 'src', 'cli', 'main.js');

function say(text: string): void {
  process.stdout.write(`${text}\n`);
}

function inClient(args: string[], input?: string): string {
  const r = spawnSync('ip', ['netns', 'exec', 'weir-client', 'timeout', '5', ...args], { encoding: 'utf8', input });
  return r.status === 0 ? r.stdout.trim() : `FAILED (${(r.stderr || `exit ${r.status}`).trim().split('\n')[0]})`;
}

function weir(ns: string, args: string[]): string {
  return execFileSync(
    'ip',
    ['netns', 'exec', ns, process.execPath, weirCli, ...args, '-s', `/run/weir-lab/${ns.replace(/^weir-/, '')}.sock`],
    { encoding: 'utf8' },
  );
}

function down(): void {
  say('\n$ netns-lab/lab down');
  spawnSync(lab, ['down'], { stdio: 'inherit' });
}

function main(): number {
  if (process.getuid?.() !== 0) {
    console.error('demo: needs root (network namespaces, AF_PACKET): sudo npm run demo');
    return 1;
  }
  let cleaned = false;
  const cleanup = (): void => {
    if (!cleaned) {
      cleaned = true;
      down();
    }
  };
  process.on('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  process.on('SIGTERM', () => {
    cleanup();
    process.exit(143);
  });
  try {
    say('$ netns-lab/lab up   (client → router → ECMP → weir-lb1/weir-lb2 → be1..be3; weights 100/100/200)');
    execFileSync(lab, ['up'], { stdio: 'inherit' });
    say('\nEach line: VIP, then per request "backend (client address the backend saw)".');
    for (const v of VIPS.filter((x) => x.protocol === 'tcp' && x.port === 80)) {
      const url = v.address.includes(':') ? `http://[${v.address}]/` : `http://${v.address}/`;
      const answers = [1, 2, 3, 4, 5].map(() => {
        const out = inClient(['curl', '-s', '--max-time', '3', url]);
        const [backend, seen] = out.split(' ');
        return seen ? `${backend} (${seen})` : out;
      });
      say(`  ${v.name.padEnd(9)} ${v.mode.padEnd(7)} ${v.address.padEnd(16)} ${answers.join('  ')}`);
    }
    say('\nUDP echo through each UDP VIP:');
    for (const v of VIPS.filter((x) => x.protocol === 'udp')) {
      const target = v.address.includes(':') ? `UDP6:[${v.address}]:7` : `UDP4:${v.address}:7`;
      say(
        `  ${v.name.padEnd(9)} ${v.mode.padEnd(7)} ${v.address.padEnd(16)} ${inClient(['socat', '-T', '2', '-', target], 'hello\n')}`,
      );
    }
    say('\n$ weir conntrack list   (in weir-lb1)');
    process.stdout.write(weir('weir-lb1', ['conntrack', 'list', '--limit', '40']));
    say('\n$ weir status   (in weir-lb1)');
    process.stdout.write(weir('weir-lb1', ['status']));
    return 0;
  } catch (e) {
    console.error(`demo failed: ${(e as Error).message}`);
    return 1;
  } finally {
    cleanup();
  }
}

process.exitCode = main();
