// tshark as the outside judge of packets weir builds: frames go into a pcap and Wireshark's
// dissectors decode them with IP, TCP and UDP checksum validation on.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { writePcap } from '../../src/packet/index.js';
import { tempDir } from './tmp.js';

/** The skip reason for tests that need tshark, or undefined when it is installed. */
export const tsharkMissing: string | undefined = spawnSync('tshark', ['--version'], { stdio: 'ignore' }).error
  ? 'tshark is not installed (apt-get install tshark)'
  : undefined;

/** Checksum-status fields: 1 good, 0 bad, 2 not checked, 3 not present (Wireshark's proto_checksum_enum_e). */
export const CHECKSUM_FIELDS = [
  'ip.checksum.status',
  'tcp.checksum.status',
  'udp.checksum.status',
  'icmp.checksum.status',
  'icmpv6.checksum.status',
] as const;

/**
 * Decodes a capture file with IP, TCP and UDP checksum validation on: one row per frame, one
 * string per field, each field's occurrences (outer and inner headers) joined by ','.
 */
export function tsharkRows(file: string, fields: readonly string[]): string[][] {
  const r = spawnSync(
    'tshark',
    [
      '-r',
      file,
      '-n',
      '-o',
      'ip.check_checksum:TRUE',
      '-o',
      'tcp.check_checksum:TRUE',
      '-o',
      'udp.check_checksum:TRUE',
      '-o',
      'tcp.analyze_sequence_numbers:FALSE', // flows repeat across cases: no retransmission notes
      '-T',
      'fields',
      '-E',
      'occurrence=a',
      '-E',
      'aggregator=,',
      '-E',
      'separator=\t',
      ...fields.flatMap((f) => ['-e', f]),
    ],
    { encoding: 'utf8', timeout: 120_000, maxBuffer: 1 << 28 },
  );
  assert.equal(r.status, 0, `tshark failed: ${r.stderr}`);
  if (process.env.WEIR_TSHARK_DUMP) console.log(r.stdout); // to see what tshark made of each frame
  // Only the last newline goes: a row's leading fields may be empty.
  return r.stdout === ''
    ? []
    : r.stdout
        .replace(/\n$/, '')
        .split('\n')
        .map((l) => l.split('\t'));
}

/**
 * Decodes `frames` (all of link type `link`) and returns, per frame, each requested field by
 * name ('' when absent). Asserts tshark decoded every frame.
 */
export function tsharkFields(
  link: number,
  frames: readonly Uint8Array[],
  fields: readonly string[],
): Record<string, string>[] {
  const dir = tempDir('tshark');
  try {
    const file = dir.file('frames.pcap');
    writeFileSync(file, writePcap(link, frames));
    const rows = tsharkRows(file, fields);
    assert.equal(rows.length, frames.length, 'tshark decoded every frame');
    return rows.map((values) => Object.fromEntries(fields.map((f, k) => [f, values[k] ?? ''])));
  } finally {
    dir.remove();
  }
}

/** The checksum statuses tshark gave one protocol in a frame (outermost first). */
export function checksumStatuses(frame: Record<string, string>, proto: string): string[] {
  return (frame[`${proto}.checksum.status`] ?? '').split(',').filter((s) => s !== '');
}
