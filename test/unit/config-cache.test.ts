// The reload's parse cache: VIPs whose YAML text is unchanged are taken from the last good load,
// and the result is always the config a full parse gives; anything else takes the full parse.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { PACKAGE_ROOT } from '../../src/version.js';
import {
  ConfigCache,
  ConfigError,
  formatIssue,
  loadConfigFile,
  parseConfigCached,
  parseConfigText,
  splitVips,
} from '../../src/config/load.js';
import type { WeirConfig } from '../../src/config/schema.js';
import { tempDir } from '../helpers/tmp.js';

const dir = path.join(PACKAGE_ROOT, 'test', 'fixtures', 'configs');
const corpus = (kind: 'good' | 'bad') =>
  readdirSync(path.join(dir, kind))
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => ({ f, text: readFileSync(path.join(dir, kind, f), 'utf8') }));

function full(text: string): WeirConfig {
  const r = parseConfigText(text);
  if (!r.ok) assert.fail(r.issues.map(formatIssue).join('\n'));
  return r.config;
}

/** A config of n VIPs written the ways people write YAML: comments, flow maps over lines, block scalars. */
function generated(n: number, weight = (_v: number) => 100, name = (v: number) => `web-${v}`): string {
  const lines = ['# generated', 'instance:', '  addresses: [198.18.0.1]', 'vips:'];
  for (let v = 0; v < n; v++) {
    lines.push(
      `  # VIP ${v}`,
      `  - name: ${name(v)}`,
      `    address: 198.18.${10 + (v >> 8)}.${v & 255}`,
      '    port: 80',
      '    health_check:',
      '      type: http',
      `      path: /healthz-${v}`,
      '    backends:',
      `      - { address: 198.18.200.${(v % 200) + 1}, weight: ${weight(v)} }`,
      '      - address: 198.18.201.1',
      '        # a comment inside the item',
      '',
      `      - {address: 198.18.202.1,`,
      `         weight: 7}`,
    );
  }
  lines.push('conntrack:', '  capacity: 4096', '');
  return lines.join('\n');
}

describe('the cached parse gives what the full parse gives', () => {
  const good = corpus('good');
  const example = readFileSync(path.join(PACKAGE_ROOT, 'examples', 'weir.yaml'), 'utf8');
  const cases = [...good, { f: 'examples/weir.yaml', text: example }, { f: 'generated', text: generated(40) }];
  test('the good corpus is not empty, and the generated config takes the split', () => {
    assert.ok(good.length >= 3);
    assert.equal(splitVips(generated(40))?.items.length, 40);
  });
  for (const { f, text } of cases) {
    test(f, () => {
      const cached = parseConfigCached(text, {}, new ConfigCache());
      // Only a file with no VIP list is refused the split; every other case must take it, so a
      // split that stopped working could not pass here unnoticed.
      if (f === 'empty.yaml') {
        assert.equal(splitVips(text), undefined);
        assert.equal(cached, undefined);
      } else {
        assert.notEqual(splitVips(text), undefined, `${f} takes the split`);
        assert.deepEqual(cached, full(text));
      }
    });
  }
});

test('every bad config is left to the full parse (so its messages are the same as weir validate)', () => {
  const bad = corpus('bad');
  assert.ok(bad.length >= 15);
  // A cache primed with a good config: the bad one's problems must not be hidden by it.
  const cache = new ConfigCache();
  for (const { f, text } of bad) {
    parseConfigCached(corpus('good')[1].text, {}, cache);
    assert.equal(parseConfigCached(text, {}, cache), undefined, f);
  }
});

test('a reload reparses only the VIP whose text changed; the others are the very same objects', () => {
  const cache = new ConfigCache();
  const a = parseConfigCached(generated(50), {}, cache);
  assert.ok(a);
  assert.equal(cache.vips.size, 50);
  const text = generated(50, (v) => (v === 17 ? 150 : 100));
  const b = parseConfigCached(text, {}, cache);
  assert.ok(b);
  assert.deepEqual(b, full(text));
  assert.equal(b.vips[17].backends[0].weight, 150);
  assert.notEqual(b.vips[17], a.vips[17]);
  const same = b.vips.filter((v, i) => v === a.vips[i]).length;
  assert.equal(same, 49);
  assert.equal(cache.vips.size, 50, 'entries of the old text are dropped');
});

test('VIPs are matched by text, not position: reordered VIPs come from the cache in the new order', () => {
  const cache = new ConfigCache();
  const a = parseConfigCached(generated(6), {}, cache)!;
  const parts = splitVips(generated(6))!;
  const reordered = `instance:\n  addresses: [198.18.0.1]\nvips:\n${[...parts.items].reverse().join('\n')}\nconntrack:\n  capacity: 4096\n`;
  const b = parseConfigCached(reordered, {}, cache);
  assert.ok(b);
  assert.deepEqual(
    b.vips.map((v) => v.name),
    a.vips.map((v) => v.name).reverse(),
  );
  assert.ok(b.vips.every((v) => a.vips.includes(v)));
  assert.deepEqual(b, full(reordered));
});

test('shapes the split is not sure about are refused', () => {
  const base = generated(3);
  const refused: Record<string, string> = {
    alias: base.replace('path: /healthz-1', 'path: &p /healthz-1').replace('path: /healthz-2', 'path: *p'),
    'document marker': `---\n${base}`,
    directive: `%YAML 1.2\n---\n${base}`,
    'vips twice': `${base}vips:\n  - { name: x, address: 198.18.9.9, port: 80, backends: [{ address: 198.18.9.10 }] }\n`,
    tab: base.replace('    port: 80', '\tport: 80'),
    'uneven items': base.replace('  - name: web-1', ' - name: web-1'),
    'flow list': 'vips: [{ name: a, address: 198.18.9.9, port: 80, backends: [{ address: 198.18.9.10 }] }]\n',
    'vips inline': 'vips: []\n',
    'no vips': 'instance:\n  addresses: [198.18.0.1]\n',
  };
  for (const [what, text] of Object.entries(refused)) {
    assert.equal(splitVips(text), undefined, what);
    assert.equal(parseConfigCached(text, {}, new ConfigCache()), undefined, what);
  }
});

test('a reload that breaks a rule across VIPs reports exactly what weir validate reports, and keeps the cache', () => {
  const d = tempDir('cfgcache');
  try {
    const file = path.join(d.path, 'weir.yaml');
    const cache = new ConfigCache();
    writeFileSync(file, generated(20));
    const a = loadConfigFile(file, cache);
    const before = new Map(cache.vips);
    // VIP 12 takes VIP 3's name: each item is valid alone, the duplicate is a cross check.
    writeFileSync(
      file,
      generated(
        20,
        () => 100,
        (v) => (v === 12 ? 'web-3' : `web-${v}`),
      ),
    );
    const issues = (f: () => unknown): string[] => {
      try {
        f();
      } catch (e) {
        assert.ok(e instanceof ConfigError);
        return e.issues.map(formatIssue);
      }
      return assert.fail('no ConfigError');
    };
    const withCache = issues(() => loadConfigFile(file, cache));
    assert.deepEqual(
      withCache,
      issues(() => loadConfigFile(file)),
    );
    assert.match(withCache.join('\n'), /duplicate VIP name "web-3"/);
    assert.deepEqual(cache.vips, before);
    // Back to the good file: every VIP from the cache.
    writeFileSync(file, generated(20));
    const b = loadConfigFile(file, cache);
    assert.ok(b.vips.every((v, i) => v === a.vips[i]));
  } finally {
    d.remove();
  }
});
