// One record's pending edits, coalesced, and their replay over a pulled record: the rules
// of client_sdk/_values.py (Pending, apply_pending) and _outbox.py (_out_change).
//
// A Pending is plain JSON (it is stored in IndexedDB as is):
//   {values: {field: {value, ts, base}}, sets: {field: {elements: {e: [present, ts]}, base}},
//    delete: {ts, base} | null}
// Per field the newest value and its stamp, per set element the newest add or remove, and
// the *first* edit's base (the server stamp the device had seen when its edits began).

export function newPending() { return { values: {}, sets: {}, delete: null }; }

export function pendingTop(p) {
  let top = "";
  for (const v of Object.values(p.values)) if (v.ts > top) top = v.ts;
  for (const s of Object.values(p.sets)) for (const [, ts] of Object.values(s.elements)) if (ts > top) top = ts;
  if (p.delete && p.delete.ts > top) top = p.delete.ts;
  return top;
}

/** Coalesce edits stamped `ts`: `values` {field: value}, `sets` {field: {element: present}};
 * `stamps`: the fields' stamps as last pulled. */
export function pendingAdd(p, { values = {}, sets = {} }, ts, stamps) {
  for (const [name, value] of Object.entries(values)) {
    const old = p.values[name];
    p.values[name] = { value, ts, base: old ? old.base : (stamps[name] ?? null) };
  }
  for (const [name, elements] of Object.entries(sets)) {
    let pending = p.sets[name];
    if (!pending) pending = p.sets[name] = { elements: {}, base: stamps[name] ?? null };
    for (const [element, present] of Object.entries(elements)) pending.elements[element] = [present, ts];
  }
}

export function pendingDeleteAt(p, ts, stamps) {
  const all = Object.values(stamps);
  const base = p.delete ? p.delete.base : (all.length ? all.reduce((a, b) => (b > a ? b : a)) : null);
  p.delete = { ts, base };
}

/** Apply pending edits, oldest first, to `doc` (the fields as pulled, changed in place).
 * Returns whether the record reads as deleted: a pending delete hides it unless a pending
 * edit is stamped after it; otherwise the pulled state stands. */
export function applyPending(doc, pendings, deleted) {
  let deleteTs = null, top = "";
  for (const p of pendings) {
    for (const [name, edit] of Object.entries(p.values)) {
      doc[name] = structuredClone(edit.value);
      if (edit.ts > top) top = edit.ts;
    }
    for (const [name, edits] of Object.entries(p.sets)) {
      const elements = new Set(Array.isArray(doc[name]) ? doc[name] : []);
      for (const [element, [present, ts]] of Object.entries(edits.elements)) {
        if (present) elements.add(element); else elements.delete(element);
        if (ts > top) top = ts;
      }
      doc[name] = [...elements].sort(codepointCompare);
    }
    if (p.delete) deleteTs = deleteTs === null || p.delete.ts > deleteTs ? p.delete.ts : deleteTs;
  }
  if (deleteTs !== null) return deleteTs > top;
  return deleted;
}

/** One record's pending edits as the change to push (PROTOCOL.md §4). */
export function outChange(collection, id, p) {
  const fields = {};
  for (const [name, v] of Object.entries(p.values)) fields[name] = { value: v.value, ts: v.ts, base: v.base };
  for (const [name, s] of Object.entries(p.sets)) {
    const entries = Object.entries(s.elements);
    const add = entries.filter(([, [present]]) => present).map(([e]) => e).sort(codepointCompare);
    const remove = entries.filter(([, [present]]) => !present).map(([e]) => e).sort(codepointCompare);
    const ts = entries.map(([, [, t]]) => t).reduce((a, b) => (b > a ? b : a));
    fields[name] = { add, remove, ts, base: s.base };
  }
  const change = { collection, id };
  if (Object.keys(fields).length) change.fields = fields;
  if (p.delete) change.delete = { ts: p.delete.ts, base: p.delete.base };
  return change;
}

// Python sorts str by code point; JS's default sort compares UTF-16 units. Same result
// except around surrogates, so compare code points to agree everywhere.
export function codepointCompare(a, b) {
  const x = [...a], y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (d) return d;
  }
  return x.length - y.length;
}

/** Text the way the server stores it (NFC), inside any JSON-like value. */
export function nfc(value) {
  if (typeof value === "string") return value.normalize("NFC");
  if (Array.isArray(value)) return value.map(nfc);
  return value;
}

/** Diacritics-insensitive folding for offline search, as the server's search does:
 * NFD, marks stripped, đ → d, lower case. */
export function fold(text) {
  return (text || "").normalize("NFD").replace(/\p{M}+/gu, "").replace(/đ/g, "d").replace(/Đ/g, "D").toLowerCase();
}
