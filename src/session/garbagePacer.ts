/**
 * Every chunk a relay moves is a fresh 32-64 KiB buffer outside V8's heap,
 * held by a small object inside it. Young-generation collections are
 * scheduled by the heap's own small objects, so tens of megabytes of dead
 * buffers pile up between two of them (V8 steps in only past its external
 * memory limit, about 64 MiB): a forwarder moving a single download peaked
 * 40 MiB above its idle size. A minor collection every couple of megabytes
 * moved costs next to nothing (almost everything young is dead) and keeps
 * that pile small.
 *
 * The collector is the embedder's to give (a process started with
 * --expose-gc has `gc`); without one, nothing happens.
 */
export interface GarbagePacer {
  moved(bytes: number): void;
}

export const GARBAGE_PACE_BYTES = 2 * 1024 * 1024;

export function garbagePacer(collect: (() => void) | undefined, everyBytes = GARBAGE_PACE_BYTES): GarbagePacer {
  if (!collect) return { moved: () => undefined };
  let since = 0;
  return {
    moved: (bytes) => {
      since += bytes;
      if (since < everyBytes) return;
      since = 0;
      collect();
    },
  };
}
