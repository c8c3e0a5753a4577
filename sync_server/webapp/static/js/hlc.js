// Stamps: hybrid logical clock values that compare as plain strings (PROTOCOL.md §3),
// the same rules as schemas/stamps.py: "<13-digit ms>-<4 hex counter>-<node>"; the clock
// never goes backwards and moves past every stamp it observes.

const COUNTER_MAX = 0xffff;

export function formatStamp(ms, counter, node) {
  return `${String(ms).padStart(13, "0")}-${counter.toString(16).padStart(4, "0")}-${node}`;
}

export const stampMs = (stamp) => Number(stamp.slice(0, 13));
export const stampNode = (stamp) => stamp.slice(19);

export class HLC {
  constructor(node, state = [0, 0], wall = () => Date.now()) {
    this.node = node;
    [this.ms, this.counter] = state;
    this.wall = wall;
  }

  get state() { return [this.ms, this.counter]; }
  get stateText() { return `${this.ms},${this.counter}`; }

  static restore(node, text, wall) {
    const state = text ? text.split(",").map(Number) : [0, 0];
    return new HLC(node, state, wall);
  }

  /** A new stamp, higher than every stamp issued or observed before. */
  now() {
    const wall = this.wall();
    if (wall > this.ms) { this.ms = wall; this.counter = 0; }
    else if (this.counter < COUNTER_MAX) this.counter += 1;
    else { this.ms += 1; this.counter = 0; }
    return formatStamp(this.ms, this.counter, this.node);
  }

  /** Move past a stamp seen from elsewhere (a pulled record, an answer). */
  observe(stamp) {
    if (!stamp) return;
    const ms = Number(stamp.slice(0, 13)), counter = parseInt(stamp.slice(14, 18), 16);
    if (ms > this.ms || (ms === this.ms && counter > this.counter)) { this.ms = ms; this.counter = counter; }
  }
}

// Record ids: UUIDv7 (RFC 9562 §5.7), strictly increasing within this page, as client_sdk/ids.py.
let lastMs = 0, seqCounter = 0;
export function newId() {
  const rand = crypto.getRandomValues(new Uint8Array(10));
  let now = Date.now();
  if (now > lastMs) { lastMs = now; seqCounter = ((rand[0] << 8) | rand[1]) & 0x7ff; }
  else { now = lastMs; seqCounter += 1; if (seqCounter > 0xfff) { lastMs = now = now + 1; seqCounter = 0; } }
  const hex = (n, w) => n.toString(16).padStart(w, "0");
  const tail = Array.from(rand.slice(2), (b) => hex(b, 2)).join("");
  const variant = (0x8 | (rand[2] & 0x3)).toString(16);
  return `${hex(Math.floor(now / 0x10000), 8)}-${hex(now % 0x10000, 4)}-7${hex(seqCounter, 3)}-${variant}${tail.slice(1, 4)}-${tail.slice(4, 16)}`;
}
