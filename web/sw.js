// Service worker: the app shell, so the page opens when the server is unreachable (and can
// say so) or the phone is offline. Network first, so a new version shows at once when the
// server answers; the API and the socket are never cached.

const CACHE = "habla-shell-v8";
const SHELL = [
  "./",
  "./index.html",
  "./style.css",
  "./gate.css",
  "./history.css",
  "./study.css",
  "./app.js",
  "./api.js",
  "./dom.js",
  "./history.js",
  "./study.js",
  "./selection.js",
  "./state.js",
  "./render.js",
  "./speech.js",
  "./connection.js",
  "./keep.js",
  "./audio.js",
  "./capture-worklet.js",
  "./manifest.webmanifest",
  "./icons/icon.svg",
  "./icons/icon-192.png",
  "./icons/icon-512.png",
];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

self.addEventListener("fetch", (event) => {
  const request = event.request;
  const url = new URL(request.url);
  const scope = new URL(self.registration.scope);
  if (request.method !== "GET" || url.origin !== scope.origin) return;
  const path = url.pathname.slice(scope.pathname.length);
  if (path.startsWith("api/") || path === "ws") return; // live data: always the network
  event.respondWith(
    fetch(request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(request, copy));
        }
        return response;
      })
      .catch(() =>
        caches
          .match(request, { ignoreSearch: true })
          .then((hit) => hit || (request.mode === "navigate" ? caches.match("./index.html") : undefined))
          .then((hit) => hit || Response.error()),
      ),
  );
});
