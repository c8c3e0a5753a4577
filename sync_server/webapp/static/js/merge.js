import { codepointCompare } from "./values.js";

// The merge order of the server's engine (sync_server/engine/merge.py), for the shared test
// vectors and for deciding, after a server restore, which held values the server lacks.
// The server alone merges what is pushed; this is the same table, so both clients can be
// checked against it:
//
// | policy | order                                               |
// | lww    | higher stamp; equal stamps: higher JSON encoding     |
// | first  | lower stamp; equal stamps: lower JSON encoding       |
// | rank   | higher rank, then as lww                             |
// | set    | per element: higher stamp, then add over remove      |
// | delete | deleted while the tombstone is above every field     |
//
// "JSON encoding" is compared as UTF-8 bytes (PROTOCOL.md §3), never as JS strings
// (UTF-16 units order characters above U+FFFF differently).

const utf8 = new TextEncoder();

export function compareBytes(a, b) {
  const x = utf8.encode(a), y = utf8.encode(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

/** Whether (ts, value) orders above (otherTs, other): by stamp, then encoded value. */
export function above(ts, value, otherTs, other) {
  if (ts !== otherTs) return ts > otherTs;
  return compareBytes(JSON.stringify(value), JSON.stringify(other)) > 0;
}

export function emptyState() { return { fields: {}, stamps: {}, sets: {}, tomb: null }; }

export function topStamp(state) {
  return Object.values(state.stamps).reduce((a, b) => (b > a ? b : a), "");
}

export function isDeleted(state) { return state.tomb !== null && state.tomb > topStamp(state); }

/** Merge one change (wire form, §4) into `state` (changed in place).
 * `policies`: field -> "lww" | "first" | "rank" | "set"; `ranks`: field -> {value: rank}. */
export function mergeChange(state, change, policies, ranks = {}) {
  for (const [name, edit] of Object.entries(change.fields || {})) {
    const policy = policies[name] || "lww";
    if (policy === "set") { mergeSet(state, name, edit); continue; }
    const curTs = state.stamps[name];
    if (curTs === undefined) { state.fields[name] = edit.value; state.stamps[name] = edit.ts; continue; }
    const cur = state.fields[name];
    let wins;
    if (policy === "first") wins = above(curTs, cur, edit.ts, edit.value);
    else if (policy === "rank") {
      const order = ranks[name] || {};
      const r = order[edit.value], c = order[cur];
      wins = r > c || (r === c && above(edit.ts, edit.value, curTs, cur));
    } else wins = above(edit.ts, edit.value, curTs, cur);
    if (policy === "first" && JSON.stringify(cur) === JSON.stringify(edit.value)) {
      if (edit.ts < curTs) state.stamps[name] = edit.ts;  // the same value, written earlier
      continue;
    }
    if (wins) { state.fields[name] = edit.value; state.stamps[name] = edit.ts; }
  }
  if (change.delete && (state.tomb === null || change.delete.ts > state.tomb)) state.tomb = change.delete.ts;
  return state;
}

function mergeSet(state, name, edit) {
  const elements = state.sets[name] || {};
  let moved = false;
  const ops = [...(edit.add || []).map((e) => [e, true]), ...(edit.remove || []).map((e) => [e, false])];
  for (const [element, present] of ops) {
    const cur = elements[element];
    if (cur) {
      const [curTs, curPresent] = cur;
      const wins = edit.ts > curTs || (edit.ts === curTs && present && !curPresent);
      if (!wins) continue;
    }
    elements[element] = [edit.ts, present];
    moved = true;
  }
  if (moved) {
    state.sets[name] = elements;
    state.fields[name] = Object.entries(elements).filter(([, [, p]]) => p).map(([e]) => e).sort(codepointCompare);
    state.stamps[name] = Object.values(elements).map(([ts]) => ts).reduce((a, b) => (b > a ? b : a));
  }
}

/** Whether a held value would win over the server's in the server's merge (restore send-back). */
export function heldWins(policy, order, value, ts, nowValue, nowTs) {
  if (policy === "first") return above(nowTs, nowValue, ts, value);
  if (policy === "rank" && order) {
    const held = order[value] ?? -1, now = order[nowValue] ?? -1;
    return held > now || (held === now && above(ts, value, nowTs, nowValue));
  }
  return above(ts, value, nowTs, nowValue);
}
