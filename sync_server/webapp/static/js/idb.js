// A small promise wrapper over IndexedDB (what the `idb` package does, in the few lines
// this app needs). Inside `tx`, await only the wrapper's own requests: a transaction
// commits as soon as it has no request pending, so a fetch or a hash awaited inside it
// would end it early.

export const req = (r) => new Promise((resolve, reject) => {
  r.onsuccess = () => resolve(r.result);
  r.onerror = () => reject(r.error);
});

export function openDb(name, version, upgrade) {
  const r = indexedDB.open(name, version);
  r.onupgradeneeded = () => upgrade(r.result, r.transaction);
  return req(r);
}

/** Run `fn(stores)` in one transaction over `names`; resolves once it has committed. */
export async function tx(db, names, mode, fn) {
  const t = db.transaction(names, mode, { durability: "strict" });
  const done = new Promise((resolve, reject) => {
    t.oncomplete = () => resolve();
    t.onabort = () => reject(t.error || new Error("transaction aborted"));
    t.onerror = () => reject(t.error);
  });
  const stores = Object.fromEntries(names.map((n) => [n, wrap(t.objectStore(n))]));
  let result;
  try {
    result = await fn(stores);
  } catch (error) {
    try { t.abort(); } catch { /* already finished */ }
    await done.catch(() => {});
    throw error;
  }
  await done;
  return result;
}

function wrap(store) {
  return {
    get: (key) => req(store.get(key)),
    getAll: (query) => req(store.getAll(query)),
    put: (value, key) => req(key === undefined ? store.put(value) : store.put(value, key)),
    add: (value) => req(store.add(value)),
    delete: (key) => req(store.delete(key)),
    clear: () => req(store.clear()),
    count: () => req(store.count()),
    index: (name) => {
      const index = store.index(name);
      return { getAll: (query) => req(index.getAll(query)), count: (query) => req(index.count(query)) };
    },
  };
}
