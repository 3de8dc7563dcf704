// `weir decap` arguments and host-setup commands, without root: bad arguments end with a
// message before anything is opened; the TUN and host commands are the exact ones documented.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatChanges, tunCommands } from '../../src/decap/index.js';

const main = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/cli/main.js');

function run(...args: string[]): { status: number | null; stderr: string; stdout: string } {
  return spawnSync(process.execPath, [main, 'decap', ...args], { encoding: 'utf8', timeout: 10_000 });
}

describe('weir decap command line', () => {
  const BAD: Array<[string[], RegExp]> = [
    [['--vip', 'nope'], /--vip <addr>' argument 'nope' is invalid\. "nope" is not an IPv4 or IPv6 address/],
    [['--local', '198.18.0.256'], /--local <addr>' argument '198\.18\.0\.256' is invalid/],
    [['--key', '4294967296'], /--key <n>' argument '4294967296' is invalid\. must be an integer from 0 to 4294967295/],
    [['--stats-interval', '-1'], /--stats-interval/],
    [['--batch', '0'], /--batch <n>' argument '0' is invalid/],
  ];
  for (const [args, re] of BAD) {
    test(`${args.join(' ')} is refused with a message naming the option`, () => {
      const r = run(...args);
      assert.notEqual(r.status, 0);
      assert.match(r.stderr, re);
      assert.equal(r.stdout, '', 'nothing started');
    });
  }
  test('the bad-argument table is not empty', () => assert.ok(BAD.length >= 5));

  test('--help lists every option', () => {
    const r = run('--help');
    assert.equal(r.status, 0);
    for (const o of ['--tun', '--vip', '--local', '--key', '--stats-interval', '--batch', '--setup'])
      assert.match(r.stdout, new RegExp(o));
  });

  test('the TUN is set to addrgenmode none, rp_filter 0 and up, in that order', () => {
    const text = formatChanges(tunCommands('weir-decap0'));
    assert.deepEqual(
      text.split('\n').map((l) => l.split('    #')[0]),
      [
        'ip link set dev weir-decap0 addrgenmode none',
        'sysctl -qw net.ipv4.conf.weir-decap0.rp_filter=0',
        'ip link set dev weir-decap0 up',
      ],
    );
  });
});
