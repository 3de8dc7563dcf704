// A counter set: the names of a module's counters in order, their indexes into the typed array
// the hot path increments (`counters[C_X]++`), and one help sentence each for metrics and docs.
// Written once as an object literal, so a name, its index and its meaning cannot drift apart.

export interface CounterSet<N extends string> {
  /** Names in index order. */
  readonly names: readonly N[];
  /** Index of each name (offset included). */
  readonly index: { readonly [K in N]: number };
  /** What each counter counts, one sentence. */
  readonly help: { readonly [K in N]: string };
  /** Index of the first counter (sets can follow one another in one array). */
  readonly offset: number;
  /** Index just past the last counter. */
  readonly end: number;
  /** {name: value} from a counters array (control plane; allocates). */
  read(values: ArrayLike<number>): Record<N, number>;
}

/**
 * Defines a counter set from {name: help} (key order is index order), starting at `offset`.
 * Throws on an empty set or an empty help sentence.
 */
export function counterSet<const D extends Record<string, string>>(
  defs: D,
  offset = 0,
): CounterSet<Extract<keyof D, string>> {
  type N = Extract<keyof D, string>;
  const names = Object.keys(defs) as N[];
  if (names.length === 0) throw new Error('counterSet: no counters');
  const index = {} as Record<N, number>;
  names.forEach((n, i) => {
    if (!defs[n]) throw new Error(`counterSet: counter ${n} has no help`);
    index[n] = offset + i;
  });
  return Object.freeze({
    names: Object.freeze(names),
    index: Object.freeze(index),
    help: Object.freeze({ ...defs }),
    offset,
    end: offset + names.length,
    read(values: ArrayLike<number>): Record<N, number> {
      const o = {} as Record<N, number>;
      for (const n of names) o[n] = values[index[n]] ?? 0;
      return o;
    },
  });
}
