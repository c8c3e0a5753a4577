// The app shell, cached so the app opens with no network after its first load. The
// cache is named by VERSION, which the server fills in with a hash of the app's files
// (sync_server/http/webapp.py): any change to them makes a new sw.js, the browser installs it
// with a fresh cache, and once active it deletes the old ones. Calls to the API (/v1/)
// never go through the cache.

const VERSION = "__VERSION__";
const CACHE = `patrol-app-${VERSION}`;
const SHELL = [
  "/app/", "/app/index.html", "/app/app.css", "/app/manifest.webmanifest", "/app/schema.json",
  "/app/icons/icon.svg", "/app/icons/icon-192.png", "/app/icons/icon-512.png",
  "/app/js/app.js", "/app/js/hlc.js", "/app/js/icons.js", "/app/js/idb.js", "/app/js/labels.js", "/app/js/merge.js",
  "/app/js/photos.js", "/app/js/restore.js", "/app/js/schema.js", "/app/js/store.js", "/app/js/sync.js", "/app/js/values.js",
];

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(CACHE).then((c) => c.addAll(SHELL.map((u) => new Request(u, { cache: "reload" })))).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key.startsWith("patrol-app-") && key !== CACHE) await caches.delete(key);
    await self.clients.claim();
  })());
});

// The shell from the cache (it opens at once on a slow link; a new version comes with a
// new sw.js); the schema from the network first (the server's rules of the day), the
// cached copy when there is none.
self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== location.origin || !url.pathname.startsWith("/app/")) return;
  const key = event.request.mode === "navigate" || url.pathname === "/app/index.html" ? "/app/" : url.pathname;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    const cached = await cache.match(key);
    if (cached && key !== "/app/schema.json") return cached;
    try {
      const response = await fetch(event.request);
      if (response.ok) await cache.put(key, response.clone());
      return response;
    } catch (error) {
      if (cached) return cached;
      throw error;
    }
  })());
});
