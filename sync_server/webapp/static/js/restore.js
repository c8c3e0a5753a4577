// After the server is restored from a backup: send back what it lost, as the Python SDK's
// client_sdk/_restore.py does. On a 410 the device keeps a copy of what it had pulled
// (store `restored`), pulls everything again, then compares field by field: what it held
// with a newer stamp than the restored server has is queued again with its original stamp
// and, as its base, the server's stamp now, so the server's own merge decides, as it did
// the first time. A record the backup lacks comes back whole, from its author's device.

import { heldWins } from "./merge.js";
import { newPending } from "./values.js";

const growing = new Set(["lww", "set"]);

/** What the server lacks of a record as the device held it, as a Pending, or null. */
export function lost(policies, ranks, held, onServer, newStamp) {
  const [fields, stamps, deleted] = held;
  const [nowFields, nowStamps, nowDeleted] = onServer || [{}, {}, false];
  const pending = newPending();
  if (deleted) {
    const editedSince = Object.entries(nowStamps).some(([n, ts]) => growing.has(policies[n]) && ts > (stamps[n] || ""));
    if (onServer && !nowDeleted && !editedSince) {
      const top = Object.values(nowStamps).reduce((a, b) => (b > a ? b : a), null);
      pending.delete = { ts: newStamp(), base: top };
      return pending;
    }
    return null;
  }
  for (const [name, ts] of Object.entries(stamps)) {
    const policy = policies[name];
    if (!policy || !(name in fields)) continue;
    let base = nowStamps[name] ?? null;
    const value = fields[name];
    if (policy === "set") {
      const have = new Set(nowFields[name] || []);
      const missing = (value || []).filter((e) => !have.has(e)).sort();
      if (missing.length) pending.sets[name] = { elements: Object.fromEntries(missing.map((e) => [e, [true, ts]])), base: base && base <= ts ? base : null };
      continue;
    }
    if (base !== null && !heldWins(policy, ranks[name], value, ts, nowFields[name], base)) continue;
    if (base !== null && base > ts) base = null;  // an earlier first value, a higher rank stamped earlier
    pending.values[name] = { value, ts, base };
  }
  return Object.keys(pending.values).length || Object.keys(pending.sets).length ? pending : null;
}

/** Compare the kept copy with the records as now pulled; queue what the server lacks.
 * Answers [records queued, records left to their author]. */
export async function requeue(local, schema) {
  let queued = 0, skipped = 0;
  await local.tx(["restored", "records", "outbox", "meta"], "readwrite", async (s) => {
    for (const held of await s.restored.getAll()) {
      const now = await s.records.get([held.collection, held.id]);
      const onServer = now && now.seq > 0 ? [now.fields, now.stamps, now.deleted] : null;
      const author = held.fields.created_by;
      if (!onServer && !held.deleted && author && local.meta.user_id && author !== local.meta.user_id) { skipped += 1; continue; }
      const pending = lost(schema.policies(held.collection), schema.ranks(held.collection), [held.fields, held.stamps, held.deleted], onServer, () => local.hlc.now());
      await s.restored.delete([held.collection, held.id]);
      if (!pending) continue;
      const rows = await s.outbox.index("key").getAll([held.collection, held.id]);
      const open = rows.filter((r) => r.changeset_id === null).at(-1);
      if (!open) await s.outbox.add({ collection: held.collection, id: held.id, change: pending, changeset_id: null });
      else {  // an edit made on the device since, stamped later, stays as it is
        for (const [n, v] of Object.entries(pending.values)) if (!open.change.values[n] || open.change.values[n].ts < v.ts) open.change.values[n] = v;
        for (const [n, set] of Object.entries(pending.sets)) {
          const mine = open.change.sets[n] || (open.change.sets[n] = { elements: {}, base: set.base });
          for (const [e, [p, ts]] of Object.entries(set.elements)) if (!mine.elements[e] || mine.elements[e][1] < ts) mine.elements[e] = [p, ts];
        }
        if (pending.delete && !open.change.delete) open.change.delete = pending.delete;
        await s.outbox.put(open);
      }
      queued += 1;
    }
    await s.meta.put(local.hlc.stateText, "hlc");
  });
  return [queued, skipped];
}

export async function waiting(local) {
  return local.tx(["restored"], "readonly", async (s) => (await s.restored.count()) > 0);
}
