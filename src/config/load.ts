// Config loading: YAML text → schema → normalization → cross checks → a typed WeirConfig, or
// every problem at once, each with its YAML path, line and column.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import YAML, { isMap, isSeq, isScalar, isPair, LineCounter, type Node } from 'yaml';
import { z } from 'zod';
import { canonicalAddress, hostPort } from './address.js';
import { crossChecks, type CheckInput, type ConfigPath, type RawIssue } from './checks.js';
import { readPasswordFile } from './password-file.js';
import {
  bgpSchema,
  configSchema,
  instanceSchema,
  ipAddress,
  vipSchema,
  type VipConfig,
  type WeirConfig,
} from './schema.js';

export interface ConfigIssue {
  path: ConfigPath;
  /** "vips[1].backends[0].weight" ("(file)" for whole-file problems). */
  where: string;
  message: string;
  line?: number;
  col?: number;
}

export type ParseResult = { ok: true; config: WeirConfig } | { ok: false; issues: ConfigIssue[] };

/** Thrown by loadConfigFile; `issues` holds every problem, `message` all of them formatted. */
export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly issues: ConfigIssue[],
  ) {
    super(`${file}: ${issues.length} problem${issues.length === 1 ? '' : 's'}\n${issues.map(formatIssue).join('\n')}`);
    this.name = 'ConfigError';
  }
}

export function formatIssue(i: ConfigIssue): string {
  const pos = i.line !== undefined ? ` (line ${i.line}, col ${i.col})` : '';
  return `${i.where}: ${i.message}${pos}`;
}

export function pathText(path: ConfigPath): string {
  let s = '';
  for (const seg of path) s += typeof seg === 'number' ? `[${seg}]` : s === '' ? seg : `.${seg}`;
  return s === '' ? '(top level)' : s;
}

/**
 * Reads and validates a config file; throws ConfigError listing every problem. With a cache
 * (the daemon's, kept between reloads), VIPs whose YAML text is unchanged since the last good
 * load are taken from it instead of being parsed and validated again (parseConfigCached).
 */
export function loadConfigFile(file: string, cache?: ConfigCache): WeirConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, [{ path: [], where: '(file)', message: `cannot read: ${(e as Error).message}` }]);
  }
  const opts = { baseDir: path.dirname(path.resolve(file)) };
  const fast = cache ? parseConfigCached(text, opts, cache) : undefined;
  if (fast) return fast;
  const r = parseConfigText(text, opts);
  if (!r.ok) throw new ConfigError(file, r.issues);
  return r.config;
}

/**
 * The VIPs of the last good load, by a hash of each one's YAML text (a hash, not the text: a
 * slice of the file would keep that whole file alive for as long as the entry lives).
 */
export class ConfigCache {
  vips = new Map<string, VipConfig>();
}

/**
 * The `vips:` block of a config split into the text of each item, and the file with that block
 * emptied; undefined when the file is not of the plain shape this split is sure about. Each
 * item is then parsed on its own, so its text must mean the same alone as in the file: no
 * aliases (an item could refer to another's anchor), no directives or document markers, no
 * tabs, `vips:` once at column 0 with a block sequence under it whose items all start at one
 * indentation, and no other line at or left of it but comments (YAML 1.2 §8.2.1: an item's
 * content is indented more than its "-").
 */
export function splitVips(text: string): { rest: string; items: string[] } | undefined {
  if (/[*\t]/.test(text) || /^(%|---|\.\.\.)/m.test(text)) return undefined;
  const lines = text.split('\n');
  let start = -1;
  for (let i = 0; i < lines.length; i++) {
    if (!/^vips\s*:/.test(lines[i])) continue;
    if (start >= 0 || !/^vips\s*:\s*(#.*)?\r?$/.test(lines[i])) return undefined;
    start = i;
  }
  if (start < 0) return undefined;
  const items: string[] = [];
  let cur: string[] | null = null;
  let ind = -1;
  let end = lines.length;
  for (let i = start + 1; i < lines.length; i++) {
    const l = lines[i];
    const t = l.trimStart();
    if (t === '' || t === '\r' || t.startsWith('#')) {
      cur?.push(l);
      continue;
    }
    const n = l.length - t.length;
    const item = /^-( |\r?$)/.test(t);
    if (n === 0 && !item) {
      end = i;
      break;
    }
    if (ind < 0 && item) ind = n;
    if (item && n === ind) {
      if (cur) items.push(cur.join('\n'));
      cur = [l];
    } else if (n > ind && cur) cur.push(l);
    else return undefined;
  }
  if (cur) items.push(cur.join('\n'));
  if (items.length === 0) return undefined;
  // "vips: []" keeps the key where it was, so the rest parses with the same keys in the same order.
  const rest = [...lines.slice(0, start), 'vips: []', ...lines.slice(end)].join('\n');
  return { rest, items };
}

/** A YAML text's value, or undefined when it has errors (the caller then takes the full path). */
function yamlValue(text: string): unknown {
  const doc = YAML.parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  return doc.errors.length > 0 ? undefined : (doc.toJS() ?? null);
}

/**
 * parseConfigText for a reload: parses and validates only the VIPs whose text is not in the
 * cache, takes the others from it, runs every cross check on the whole, and refreshes the
 * cache. Returns undefined for anything but a config that passes (an error, or a file splitVips
 * does not take): the caller then runs parseConfigText, so every problem is reported exactly as
 * `weir validate` reports it.
 */
export function parseConfigCached(text: string, opts: ParseOptions, cache: ConfigCache): WeirConfig | undefined {
  const split = splitVips(text);
  if (!split) return undefined;
  const rest = yamlValue(split.rest) as Record<string, unknown> | null | undefined;
  if (!rest || typeof rest !== 'object' || !Array.isArray(rest.vips) || rest.vips.length > 0) return undefined;
  const keys = split.items.map((t) => createHash('sha256').update(t).digest('base64'));
  const vips: (VipConfig | undefined)[] = [];
  const fresh: { index: number; raw: unknown }[] = [];
  const unused = new Map(cache.vips);
  for (let i = 0; i < keys.length; i++) {
    const hit = unused.get(keys[i]);
    unused.delete(keys[i]); // each entry once: two VIPs never share an object
    if (hit) {
      vips.push(hit);
      continue;
    }
    const raw = yamlValue(split.items[i]);
    if (!Array.isArray(raw) || raw.length !== 1) return undefined;
    vips.push(undefined);
    fresh.push({ index: i, raw: raw[0] });
  }
  const parsed = configSchema.safeParse({ ...rest, vips: fresh.map((f) => f.raw) });
  if (!parsed.success) return undefined;
  const config = normalizeTop(parsed.data);
  config.vips.forEach((v, k) => (vips[fresh[k].index] = normalizeVip(v)));
  config.vips = vips as VipConfig[];
  if (checkParsed(config, opts).length > 0) return undefined;
  cache.vips = new Map(keys.map((k, i) => [k, config.vips[i]]));
  return config;
}

/** The cross checks and file checks of a config that passed the schema. */
function checkParsed(config: WeirConfig, opts: ParseOptions): RawIssue[] {
  const b = config.bgp;
  const raws = crossChecks({
    instance: config.instance,
    vips: config.vips.map((vip, index) => ({ index, vip })),
    bgp: {
      ...b,
      hasLocalAs: b.local_as !== undefined,
      peers: b.peers.map((p, index) => ({
        index,
        address: p.address,
        password: p.password !== undefined,
        passwordFile: p.password_file !== undefined,
      })),
    },
  });
  return raws.length === 0 && opts.baseDir !== undefined ? fileChecks(config, opts.baseDir) : raws;
}

export interface ParseOptions {
  /**
   * The config file's directory: files the config names (bgp.peers[].password_file) are
   * resolved against it, checked, and rewritten as absolute paths. Without it they are not read.
   */
  baseDir?: string;
}

/** Checks of files the config points at; returns issues, and makes their paths absolute. */
function fileChecks(cfg: WeirConfig, baseDir: string): RawIssue[] {
  const out: RawIssue[] = [];
  cfg.bgp.peers.forEach((p, i) => {
    if (p.password_file === undefined) return;
    const abs = path.resolve(baseDir, p.password_file);
    try {
      readPasswordFile(abs);
      p.password_file = abs;
    } catch (e) {
      out.push({ path: ['bgp', 'peers', i, 'password_file'], message: (e as Error).message });
    }
  });
  return out;
}

export function parseConfigText(text: string, opts: ParseOptions = {}): ParseResult {
  const lineCounter = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      ok: false,
      issues: doc.errors.map((e) => ({
        path: [],
        where: '(yaml)',
        message: e.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, ''),
        ...lineCounter.linePos(e.pos[0]),
      })),
    };
  }
  const raw: unknown = doc.toJS() ?? {};
  const locate = (i: RawIssue): ConfigIssue => {
    const pos = positionOf(doc.contents, i.path, i.atKey === true, lineCounter);
    return { path: i.path, where: pathText(i.path), message: i.message, ...pos };
  };

  const parsed = configSchema.safeParse(raw);
  let raws: RawIssue[];
  if (parsed.success) {
    const config = normalize(parsed.data);
    raws = checkParsed(config, opts);
    if (raws.length === 0) return { ok: true, config };
  } else {
    const schemaIssues = zodIssues(parsed.error.issues, raw);
    // A cross check about a leaf the schema already rejected would only repeat it.
    const rejected = new Set(schemaIssues.map((i) => pathText(i.path)));
    const cross = crossChecks(bestEffort(raw, schemaIssues)).filter((i) => !rejected.has(pathText(i.path)));
    raws = [...schemaIssues, ...cross];
  }
  const issues = dedupe(raws.map(locate));
  issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0) || (a.col ?? 0) - (b.col ?? 0));
  return { ok: false, issues };
}

/** Fills derived defaults and canonical spellings so equal configs compare equal. */
export function normalize(cfg: WeirConfig): WeirConfig {
  normalizeTop(cfg);
  cfg.vips = cfg.vips.map(normalizeVip);
  return cfg;
}

/** normalize but the VIPs. */
function normalizeTop(cfg: WeirConfig): WeirConfig {
  cfg.instance.addresses = cfg.instance.addresses.map(canonicalAddress);
  cfg.instance.snat_addresses = cfg.instance.snat_addresses.map(canonicalAddress);
  for (const p of cfg.bgp.peers) p.address = canonicalAddress(p.address);
  return cfg;
}

function normalizeVip(vip: VipConfig): VipConfig {
  vip.address = canonicalAddress(vip.address);
  vip.backends = vip.backends.map((b) => {
    const address = canonicalAddress(b.address);
    const port = b.port ?? (vip.port === 'all' ? undefined : vip.port);
    // Rebuilt so the normalized output lists name, address, port, weight in that order.
    return {
      name: b.name ?? hostPort(address, port ?? vip.port),
      address,
      ...(port !== undefined ? { port } : {}),
      weight: b.weight,
      ...(b.mac !== undefined ? { mac: b.mac.toLowerCase() } : {}),
      // Per-backend health overrides (source_address, path, …) must survive normalization.
      ...(b.health_check !== undefined ? { health_check: b.health_check } : {}),
    };
  });
  return vip;
}

/** Keys whose bad value would make a stand-in default mislead the cross checks. */
const NO_STAND_IN = new Set(['address', 'port', 'protocol', 'mode', 'name', 'type']);

/**
 * Parses `value` with `schema`; if that fails only on leaves whose default can stand in (a
 * weight, a table size, a timer), parses again with those leaves removed. Undefined otherwise.
 */
function withStandIns<S extends z.ZodType>(schema: S, value: unknown, bad: ConfigPath[]): z.output<S> | undefined {
  const r = schema.safeParse(value);
  if (r.success) return r.data;
  if (bad.length === 0 || bad.some((p) => p.length === 0 || NO_STAND_IN.has(String(p[p.length - 1])))) return undefined;
  const copy = structuredClone(value);
  for (const p of bad) {
    const parent = valueAt(copy, p.slice(0, -1));
    if (parent && typeof parent === 'object') Reflect.deleteProperty(parent, p[p.length - 1]);
  }
  const again = schema.safeParse(copy);
  return again.success ? again.data : undefined;
}

/**
 * Cross checks still run on the parts that pass the schema (with stand-ins for bad leaves), so
 * one run reports everything; a VIP whose identity fields are bad is left to the schema errors.
 */
function bestEffort(raw: unknown, issues: RawIssue[]): CheckInput {
  const obj = (raw && typeof raw === 'object' ? raw : {}) as Record<string, unknown>;
  const under = (...prefix: (string | number)[]) =>
    issues.filter((i) => prefix.every((seg, k) => i.path[k] === seg)).map((i) => i.path.slice(prefix.length));
  const instObj = (obj.instance && typeof obj.instance === 'object' ? obj.instance : {}) as Record<string, unknown>;
  const addrs = z.array(ipAddress).default([]).safeParse(instObj.addresses);
  const ifaces = z.array(z.string()).default([]).safeParse(instObj.interfaces);
  const bgpObj = (obj.bgp && typeof obj.bgp === 'object' ? obj.bgp : {}) as Record<string, unknown>;
  const ok = <S extends z.ZodType>(schema: S, v: unknown): z.output<S> | undefined => {
    const r = schema.safeParse(v);
    return r.success ? r.data : undefined;
  };
  const peers = Array.isArray(bgpObj.peers) ? (bgpObj.peers as unknown[]) : [];
  const bgp: CheckInput['bgp'] = {
    enabled: ok(bgpSchema.shape.enabled, bgpObj.enabled),
    hasLocalAs: bgpObj.local_as !== undefined,
    router_id: ok(ipAddress, bgpObj.router_id),
    hold_time: ok(bgpSchema.shape.hold_time, bgpObj.hold_time),
    peers: peers.flatMap((p, index) => {
      const o = p as Record<string, unknown> | null;
      const address = ok(ipAddress, o?.address);
      return address === undefined
        ? []
        : [
            {
              index,
              address: canonicalAddress(address),
              password: o?.password !== undefined,
              passwordFile: o?.password_file !== undefined,
            },
          ];
    }),
  };
  const vips: CheckInput['vips'] = [];
  if (Array.isArray(obj.vips)) {
    obj.vips.forEach((v, index) => {
      const vip = withStandIns(vipSchema, v, under('vips', index));
      if (vip) vips.push({ index, vip: normalizeVip(vip) });
    });
  }
  return {
    instance:
      addrs.success && ifaces.success
        ? {
            addresses: addrs.data.map(canonicalAddress),
            interfaces: ifaces.data,
            io: ok(instanceSchema.shape.io, instObj.io),
          }
        : undefined,
    vips,
    bgp,
  };
}

function valueAt(raw: unknown, path: ConfigPath): unknown {
  let v = raw;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a map';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint' || v === undefined) return String(v);
  return typeof v; // a symbol or a function: not something YAML produces
}

function zodIssues(issues: readonly z.core.$ZodIssue[], raw: unknown): RawIssue[] {
  const out: RawIssue[] = [];
  for (const iss of issues) {
    const path = iss.path.filter((p): p is string | number => typeof p !== 'symbol');
    if (iss.code === 'unrecognized_keys') {
      for (const key of iss.keys) {
        const allowed = knownKeysAt(path);
        const hint = suggest(key, allowed);
        out.push({
          path: [...path, key],
          atKey: true,
          message: `unknown key${hint ? ` (did you mean "${hint}"?)` : ''}${allowed.length && !hint ? `; allowed: ${allowed.join(', ')}` : ''}`,
        });
      }
      continue;
    }
    const value = valueAt(raw, path);
    let message = iss.message;
    if (message.startsWith('Invalid input') && value === undefined) message = 'is required';
    const scalar = value === null || typeof value !== 'object';
    if (
      value !== undefined &&
      message !== 'is required' &&
      !/, got /.test(message) &&
      (scalar || iss.code === 'invalid_type')
    ) {
      message += `, got ${describe(value)}`;
    }
    out.push({ path, message });
  }
  return out;
}

/** Keys the schema allows at a path, for "did you mean" hints. */
function knownKeysAt(path: ConfigPath): string[] {
  let s: unknown = configSchema;
  for (const seg of path) {
    s = unwrap(s);
    if (typeof seg === 'number') s = (s as { element?: unknown }).element;
    else s = (s as { shape?: Record<string, unknown> }).shape?.[seg];
    if (s === undefined) return [];
  }
  s = unwrap(s);
  const shape = (s as { shape?: Record<string, unknown> }).shape;
  return shape ? Object.keys(shape) : [];
}

function unwrap(s: unknown): unknown {
  let cur = s as { def?: { innerType?: unknown } };
  for (let i = 0; i < 8; i++) {
    const inner = cur?.def?.innerType;
    if (!inner) break;
    cur = inner;
  }
  return cur;
}

function suggest(key: string, allowed: string[]): string | undefined {
  let best: string | undefined;
  let bestD = 3;
  for (const a of allowed) {
    const d = editDistance(key.toLowerCase(), a);
    if (d < bestD) {
      bestD = d;
      best = a;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = tmp;
    }
  }
  return prev[b.length];
}

/** Line/column of the node at `path` (or its key); the nearest existing ancestor when absent. */
function positionOf(root: unknown, path: ConfigPath, atKey: boolean, lc: LineCounter): { line?: number; col?: number } {
  let node = root as Node | null | undefined;
  let found: Node | null | undefined = node;
  for (let i = 0; i < path.length && node; i++) {
    const seg = path[i];
    let next: Node | null | undefined;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && (isScalar(p.key) ? p.key.value : p.key) === seg);
      if (pair)
        next =
          i === path.length - 1 && atKey ? (pair.key as Node) : ((pair.value as Node | null) ?? (pair.key as Node));
    } else if (isSeq(node) && typeof seg === 'number') {
      next = node.items[seg] as Node | undefined;
    }
    if (!next) break;
    node = next;
    found = next;
  }
  const start = found?.range?.[0];
  if (start === undefined) return {};
  const { line, col } = lc.linePos(start);
  return { line, col };
}

function dedupe(issues: ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    const k = formatIssue(i);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
