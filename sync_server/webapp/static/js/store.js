// The device's data in IndexedDB: records as pulled, the outbox, change sets in flight,
// dead letters, conflicts, photos and the HLC. The rules are the Python SDK's
// (client_sdk/_outbox.py, _records.py, _restore.py):
//
// - an edit is one transaction: its stamp, the record's outbox row and the clock state;
// - a record has one *open* outbox row, its pending edits coalesced; a change set is
//   frozen (id and exact body stored) before its first attempt and resent byte for byte
//   until answered, so a retry is idempotent; an edit made meanwhile opens a new row;
// - reads replay the pending rows, oldest first, over the record as last pulled, so a
//   pull that brings a newer base keeps every pending edit on top of it;
// - rejected changes become dead letters, reported conflicts are kept to be shown.

import { openDb, tx } from "./idb.js";
import { HLC, newId } from "./hlc.js";
import { applyPending, newPending, outChange, pendingAdd, pendingDeleteAt, pendingTop } from "./values.js";

const STORES = ["meta", "records", "outbox", "changesets", "dead_letters", "conflicts", "blobs", "restored"];
export const ALL = STORES;

export class LocalError extends Error {}

export function utcText(ms) { return new Date(ms).toISOString(); }

const keyOf = (collection, id) => `${collection}/${id}`;

export class Local {
  static async open(name = "patrol-app") {
    const db = await openDb(name, 1, (d) => {
      d.createObjectStore("meta");
      d.createObjectStore("records", { keyPath: ["collection", "id"] }).createIndex("collection", "collection");
      d.createObjectStore("outbox", { keyPath: "n", autoIncrement: true }).createIndex("key", ["collection", "id"]);
      d.createObjectStore("changesets", { keyPath: "changeset_id" });
      d.createObjectStore("dead_letters", { keyPath: "n", autoIncrement: true });
      d.createObjectStore("conflicts", { keyPath: "id" });
      d.createObjectStore("blobs", { keyPath: "id" });
      d.createObjectStore("restored", { keyPath: ["collection", "id"] });
    });
    const local = new Local(db);
    await local.load();
    return local;
  }

  constructor(db) { this.db = db; this.meta = {}; this.hlc = null; this.wall = () => Date.now(); }

  tx(names, mode, fn) { return tx(this.db, names, mode, fn); }

  async load() {
    await this.tx(["meta", "outbox"], "readonly", async (s) => {
      for (const k of ["device_id", "user_id", "token", "ward_id", "scope", "scope_at", "cursor", "hlc", "last_sync", "revoked"]) this.meta[k] = await s.meta.get(k);
      this.hlc = HLC.restore(this.meta.device_id || "unenrolled", this.meta.hlc, () => this.wall());
      for (const row of await s.outbox.getAll()) this.hlc.observe(pendingTop(row.change));  // never a stamp twice
    });
  }

  async setMeta(values) {
    await this.tx(["meta"], "readwrite", async (s) => { for (const [k, v] of Object.entries(values)) await s.meta.put(v, k); });
    Object.assign(this.meta, values);
    if ("device_id" in values) this.hlc = new HLC(values.device_id, this.hlc.state, () => this.wall());
  }

  /** The device's scope as the server states it (`GET /v1/me`, the enrol answer): the
   * user, and the ward new records go to (the one in use if still in scope, else the first). */
  async setScope(scope) {
    const ids = scope.wards.map((w) => w.id);
    const ward = ids.includes(this.meta.ward_id) ? this.meta.ward_id : ids[0] ?? null;
    await this.setMeta({ scope, scope_at: this.wall(), user_id: scope.user_id, ward_id: ward });
  }

  wardName() {
    const w = this.meta.scope?.wards.find((x) => x.id === this.meta.ward_id);
    return w ? w.name : this.meta.ward_id || "";
  }

  // -- reads: the pulled record with its pending edits replayed -----------------------

  static view(base, rows, collection, id) {
    const doc = base && base.fields ? structuredClone(base.fields) : {};
    const deleted = applyPending(doc, rows.map((r) => r.change), base ? base.deleted : false);
    const ward = base ? base.ward_id : doc.ward_id;
    if (typeof ward !== "string") return null;  // edits of a record this device never held
    return { collection, id, ward_id: ward, deleted, fields: doc, stamps: base ? base.stamps : {}, pending: rows.length > 0, seq: base ? base.seq : 0 };
  }

  async get(collection, id) {
    return this.tx(["records", "outbox"], "readonly", async (s) => {
      const base = await s.records.get([collection, id]);
      const rows = await s.outbox.index("key").getAll([collection, id]);
      return Local.view(base, rows, collection, id);
    });
  }

  /** Every live record of a collection as it reads on this device. */
  async list(collection) {
    return this.tx(["records", "outbox"], "readonly", async (s) => {
      const bases = await s.records.index("collection").getAll(collection);
      const rows = (await s.outbox.getAll()).filter((r) => r.collection === collection);
      const byKey = new Map();
      for (const r of rows) { const k = r.id; if (!byKey.has(k)) byKey.set(k, []); byKey.get(k).push(r); }
      const out = [];
      for (const base of bases) { const v = Local.view(base, byKey.get(base.id) || [], collection, base.id); byKey.delete(base.id); if (v) out.push(v); }
      for (const [id, rs] of byKey) { const v = Local.view(null, rs, collection, id); if (v) out.push(v); }
      return out.filter((v) => !v.deleted);
    });
  }

  // -- edits ----------------------------------------------------------------------------

  /** A new record: `values` are its fields (ward_id included), `sets` {field: [elements]}. */
  async create(collection, values, sets = {}) {
    const id = newId();
    const now = this.wall();
    const fields = { ...values };
    if (this.meta.user_id) fields.created_by = fields.created_by || this.meta.user_id;
    fields.created_at = fields.created_at || utcText(now);
    await this.tx(["records", "outbox", "meta"], "readwrite", async (s) => {
      if (await s.records.get([collection, id])) throw new LocalError(`${collection}/${id} exists already`);
      const ts = this.hlc.now();
      const pending = newPending();
      const setEdits = Object.fromEntries(Object.entries(sets).filter(([, l]) => l.length).map(([n, l]) => [n, Object.fromEntries(l.map((e) => [e, true]))]));
      pendingAdd(pending, { values: fields, sets: setEdits }, ts, {});
      await s.outbox.add({ collection, id, change: pending, changeset_id: null });
      await s.meta.put(this.hlc.stateText, "hlc");
    });
    return id;
  }

  /** Stamp and queue edits of a record this device holds: `values` {field: value},
   * `sets` {field: {element: present}}, or `remove: true` to delete it. */
  async edit(collection, id, { values = {}, sets = {}, remove = false } = {}) {
    return this.tx(["records", "outbox", "meta"], "readwrite", async (s) => {
      const base = await s.records.get([collection, id]);
      const rows = await s.outbox.index("key").getAll([collection, id]);
      const view = Local.view(base, rows, collection, id);
      if (!view) throw new LocalError(`${collection}/${id} is not on this device`);
      if (view.deleted) throw new LocalError(`${collection}/${id} is deleted`);
      const stamps = base ? base.stamps : {};
      const open = rows.filter((r) => r.changeset_id === null).at(-1);
      const row = open || { collection, id, change: newPending(), changeset_id: null };
      const ts = this.hlc.now();
      pendingAdd(row.change, { values, sets }, ts, stamps);
      if (remove) pendingDeleteAt(row.change, ts, stamps);
      await s.outbox.put(row);
      await s.meta.put(this.hlc.stateText, "hlc");
    });
  }

  async pendingCount() {
    return this.tx(["outbox"], "readonly", async (s) => new Set((await s.outbox.getAll()).map((r) => keyOf(r.collection, r.id))).size);
  }

  async pendingRows() { return this.tx(["outbox"], "readonly", (s) => s.outbox.getAll()); }

  // -- change sets ----------------------------------------------------------------------

  async lastRow() { return this.tx(["outbox"], "readonly", async (s) => Math.max(0, ...(await s.outbox.getAll()).map((r) => r.n))); }

  async inFlight() {
    const sets = await this.tx(["changesets"], "readonly", (s) => s.changesets.getAll());
    return sets.sort((a, b) => a.order - b.order);
  }

  /** Freeze the next change set: the oldest open rows up to `upto`, at most `max`. */
  async freeze(max, maxBytes, upto) {
    return this.tx(["outbox", "changesets"], "readwrite", async (s) => {
      const rows = (await s.outbox.getAll()).filter((r) => r.n <= upto && r.changeset_id === null).slice(0, max);
      if (!rows.length) return null;
      const parts = [], taken = [];
      let size = 0;
      for (const row of rows) {
        const part = JSON.stringify(outChange(row.collection, row.id, row.change));
        if (parts.length && size + part.length > maxBytes) break;
        parts.push(part); taken.push(row); size += part.length + 1;
      }
      const changesetId = newId();
      const body = `{"device_id":${JSON.stringify(this.meta.device_id)},"changeset_id":"${changesetId}","changes":[${parts.join(",")}]}`;
      for (const row of taken) { row.changeset_id = changesetId; await s.outbox.put(row); }
      const frozen = { changeset_id: changesetId, body, rows: taken.map((r) => r.n), order: Date.now() + taken[0].n / 1e9 };
      await s.changesets.put(frozen);
      return frozen;
    });
  }

  /** Give a change set up unsent (refused whole): its rows are open again. */
  async unfreeze(frozen) {
    await this.tx(["outbox", "changesets"], "readwrite", async (s) => {
      for (const n of frozen.rows) { const row = await s.outbox.get(n); if (row) { row.changeset_id = null; await s.outbox.put(row); } }
      await s.changesets.delete(frozen.changeset_id);
    });
  }

  /** Apply the server's answer: records as they now stand, rejections to dead letters,
   * conflicts kept, the rows done. */
  async settle(frozen, answer) {
    const changes = JSON.parse(frozen.body).changes;
    if (answer.results.length !== changes.length) throw new LocalError(`change set ${frozen.changeset_id}: ${changes.length} changes sent, ${answer.results.length} results`);
    let rejected = 0;
    await this.tx(["records", "outbox", "changesets", "dead_letters", "conflicts", "meta"], "readwrite", async (s) => {
      for (const [i, result] of answer.results.entries()) {
        if (result.status === "applied" && result.record) await this.upsert(s, result.record);
        if (result.status === "rejected") {
          rejected += 1;
          const { collection, id, ...change } = changes[i];
          await s.dead_letters.add({ collection, record_id: id, change, errors: result.errors || [], changeset_id: frozen.changeset_id, rejected_at: utcText(this.wall()) });
        }
      }
      for (const c of answer.conflicts || []) await s.conflicts.put(c);
      for (const n of frozen.rows) await s.outbox.delete(n);
      await s.changesets.delete(frozen.changeset_id);
      await s.meta.put(this.hlc.stateText, "hlc");
    });
    return { applied: answer.results.length - rejected, rejected };
  }

  async deadLetterWhole(frozen, errors) {
    const changes = JSON.parse(frozen.body).changes;
    return (await this.settle(frozen, { results: changes.map(() => ({ status: "rejected", errors })), conflicts: [] })).rejected;
  }

  // -- pull -------------------------------------------------------------------------------

  /** Store a record as pulled (an older version never replaces a newer one). */
  async upsert(s, r) {
    const old = await s.records.get([r.collection, r.id]);
    if (old && old.seq >= r.seq) return false;
    await s.records.put({ collection: r.collection, id: r.id, ward_id: r.ward_id, seq: r.seq, deleted: r.deleted, fields: r.fields, stamps: r.stamps });
    for (const ts of Object.values(r.stamps)) this.hlc.observe(ts);
    return true;
  }

  /** A pulled page and the cursor after it, in one transaction. */
  async applyPage(page) {
    await this.tx(["records", "meta"], "readwrite", async (s) => {
      for (const r of page.records) await this.upsert(s, r);
      await s.meta.put(page.cursor, "cursor");
      await s.meta.put(this.hlc.stateText, "hlc");
    });
    this.meta.cursor = page.cursor;
  }

  /** The server's epoch changed (restored from a backup): keep a copy of what was pulled
   * (to send back what the backup lacks), forget it, keep every pending edit. */
  async reset() {
    await this.tx(["records", "outbox", "restored", "meta"], "readwrite", async (s) => {
      const pending = new Set((await s.outbox.getAll()).map((r) => keyOf(r.collection, r.id)));
      for (const r of await s.records.getAll()) {
        if (r.seq > 0 && !(await s.restored.get([r.collection, r.id]))) await s.restored.put(r);
        if (pending.has(keyOf(r.collection, r.id))) { r.seq = 0; await s.records.put(r); }
        else await s.records.delete([r.collection, r.id]);
      }
      await s.meta.put(null, "cursor");
    });
    this.meta.cursor = null;
  }

  // -- dead letters, conflicts ------------------------------------------------------------

  async deadLetters() { return this.tx(["dead_letters"], "readonly", (s) => s.dead_letters.getAll()); }
  async conflicts() { return this.tx(["conflicts"], "readonly", (s) => s.conflicts.getAll()); }
  async deadLetter(n) { return this.tx(["dead_letters"], "readonly", (s) => s.dead_letters.get(n)); }

  /** Queue a refused change again, as the SDK's `requeue_dead_letter` does
   * (client_sdk/_outbox.py): the letter goes, its edits are stamped anew over their old
   * bases, `fixes` ({field: value}) replace its values, `sets` ({field: {element:
   * present}}) its set edits; all coalesced into the record's open outbox row. */
  async requeue(n, { fixes = {}, sets: setFixes = {} } = {}) {
    await this.tx(["dead_letters", "outbox", "meta"], "readwrite", async (s) => {
      const letter = await s.dead_letters.get(n);
      if (!letter) throw new LocalError(`no dead letter ${n}`);
      await s.dead_letters.delete(n);
      const bases = {}, values = {}, sets = {};
      for (const [name, edit] of Object.entries(letter.change.fields || {})) {
        if (edit.base) bases[name] = edit.base;
        if ("value" in edit) values[name] = edit.value;
        else sets[name] = Object.fromEntries([...(edit.add || []).map((e) => [e, true]), ...(edit.remove || []).map((e) => [e, false])]);
      }
      Object.assign(values, fixes);
      for (const [name, elements] of Object.entries(setFixes)) sets[name] = { ...sets[name], ...elements };
      const { collection, record_id: id } = letter;
      const open = (await s.outbox.index("key").getAll([collection, id])).filter((r) => r.changeset_id === null).at(-1);
      const row = open || { collection, id, change: newPending(), changeset_id: null };
      const ts = this.hlc.now();
      pendingAdd(row.change, { values, sets }, ts, bases);
      if (letter.change.delete) pendingDeleteAt(row.change, ts, letter.change.delete.base ? { "": letter.change.delete.base } : {});
      await s.outbox.put(row);
      await s.meta.put(this.hlc.stateText, "hlc");
    });
  }

  async dropDeadLetter(n) { await this.tx(["dead_letters"], "readwrite", (s) => s.dead_letters.delete(n)); }
  async dropConflict(id) { await this.tx(["conflicts"], "readwrite", (s) => s.conflicts.delete(id)); }

  // -- photos -----------------------------------------------------------------------------

  /** Keep a photo: one taken here (to upload), or one fetched from the server (`uploaded`). */
  async putBlob(id, blob, uploaded = false) {
    await this.tx(["blobs"], "readwrite", async (s) => { if (!(await s.blobs.get(id))) await s.blobs.put({ id, blob, size: blob.size, uploaded }); });
  }

  async getBlob(id) { return this.tx(["blobs"], "readonly", (s) => s.blobs.get(id)); }

  async markBlob(id, state) {
    await this.tx(["blobs"], "readwrite", async (s) => { const b = await s.blobs.get(id); if (b) { b.uploaded = state; await s.blobs.put(b); } });
  }

  /** Photos named by pending edits and not yet on the server. */
  async blobsToUpload() {
    return this.tx(["outbox", "blobs"], "readonly", async (s) => {
      const named = new Set();
      for (const row of await s.outbox.getAll()) for (const set of Object.values(row.change.sets)) for (const [e, [present]] of Object.entries(set.elements)) if (present && e.startsWith("sha256:")) named.add(e);
      const out = [];
      for (const id of [...named].sort()) { const b = await s.blobs.get(id); if (b && b.uploaded === false) out.push(b); }
      return out;
    });
  }

  async wipe() { await this.tx(STORES, "readwrite", async (s) => { for (const n of STORES) await s[n].clear(); }); this.meta = {}; }
}
