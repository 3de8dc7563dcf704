// `weir simulate`: the ECMP + Maglev what-if model (src/sim) from the command line. Needs no
// daemon; with -c it models one VIP of a config, otherwise B synthetic backends be1..beB.
import { Command, InvalidArgumentError } from 'commander';
import { parseSimEvent, type SimEvent } from '../sim/events.js';
import { simulate, type SimBackend, type SimResult, type SimSpec } from '../sim/simulate.js';
import { percent, table } from './format.js';

interface SimulateOpts {
  config?: string;
  vip?: string;
  routers: number;
  instances: number;
  backends: number;
  flows: number;
  seed: number;
  event: SimEvent[];
  view: { instance: number; backends: SimBackend[] }[];
  json?: boolean;
}

function intArg(min: number, max: number) {
  return (text: string): number => {
    if (!/^[0-9]+$/.test(text) || Number(text) < min || Number(text) > max) {
      throw new InvalidArgumentError(`must be an integer from ${min} to ${max}`);
    }
    return Number(text);
  };
}

function collectEvent(text: string, prev: SimEvent[]): SimEvent[] {
  try {
    return [...prev, parseSimEvent(text)];
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

/** "N=ID[@W],ID[@W],...": instance N's own (stale) backend set; weight 100 unless "@W". */
export function parseView(text: string): { instance: number; backends: SimBackend[] } {
  const eq = text.indexOf('=');
  const inst = text.slice(0, eq);
  if (eq < 0 || !/^(0|[1-9][0-9]{0,3})$/.test(inst))
    throw new Error(`view "${text}" is not INSTANCE=ID[@WEIGHT],ID...`);
  const list = text.slice(eq + 1);
  const backends =
    list === ''
      ? []
      : list.split(',').map((item) => {
          const at = item.lastIndexOf('@');
          const id = at < 0 ? item : item.slice(0, at);
          const w = at < 0 ? '100' : item.slice(at + 1);
          if (id === '' || !/^(0|[1-9][0-9]{0,4})$/.test(w) || Number(w) > 65535) {
            throw new Error(`view "${text}": "${item}" is not ID or ID@WEIGHT (weight 0..65535)`);
          }
          return { id, weight: Number(w) };
        });
  return { instance: Number(inst), backends };
}

function collectView(text: string, prev: SimulateOpts['view']): SimulateOpts['view'] {
  try {
    return [...prev, parseView(text)];
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

function ratio(r: number | null): string {
  return r === null ? 'inf' : r.toFixed(3);
}

/** Aligned text: one summary row per step, then the load per backend at every step. */
export function formatSimResult(r: SimResult): string {
  let s = `${r.routers} routers, ${r.instances} instances, ${r.flows} flows, table size ${r.tableSize}, seed ${r.seed}\n\n`;
  s += table(
    ['STEP', 'EVENT', 'MOVED-INSTANCE', 'CHANGED-BACKEND', 'ON-REMOVED', 'CHANGED-NO-CONNTRACK', 'DROPPED', 'MAX/MIN'],
    r.steps.map((st, i) => [
      i,
      st.event,
      st.movedInstance,
      st.changedBackend,
      st.onRemovedBackend,
      st.changedBackendStateless,
      st.dropped,
      ratio(st.maxMinRatio),
    ]),
  );
  const ids: string[] = [];
  for (const st of r.steps) for (const b of st.backends) if (!ids.includes(b.id)) ids.push(b.id);
  s += '\nflows per backend (share) after each step\n';
  s += table(
    ['BACKEND', ...r.steps.map((_, i) => `STEP ${i}`)],
    ids.map((id) => [
      r.steps.some((st) => st.backends.some((b) => b.id === id && b.weight === null)) ? `${id} *` : id,
      ...r.steps.map((st) => {
        const b = st.backends.find((x) => x.id === id);
        return b ? `${b.flows} (${percent(b.share)})` : '-';
      }),
    ]),
  );
  if (ids.some((id) => r.steps.some((st) => st.backends.some((b) => b.id === id && b.weight === null)))) {
    s += '* not in the config at some step, but still served by a stale view\n';
  }
  const split = r.steps
    .map((st, i) => ({ i, tables: new Set(st.instances.filter((x) => x.up).map((x) => x.fingerprint)).size }))
    .filter((x) => x.tables > 1);
  if (split.length > 0) {
    s += `\ninstances up disagree (distinct Maglev tables) at ${split.map((x) => `step ${x.i}: ${x.tables}`).join(', ')}\n`;
  }
  return s;
}

/** Adds `weir simulate` to the program. */
export function registerSimulate(program: Command): void {
  program
    .command('simulate')
    .description(
      'model R routers × L instances × B backends and F flows; report flows that change instance or backend per event',
    )
    .option(
      '-c, --config <file>',
      'take the backends, weights, table size, hash fields and seed of one VIP from this config',
    )
    .option('--vip <name>', 'the VIP to model (with -c)')
    .option('--routers <n>', 'routers doing ECMP (hash-threshold) to the instances', intArg(1, 1024), 2)
    .option('--instances <n>', 'weir instances', intArg(1, 1024), 3)
    .option('--backends <n>', 'synthetic backends be1..beN, weight 100 (without -c)', intArg(1, 4096), 5)
    .option('--flows <n>', 'synthetic flows', intArg(1, 10_000_000), 100_000)
    .option('--seed <n>', 'seed of the synthetic flows and router hashes', intArg(0, 4294967295), 1)
    .option(
      '--event <event>',
      'instance-down:N, instance-up:N, router-down:N, router-up:N, backend-down:ID, backend-add:ID[=W], weight:ID=W (repeatable, in order)',
      collectEvent,
      [] as SimEvent[],
    )
    .option(
      '--view <N=ID[@W],...>',
      'give instance N its own backend set that never reloads (a stale config; repeatable)',
      collectView,
      [] as SimulateOpts['view'],
    )
    .option('--json', 'print JSON instead of tables')
    .action(async (o: SimulateOpts) => {
      let base: Partial<SimSpec> = {
        backends: Array.from({ length: o.backends }, (_, i) => ({ id: `be${i + 1}`, weight: 100 })),
      };
      if (o.config !== undefined || o.vip !== undefined) {
        if (o.config === undefined || o.vip === undefined)
          throw new Error('give both -c FILE and --vip NAME to model a VIP of a config');
        const { ConfigError, loadConfigFile } = await import('../config/load.js');
        const { simPartsFromConfig } = await import('../sim/from-config.js');
        try {
          base = simPartsFromConfig(loadConfigFile(o.config), o.vip);
        } catch (e) {
          if (!(e instanceof ConfigError)) throw e;
          process.stderr.write(`weir: ${e.message}\n`);
          process.exitCode = 2; // invalid config, as `weir validate`
          return;
        }
      }
      const result = simulate({
        ...base,
        backends: base.backends ?? [],
        routers: o.routers,
        instances: o.instances,
        flows: o.flows,
        seed: o.seed,
        events: o.event,
        views: o.view,
      });
      process.stdout.write(o.json ? JSON.stringify(result, null, 2) + '\n' : formatSimResult(result));
    });
}
