// Audio the server has not confirmed, kept in IndexedDB so it survives a reload: Android may
// discard a tab in the background, or the user reloads while the connection is down. Each
// chunk is stored under (session id, chunk index) as soon as its index is known and deleted
// once the gateway confirms it (connection.js), so what is here is exactly what may still be
// missing on the server. After a reload app.js resends it into the same session.
//
// Every call is best effort: a browser without IndexedDB (or a private window that refuses
// it) keeps the audio in memory only, as before, and nothing fails.

const DB = "habla";
const STORE = "chunks";

function request(r) {
  return new Promise((resolve, reject) => {
    r.onsuccess = () => resolve(r.result);
    r.onerror = () => reject(r.error);
  });
}

export class Keep {
  constructor() {
    this.db = null;
    this.opening = null;
    this.queue = Promise.resolve(); // writes in order: a delete never overtakes the put before it
  }

  open() {
    if (!this.opening) {
      this.opening = new Promise((resolve) => {
        if (!("indexedDB" in window)) return resolve(null);
        const r = indexedDB.open(DB, 1);
        r.onupgradeneeded = () => r.result.createObjectStore(STORE, { keyPath: ["s", "i"] });
        r.onsuccess = () => resolve(r.result);
        r.onerror = () => resolve(null);
        r.onblocked = () => resolve(null);
      }).then((db) => (this.db = db));
    }
    return this.opening;
  }

  /** Run `work(store)` in a read-write transaction, after the writes queued before it. */
  write(work) {
    this.queue = this.queue
      .then(() => this.open())
      .then(
        (db) =>
          db &&
          new Promise((resolve) => {
            const tx = db.transaction(STORE, "readwrite");
            work(tx.objectStore(STORE));
            tx.oncomplete = tx.onerror = tx.onabort = () => resolve();
          }),
      )
      .catch(() => {});
    return this.queue;
  }

  /** Keep `chunks` (ArrayBuffers) of `sessionId`, the first with index `first`. */
  put(sessionId, first, chunks) {
    return this.write((store) => chunks.forEach((pcm, n) => store.put({ s: sessionId, i: first + n, pcm })));
  }

  /** Forget the chunks of `sessionId` below `index` (the server has them). */
  dropBelow(sessionId, index) {
    return this.write((store) => store.delete(IDBKeyRange.bound([sessionId, -Infinity], [sessionId, index], false, true)));
  }

  /** Forget every chunk of `sessionId`. */
  clear(sessionId) {
    return this.dropBelow(sessionId, Infinity);
  }

  /** The kept chunks of `sessionId`, in index order: [{i, pcm}]. */
  async load(sessionId) {
    await this.queue;
    const db = await this.open();
    if (!db) return [];
    try {
      const store = db.transaction(STORE, "readonly").objectStore(STORE);
      const rows = await request(store.getAll(IDBKeyRange.bound([sessionId, -Infinity], [sessionId, Infinity])));
      return rows.map((r) => ({ i: r.i, pcm: r.pcm }));
    } catch {
      return [];
    }
  }
}
