/**
 * A first-in first-out queue with O(1) push and shift. `Array.prototype.shift`
 * moves every remaining element, so a queue that a peer can fill (pipelined
 * commands, framed lines) would cost time quadratic in what it sent.
 */
export class Fifo<T> {
  private items: Array<T | undefined> = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  /** The item `index` places from the front, or undefined. */
  at(index: number): T | undefined {
    return index < 0 ? undefined : this.items[this.head + index];
  }

  /** Inserts `item` so that it is `index` places from the front (O(n): for rare repairs). */
  insertAt(index: number, item: T): void {
    this.items.splice(this.head + Math.max(0, Math.min(index, this.length)), 0, item);
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head += 1;
    // Compact once the dead prefix is most of the array: amortised O(1).
    if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  /** Index from the front of the first item matching `predicate`, or -1. */
  findIndex(predicate: (item: T) => boolean): number {
    for (let index = 0; index < this.length; index += 1) {
      if (predicate(this.items[this.head + index] as T)) return index;
    }
    return -1;
  }

  some(predicate: (item: T) => boolean): boolean {
    return this.findIndex(predicate) !== -1;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}
