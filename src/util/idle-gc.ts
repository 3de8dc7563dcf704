// A full garbage collection once the daemon has been quiet for a moment after a reload or a
// runtime change. Each reload of a large config leaves megabytes of parse garbage that reaches
// V8's old generation; V8 collects it only when the old generation next fills, so its committed
// size (and the process's RSS) steps up between full GCs. Collecting once, after the burst,
// gives those pages back while nothing is waiting on the main thread.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type GcFn = () => void;
let gcFn: GcFn | null | undefined;

function gcFunction(): GcFn | null {
  if (gcFn !== undefined) return gcFn;
  try {
    setFlagsFromString('--expose-gc');
    gcFn = runInNewContext('gc') as GcFn;
  } catch {
    gcFn = null;
  }
  return gcFn;
}

export class IdleGc {
  private timer: NodeJS.Timeout | null = null;
  /** Collections run (tests and status). */
  runs = 0;

  constructor(private readonly quietMs = 2000) {}

  /** Something allocated a lot: collect once nothing else has asked for `quietMs`. */
  poke(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      const gc = gcFunction();
      if (gc) {
        gc();
        this.runs++;
      }
    }, this.quietMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
