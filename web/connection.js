// One session over the gateway's WebSocket (gateway/PROTOCOL.md), kept alive across
// connection drops.
//
// Audio chunks are numbered from the session's `next_chunk_index` and kept on the phone
// until the gateway has taken them: the gateway handles a socket's frames in order, so its
// `pong` to a `ping` sent after chunk k means chunks up to k are in the bus, and those are
// dropped. When the socket drops, chunks keep collecting; the next socket resumes with
// `session_id`, `last_event_id` (no event twice, none missing) and `next_chunk_index` (the
// first chunk not known to be taken) and resends from there. A chunk that did arrive
// before the drop is sent again with the same index, and the gateway stores it once.

const PING_MS = 2000;
const DEAD_AFTER_MS = 20000; // no pong for this long: the socket is dead, make a new one
const MAX_BUFFERED_BYTES = 512 * 1024; // socket send buffer above which the phone holds chunks
const BACKOFF_MS = [500, 1000, 2000, 4000, 8000, 10000];
// Offline, chunks are kept up to this much audio (8 kB per 250 ms: about 58 MB an hour);
// older ones go first.
const MAX_KEPT_CHUNKS = 4 * 60 * 60;

export class Link {
  /**
   * @param {object} o
   * @param {string} o.url ws(s)://host/ws
   * @param {string} o.token
   * @param {{direction: string, mode: string, speak?: string, topic?: string, title?: string}} o.settings
   *   (`topic` is sent in practice mode only)
   * @param {(frame: object) => void} o.onEvent every event frame of the session
   * @param {(status: object) => void} o.onStatus connection state changed
   * @param {(ready: object) => void} [o.onReady]
   * @param {(error: object) => void} [o.onError] error frames that do not end the link
   * @param {() => void} [o.onUnauthorized]
   * @param {import("./keep.js").Keep} [o.keep] where chunks wait for the server across reloads
   * @param {{sessionId: string, base: number | null, chunks: ArrayBuffer[]}} [o.resume] a
   *   session recorded before a reload, with the chunks kept for it (the first has index `base`)
   */
  constructor(o) {
    this.o = o;
    this.keep = o.keep || null;
    this.keptTo = null; // chunks of this session below this index are in `keep`
    this.settings = { ...o.settings };
    this.sessionId = null;
    this.lastEventId = null;
    this.resumed = 0; // how many times a new socket resumed the session
    this.chunks = []; // ArrayBuffers not yet known to be in the bus; chunks[0] has index `base`
    this.base = null; // index of chunks[0]; null until the first `ready`
    this.dropped = 0; // chunks lost to MAX_KEPT_CHUNKS
    this.sent = 0; // how many of `chunks` went out on the current socket
    this.pings = []; // [{mark, at}]: chunk index every chunk before which had been sent
    this.ws = null;
    this.ready = false;
    this.state = "idle"; // idle | connecting | live | waiting | unauthorized | closed
    this.failures = 0;
    this.ending = false; // session.end wanted after the last chunk
    this.endSent = false;
    this.closed = false;
    this.timer = null;
    this.pinger = null;
    this.pendingSettings = null;
    this.onOnline = () => this.state === "waiting" && this.connect();
    window.addEventListener("online", this.onOnline);
    if (o.resume) {
      this.sessionId = o.resume.sessionId;
      this.base = o.resume.chunks.length ? o.resume.base : null;
      this.chunks = [...o.resume.chunks];
      this.keptTo = this.base === null ? null : this.base + this.chunks.length;
    }
  }

  /** Keep the held chunks from index `from` on (those not kept yet) in IndexedDB. */
  persist(from) {
    if (!this.keep || !this.sessionId || this.base === null) return;
    const start = Math.max(from, this.base);
    const pending = this.chunks.slice(start - this.base);
    if (pending.length) this.keep.put(this.sessionId, start, pending);
    this.keptTo = this.base + this.chunks.length;
  }

  /** Seconds of audio held on the phone, not yet known to be on the server. */
  get bufferedSeconds() {
    return (this.chunks.length * 250) / 1000;
  }

  status() {
    return {
      state: this.state,
      sessionId: this.sessionId,
      bufferedSeconds: this.bufferedSeconds,
      failures: this.failures,
      dropped: this.dropped,
    };
  }

  setState(state) {
    this.state = state;
    this.o.onStatus(this.status());
  }

  connect() {
    if (this.closed || this.state === "unauthorized") return;
    clearTimeout(this.timer);
    this.teardown();
    const ws = new WebSocket(`${this.o.url}?token=${encodeURIComponent(this.o.token)}`);
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.ready = false;
    this.sent = 0;
    this.pings = [];
    this.setState("connecting");
    ws.onopen = () => ws.send(JSON.stringify(this.startFrame()));
    ws.onmessage = (e) => this.onMessage(ws, e.data);
    ws.onclose = (e) => this.onClose(ws, e);
    ws.onerror = () => {}; // onclose follows with the code
  }

  startFrame() {
    const frame = {
      type: "session.start",
      codec: "pcm16",
      sample_rate: 16000,
      direction: this.settings.direction,
      mode: this.settings.mode,
      source: "live",
    };
    if (this.settings.speak) frame.speak = this.settings.speak;
    if (this.settings.mode === "practice" && typeof this.settings.topic === "string") frame.topic = this.settings.topic;
    if (this.sessionId) {
      frame.session_id = this.sessionId;
      if (this.lastEventId) frame.last_event_id = this.lastEventId;
      if (this.base !== null) frame.next_chunk_index = this.base;
    } else if (this.settings.title) {
      frame.title = this.settings.title;
    }
    return frame;
  }

  onMessage(ws, data) {
    if (ws !== this.ws || typeof data !== "string") return;
    let msg;
    try {
      msg = JSON.parse(data);
    } catch {
      return;
    }
    switch (msg.type) {
      case "ready":
        this.onReadyFrame(msg);
        break;
      case "event":
        this.lastEventId = msg.id;
        this.o.onEvent(msg);
        break;
      case "pong":
        this.onPong();
        break;
      case "busy":
        this.retry((msg.retry_after || 5) * 1000);
        break;
      case "error":
        if (msg.code === "unauthorized") {
          this.unauthorized();
        } else if (this.o.onError) {
          this.o.onError(msg);
        }
        break;
      default:
        break;
    }
  }

  onReadyFrame(msg) {
    const same = this.sessionId === msg.session_id;
    if (this.sessionId && !same) {
      // the gateway no longer knew the session: the held audio goes into the new one
      this.lastEventId = null;
      if (this.o.onError) {
        this.o.onError({ code: "session_lost", message: "The server had lost the session; a new one started." });
      }
    }
    if (same) this.resumed++;
    if (this.keep && this.sessionId && (!same || this.base !== msg.next_chunk_index)) {
      this.keep.clear(this.sessionId); // kept under other indices: keep them again below
      this.keptTo = null;
    }
    this.sessionId = msg.session_id;
    this.base = msg.next_chunk_index;
    if (msg.ended) {
      // the end arrived, so did every chunk before it
      this.chunks = [];
      this.endSent = true;
      if (this.keep) this.keep.clear(this.sessionId);
    } else {
      this.persist(this.keptTo === null ? this.base : this.keptTo);
    }
    if (!msg.ended && this.endSent) {
      this.endSent = false; // the end was lost with the socket: send it again after the chunks
    }
    this.ready = true;
    this.failures = 0;
    if (this.pendingSettings) {
      this.send({ type: "settings", ...this.pendingSettings });
      this.pendingSettings = null;
    }
    this.setState("live");
    if (this.o.onReady) this.o.onReady(msg);
    clearInterval(this.pinger);
    this.pinger = setInterval(() => this.ping(), PING_MS);
    this.flush();
  }

  onClose(ws, e) {
    if (ws !== this.ws) return;
    if (e.code === 4401) {
      this.unauthorized();
      return;
    }
    this.drop();
  }

  /** The socket is gone (or dead): hold the audio and try again after a back-off. */
  drop() {
    this.teardown();
    if (this.closed) {
      this.setState("closed");
      return;
    }
    this.failures++;
    this.retry(BACKOFF_MS[Math.min(this.failures - 1, BACKOFF_MS.length - 1)] * (0.8 + Math.random() * 0.4));
  }

  retry(delay) {
    this.teardown();
    if (this.closed) return;
    this.setState("waiting");
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  unauthorized() {
    this.closed = true;
    this.teardown();
    this.setState("unauthorized");
    if (this.o.onUnauthorized) this.o.onUnauthorized();
  }

  teardown() {
    clearInterval(this.pinger);
    const ws = this.ws;
    this.ws = null;
    this.ready = false;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      try {
        ws.close(1000);
      } catch {
        // already closing
      }
    }
  }

  send(frame) {
    if (this.ws && this.ready && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  /** One captured chunk (PCM16, 250 ms). */
  push(pcm) {
    if (this.ending) return;
    this.chunks.push(pcm);
    if (this.chunks.length > MAX_KEPT_CHUNKS) {
      this.chunks.shift();
      this.dropped++;
      if (this.base !== null) this.base++;
      this.sent = Math.max(0, this.sent - 1);
      if (this.keep && this.sessionId && this.base !== null) this.keep.dropBelow(this.sessionId, this.base);
    }
    if (this.keptTo !== null) this.persist(this.keptTo);
    if (!this.ready) this.o.onStatus(this.status()); // the audio held offline grows
    this.flush();
  }

  flush() {
    const ws = this.ws;
    if (!ws || !this.ready || ws.readyState !== WebSocket.OPEN) return;
    while (this.sent < this.chunks.length) {
      if (ws.bufferedAmount > MAX_BUFFERED_BYTES) {
        setTimeout(() => this.flush(), 100);
        return;
      }
      ws.send(this.chunks[this.sent]);
      this.sent++;
    }
    if (this.ending && !this.endSent) {
      this.endSent = true;
      ws.send(JSON.stringify({ type: "session.end", reason: "client" }));
      this.ping();
    }
  }

  ping() {
    const ws = this.ws;
    if (!ws || !this.ready || ws.readyState !== WebSocket.OPEN) return;
    const now = Date.now();
    if (this.pings.length && now - this.pings[0].at > DEAD_AFTER_MS) {
      this.drop(); // a silent drop: the phone changed networks
      return;
    }
    this.pings.push({ mark: this.base + this.sent, at: now });
    ws.send(JSON.stringify({ type: "ping" }));
  }

  onPong() {
    const p = this.pings.shift();
    if (!p) return;
    const taken = Math.min(p.mark - this.base, this.chunks.length);
    if (taken > 0) {
      this.chunks.splice(0, taken);
      this.base += taken;
      this.sent -= taken;
      if (this.keep) this.keep.dropBelow(this.sessionId, this.base);
    }
    this.o.onStatus(this.status());
  }

  /** Change direction, mode, speak and/or topic: now if connected, else with the next session.start. */
  changeSettings(change) {
    Object.assign(this.settings, change);
    if (this.endSent) return;
    if (!this.send({ type: "settings", ...change })) {
      this.pendingSettings = { ...(this.pendingSettings || {}), ...change };
    }
  }

  /** A `save` frame; false when not connected (the caller can use REST). */
  save(term) {
    return this.send({ type: "save", ...term });
  }

  /** End the session once every held chunk is sent; events keep coming until close(). */
  end() {
    this.ending = true;
    this.flush();
  }

  close() {
    this.closed = true;
    clearTimeout(this.timer);
    window.removeEventListener("online", this.onOnline);
    this.teardown();
    this.setState("closed");
  }
}
