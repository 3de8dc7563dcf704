// A weir BGP speaker in a child process, so a lab test can run it inside a network namespace
// (`ip netns exec weir-bgp-s node bgp-speaker-child.js '<SessionOptions JSON>'`).
// stdin: JSON lines {op:'announce',prefix,attrs} | {op:'withdraw',prefix} | {op:'shutdown',...}.
// stdout: JSON lines {ev:'state',state} | {ev:'rx',type,hex} | {ev:'tx',hex} | {ev:'down',...} | {ev:'ack',id}.
// SIGTERM runs the graceful shutdown (GRACEFUL_SHUTDOWN community, wait, withdraw, Cease), then exits.
import { createInterface } from 'node:readline';
import { BgpSession, type SessionOptions } from '../../src/bgp/session.js';
import { toHex } from '../../src/bgp/message.js';

const opts = JSON.parse(process.argv[2] ?? '{}') as SessionOptions & { sigtermWaitMs?: number };
const out = (o: object): void => {
  process.stdout.write(JSON.stringify(o) + '\n');
};

const s = new BgpSession(opts);
s.on('state', (state: string) => out({ ev: 'state', state }));
s.on('message', (frame: Uint8Array, m: { type: string }) => out({ ev: 'rx', type: m.type, hex: toHex(frame) }));
s.on('sent', (frame: Uint8Array) => out({ ev: 'tx', hex: toHex(frame) }));
s.on('down', (info: object) => out({ ev: 'down', info }));

let exiting = false;
async function exitGracefully(): Promise<void> {
  if (exiting) return;
  exiting = true;
  await s.shutdown({ gracefulShutdownCommunity: true, waitMs: opts.sigtermWaitMs ?? 200 });
  out({ ev: 'exit' });
  process.exit(0);
}
process.on('SIGTERM', () => void exitGracefully());

const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  const c = JSON.parse(line) as {
    op: string;
    id?: number;
    prefix?: string;
    attrs?: object;
    graceful?: boolean;
    waitMs?: number;
  };
  if (c.op === 'announce') s.announce(c.prefix!, c.attrs ?? {});
  else if (c.op === 'withdraw') s.withdraw(c.prefix!);
  else if (c.op === 'shutdown')
    void s
      .shutdown({ gracefulShutdownCommunity: !!c.graceful, waitMs: c.waitMs ?? 0 })
      .then(() => out({ ev: 'stopped' }));
  out({ ev: 'ack', id: c.id });
});
rl.on('close', () => void exitGracefully());

s.start();
