// The events of a `weir simulate` run and their command-line spelling ("instance-down:1",
// "backend-down:be2", "backend-add:be9=50", "weight:be1=200", "router-down:0", ...).

export type SimEvent =
  | { kind: 'instance-down'; instance: number }
  | { kind: 'instance-up'; instance: number }
  | { kind: 'router-down'; router: number }
  | { kind: 'router-up'; router: number }
  | { kind: 'backend-down'; backend: string }
  | { kind: 'backend-add'; backend: string; weight?: number }
  | { kind: 'weight'; backend: string; weight: number };

export const EVENT_KINDS = [
  'instance-down',
  'instance-up',
  'router-down',
  'router-up',
  'backend-down',
  'backend-add',
  'weight',
] as const;

const USAGE =
  'instance-down:N, instance-up:N, router-down:N, router-up:N, backend-down:ID, backend-add:ID[=WEIGHT], weight:ID=WEIGHT';

function index(text: string, what: string, raw: string): number {
  if (!/^(0|[1-9][0-9]{0,5})$/.test(text))
    throw new Error(`event "${raw}": ${what} must be an index 0, 1, 2, ..., got "${text}"`);
  return Number(text);
}

function weight(text: string, raw: string): number {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text) || Number(text) > 65535) {
    throw new Error(`event "${raw}": weight must be an integer from 0 to 65535, got "${text}"`);
  }
  return Number(text);
}

function backendId(text: string, raw: string): string {
  if (text.length === 0) throw new Error(`event "${raw}": the backend name is empty`);
  return text;
}

/**
 * Parses one event. The kind ends at the first ":"; backend names may hold ":" themselves
 * ("198.18.1.1:80"), never "=", so a weight follows the last "=". Throws an Error naming
 * the event and what is wrong.
 */
export function parseSimEvent(raw: string): SimEvent {
  const colon = raw.indexOf(':');
  if (colon < 0) throw new Error(`event "${raw}" is not KIND:ARG; events: ${USAGE}`);
  const kind = raw.slice(0, colon);
  const arg = raw.slice(colon + 1);
  const eq = arg.lastIndexOf('=');
  switch (kind) {
    case 'instance-down':
    case 'instance-up':
      return { kind, instance: index(arg, 'the instance', raw) };
    case 'router-down':
    case 'router-up':
      return { kind, router: index(arg, 'the router', raw) };
    case 'backend-down':
      return { kind, backend: backendId(arg, raw) };
    case 'backend-add':
      if (eq < 0) return { kind, backend: backendId(arg, raw) };
      return { kind, backend: backendId(arg.slice(0, eq), raw), weight: weight(arg.slice(eq + 1), raw) };
    case 'weight':
      if (eq < 0) throw new Error(`event "${raw}": give the new weight as weight:ID=WEIGHT`);
      return { kind, backend: backendId(arg.slice(0, eq), raw), weight: weight(arg.slice(eq + 1), raw) };
    default:
      throw new Error(`unknown event kind "${kind}" in "${raw}"; events: ${USAGE}`);
  }
}

/** The command-line spelling of an event (parseSimEvent's inverse). */
export function formatSimEvent(e: SimEvent): string {
  switch (e.kind) {
    case 'instance-down':
    case 'instance-up':
      return `${e.kind}:${e.instance}`;
    case 'router-down':
    case 'router-up':
      return `${e.kind}:${e.router}`;
    case 'backend-down':
      return `${e.kind}:${e.backend}`;
    case 'backend-add':
      return e.weight === undefined ? `${e.kind}:${e.backend}` : `${e.kind}:${e.backend}=${e.weight}`;
    case 'weight':
      return `${e.kind}:${e.backend}=${e.weight}`;
  }
}
