// Habla speaking out loud: the session's `tts.audio` events (gateway/PROTOCOL.md), played one
// after another in the order they arrive.
//
// Each event is one sentence of a translation or of a practice partner's reply, as a WAV file
// (base64). The sentences of one text come one by one, as the server synthesises them; each is
// decoded (Web Audio's decodeAudioData) as soon as it arrives and played as soon as whatever is
// playing ends, so the first sentence is heard while the next is still being made.
//
// Only live audio plays. A socket that resumes a session (after a dropped connection, after a
// reload) first delivers every event it missed, and speaking those would be speaking the past.
// An event's id is the moment the server published it (a Redis stream id, "<ms>-<n>"), so its
// age on arrival is "phone clock - id time" less the offset between the two clocks; the offset
// is estimated as the smallest such difference seen on any event (live events arrive within
// milliseconds of being published), so the phone's and the server's clocks need not agree. The
// phone's clock here is the page's monotonic one (performance.now() from the page's start), so
// the phone setting its time meanwhile changes nothing.
// Audio older than FRESH_MS on arrival is not played (a short network blip loses nothing; a
// long outage does not make the phone talk about minutes ago), and a session restored after a
// reload (`live: false`) plays nothing at all.
//
// While Habla speaks, the microphone must not hear it (its voice would be transcribed and, in
// practice mode, answered): `silencing()` says whether a chunk captured now may hold Habla's
// voice (while playing, and HANGOVER_MS after: a chunk holds the last 250 ms, plus the room's
// echo), and app.js sends silence in its place. A sentence the server could not synthesise
// (`error`, no audio) is said by the browser's own speech synthesis instead, when it has one.
// `stop()` silences what is playing and what is queued, and the later sentences of those texts.

export const FRESH_MS = 6000;
export const HANGOVER_MS = 400;
const LOG_MAX = 200;
const RESUME_WAIT_MS = 300;
const VOICE_LANG = { en: "en-US", es: "es-ES" };

/** The time (epoch ms) in a Redis stream id ("1700000000000-3"), or NaN. */
export function idTime(id) {
  const ms = Number(String(id || "").split("-")[0]);
  return Number.isFinite(ms) && ms > 0 ? ms : NaN;
}

function base64Bytes(b64) {
  const text = atob(b64);
  const bytes = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) bytes[i] = text.charCodeAt(i);
  return bytes.buffer;
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Epoch ms by the page's monotonic clock: steady even if the phone's time is set meanwhile. */
export const clock = () => performance.timeOrigin + performance.now();

export class Voice {
  /**
   * @param {{onChange?: (voice: Voice) => void, onBlocked?: () => void}} hooks `onChange`: it
   *   started or stopped speaking, or moved to another text; `onBlocked`: the browser would not
   *   start audio (no user gesture yet)
   */
  constructor(hooks = {}) {
    this.hooks = hooks;
    this.ctx = null;
    this.queue = []; // items to play; queue[0] is `current` while it plays
    this.current = null;
    this.source = null; // the AudioBufferSourceNode playing
    this.finish = null; // ends the item playing now
    this.offset = Infinity; // smallest (arrival - publication) seen, in ms: the clocks' offset
    this.endedAt = -Infinity; // performance.now() when the last item stopped sounding
    this.stopped = new Set(); // spoken ids the user stopped: their later sentences stay silent
    this.played = []; // read-only log for the tests and debugging: {id, spokenId, chunk, via, ...}
    this.skipped = []; // {id, spokenId, chunk, why}
    this.running = false;
  }

  /** The Web Audio context, made on first use (a context made outside a user gesture starts suspended). */
  context() {
    if (!this.ctx) {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (!Ctx) return null;
      try {
        this.ctx = new Ctx({ latencyHint: "playback" });
      } catch {
        return null;
      }
    }
    return this.ctx;
  }

  /** Call from a user gesture (Start, the speaker button): lets audio play on this page. */
  unlock() {
    const ctx = this.context();
    if (ctx && ctx.state === "suspended") ctx.resume().catch(() => {});
  }

  /** Every event frame of a session passes here: the clocks' offset estimate. */
  note(id, now = clock()) {
    const t = idTime(id);
    if (!Number.isNaN(t)) this.offset = Math.min(this.offset, now - t);
  }

  /** How long ago (ms, estimated) the server published the event with this id. */
  age(id, now = clock()) {
    const t = idTime(id);
    if (Number.isNaN(t) || !Number.isFinite(this.offset)) return Infinity;
    return now - t - this.offset;
  }

  get speaking() {
    return Boolean(this.current);
  }

  /** Whether a microphone chunk captured now may hold Habla's own voice. */
  silencing(now = performance.now()) {
    return this.speaking || now - this.endedAt < HANGOVER_MS;
  }

  /**
   * A `tts.audio` event frame ({id, kind, data}). `live`: it came on the socket of a session
   * this phone records (not one restored after a reload); `muted`: the user turned speaking
   * off (audio made before the server heard of it still comes).
   * Returns "queued", or why it is not played: replayed | off | stale | stopped | empty.
   */
  offer(frame, { live = true, muted = false } = {}) {
    const d = frame.data || {};
    const item = {
      id: frame.id || "",
      spokenId: d.spoken_id || "",
      spokenKind: d.spoken_kind || "",
      utteranceId: d.utterance_id || "",
      chunk: d.chunk ?? 0,
      last: Boolean(d.last),
      text: d.text || "",
      language: d.language || "",
      error: d.error || "",
      audio: null, // Promise<AudioBuffer>
    };
    let why = "";
    if (!live) why = "replayed";
    else if (muted) why = "off";
    else if (this.age(item.id) > FRESH_MS) why = "stale";
    else if (item.spokenId && this.stopped.has(item.spokenId)) why = "stopped";
    else if (!d.audio && !item.text) why = "empty";
    if (why) {
      this.skip(item, why);
      return why;
    }
    if (d.audio) item.audio = this.decode(d.audio);
    this.queue.push(item);
    this.pump();
    return "queued";
  }

  decode(b64) {
    const ctx = this.context();
    if (!ctx) return Promise.reject(new Error("this browser has no Web Audio"));
    let bytes;
    try {
      bytes = base64Bytes(b64);
    } catch (e) {
      return Promise.reject(e);
    }
    const decoded = ctx.decodeAudioData(bytes);
    decoded.catch(() => {}); // reported when its turn comes
    return decoded;
  }

  /** Stop speaking: what plays now, what is queued, and the rest of those texts when it comes. */
  stop() {
    const dropped = this.queue.splice(0);
    for (const item of dropped) {
      if (item.spokenId) this.stopped.add(item.spokenId);
      if (item !== this.current) this.skip(item, "stopped");
    }
    if (this.source) {
      try {
        this.source.stop();
      } catch {
        // not started yet
      }
    }
    if (this.current && !this.current.audio && "speechSynthesis" in window) speechSynthesis.cancel();
    if (this.finish) this.finish();
  }

  async pump() {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length) {
        const item = this.queue[0];
        if (this.current !== item) {
          this.current = item;
          this.changed();
        }
        await this.play(item);
        if (this.queue[0] === item) this.queue.shift();
        this.endedAt = performance.now();
      }
    } finally {
      this.current = null;
      this.running = false;
      this.endedAt = performance.now();
      this.changed();
    }
  }

  async play(item) {
    if (!item.audio) {
      await this.sayInBrowser(item);
      return;
    }
    let buffer;
    try {
      buffer = await item.audio;
    } catch {
      this.skip(item, "undecodable");
      return;
    }
    if (this.queue[0] !== item) return; // stopped while decoding
    const ctx = this.ctx;
    if (ctx.state !== "running") await Promise.race([ctx.resume().catch(() => {}), sleep(RESUME_WAIT_MS)]);
    if (ctx.state !== "running") {
      this.skip(item, "blocked");
      if (this.hooks.onBlocked) this.hooks.onBlocked();
      return;
    }
    this.log(item, "audio");
    await new Promise((resolve) => {
      const source = ctx.createBufferSource();
      source.buffer = buffer;
      source.connect(ctx.destination);
      let guard = 0;
      const done = () => {
        clearTimeout(guard);
        if (this.source === source) this.source = null;
        if (this.finish === done) this.finish = null;
        resolve();
      };
      guard = setTimeout(done, buffer.duration * 1000 + 1500); // onended never came
      source.onended = done;
      this.source = source;
      this.finish = done;
      source.start();
    });
  }

  /** A sentence the server could not synthesise, in the browser's own voice (when it has one). */
  async sayInBrowser(item) {
    if (!("speechSynthesis" in window) || !item.text) {
      this.skip(item, "unsynthesised");
      return;
    }
    this.log(item, "browser");
    await new Promise((resolve) => {
      const u = new SpeechSynthesisUtterance(item.text);
      u.lang = VOICE_LANG[item.language] || item.language || "es-ES";
      const voice = speechSynthesis.getVoices().find((v) => v.lang && v.lang.toLowerCase().startsWith(item.language));
      if (voice) u.voice = voice;
      let guard = 0;
      const done = () => {
        clearTimeout(guard);
        if (this.finish === done) this.finish = null;
        resolve();
      };
      guard = setTimeout(done, 1500 + item.text.length * 90); // no voice installed: no end event
      u.onend = u.onerror = done;
      this.finish = done;
      speechSynthesis.speak(u);
    });
  }

  log(item, via) {
    this.played.push({
      id: item.id,
      spokenId: item.spokenId,
      spokenKind: item.spokenKind,
      utteranceId: item.utteranceId,
      chunk: item.chunk,
      via,
      at: Date.now(),
    });
    if (this.played.length > LOG_MAX) this.played.shift();
  }

  skip(item, why) {
    this.skipped.push({ id: item.id, spokenId: item.spokenId, chunk: item.chunk, why });
    if (this.skipped.length > LOG_MAX) this.skipped.shift();
  }

  changed() {
    if (this.hooks.onChange) this.hooks.onChange(this);
  }
}
