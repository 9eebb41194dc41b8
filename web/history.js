// The History page: past conversations (#/history) and one conversation (#/history/<id>).
//
// The list comes from GET /api/sessions, newest first, a page at a time. A conversation is its
// bilingual transcript (GET /api/sessions/{id}/transcript?format=json, the speakers' names and
// colours included) drawn like the live cards: speaker chip, the corrected source with its
// idioms underlined, the translation under it. Its recorded audio replays line by line with the
// playing line highlighted (see Player); words selected in a line can be saved to the study deck
// (selection.js); the transcript downloads as Markdown or SRT; the conversation can be deleted
// for good after a confirmation. Everything is read over the REST API with the phone's token,
// media as blobs (an <audio> element cannot send the Authorization header).

import { ApiError } from "./api.js";
import { el } from "./dom.js";
import { selectedTerm, watchSelection } from "./selection.js";
import { sourceRuns } from "./state.js";

const PAGE_SIZE = 20;
const DIRECTIONS = { "es-en": "ES→EN", "en-es": "EN→ES", auto: "Auto" };
const DIRECTION_WORDS = { "es-en": "Spanish to English", "en-es": "English to Spanish", auto: "either language" };
const MODES = { conversation: "Chat", classroom: "Class", practice: "Practice" };
const MODE_WORDS = { conversation: "conversation", classroom: "classroom", practice: "speaking practice" };
const SPEEDS = [1, 0.75, 0.5]; // slower, for a learner following along
const enc = encodeURIComponent;

// --- formatting ----------------------------------------------------------------------------

/** "0:07", "12:45", "1:02:03": a time offset in the conversation. */
function clock(ms) {
  const s = Math.max(0, Math.floor((ms || 0) / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

/** "under a minute", "12 min", "1 h 5 min". */
function duration(ms) {
  const min = Math.round(ms / 60000);
  if (min < 1) return "under a minute";
  if (min < 60) return `${min} min`;
  return `${Math.floor(min / 60)} h ${min % 60 ? `${min % 60} min` : ""}`.trim();
}

/** How long a session lasted: from its start and end, else how much audio it kept. */
function sessionLength(s) {
  const start = Date.parse(s.started_at);
  const end = Date.parse(s.ended_at);
  if (Number.isFinite(start) && Number.isFinite(end) && end >= start) return duration(end - start);
  if (s.audio_ms > 0) return `${duration(s.audio_ms)} recorded`;
  return "";
}

function sameDay(a, b) {
  return a.getFullYear() === b.getFullYear() && a.getMonth() === b.getMonth() && a.getDate() === b.getDate();
}

/** "Today, 18:05", "Yesterday, 09:12", "Tue 14 Oct, 18:05" (the year when not this one). */
function when(iso) {
  const d = new Date(iso);
  if (!iso || Number.isNaN(d.getTime())) return "Unknown date";
  const now = new Date();
  const time = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  const yesterday = new Date(now);
  yesterday.setDate(now.getDate() - 1);
  if (sameDay(d, now)) return `Today, ${time}`;
  if (sameDay(d, yesterday)) return `Yesterday, ${time}`;
  const date = d.toLocaleDateString([], {
    weekday: "short",
    day: "numeric",
    month: "short",
    year: d.getFullYear() === now.getFullYear() ? undefined : "numeric",
  });
  return `${date}, ${time}`;
}

function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

function sessionName(s) {
  return (s.title || "").trim() || `Conversation, ${when(s.started_at)}`;
}

/** A file name for an export: habla-2025-10-14-clase-de-espanol.md */
function fileName(s, ext) {
  const d = new Date(s.started_at);
  const two = (n) => String(n).padStart(2, "0");
  const day = Number.isNaN(d.getTime()) ? "" : `${d.getFullYear()}-${two(d.getMonth() + 1)}-${two(d.getDate())}-`;
  const slug =
    (s.title || "")
      .normalize("NFD")
      .replace(/[\u0300-\u036f]/g, "")
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, "-")
      .replace(/^-|-$/g, "")
      .slice(0, 40) || String(s.session_id).replace(/[^A-Za-z0-9_-]/g, "_");
  return `habla-${day}${slug}.${ext}`;
}

/** [source, target] language of a transcript line. */
function lineLanguages(line, direction) {
  const t = line.translation;
  if (t && t.source_language && t.target_language) return [t.source_language, t.target_language];
  if (direction === "en-es" || (direction === "auto" && line.language === "en")) return ["en", "es"];
  return ["es", "en"];
}

function speakerChip(name, color) {
  const chip = el("span", { class: "speaker" }, el("span", { class: "dot", "aria-hidden": "true" }), name);
  if (color) chip.style.setProperty("--speaker", color);
  return chip;
}

const reducedMotion = () => window.matchMedia("(prefers-reduced-motion: reduce)").matches;

// --- replay --------------------------------------------------------------------------------

/**
 * Plays a session's recorded audio line by line through one <audio> element.
 *
 * A line's audio is GET /api/sessions/{id}/utterances/{uid}/audio (Ogg/Opus, fetched as a
 * blob). Turns of one segmented utterance (part > 0 has parent_id) share their utterance's
 * recording, so clips are keyed by the segmented utterance: a later turn seeks to its
 * start_ms - X-Audio-Start-Ms, and a turn followed by another turn of the same recording stops
 * at its own end_ms (or rather, playback runs on and the next turn is highlighted: no gap).
 * The next line's clip is fetched while the current one plays; clips behind are revoked.
 * A line whose audio is not stored (404) is skipped, and said so once, quietly.
 */
class Player {
  /**
   * @param {import("./api.js").Api} api
   * @param {HTMLAudioElement} audio
   * @param {{line: (i: number) => void, state: () => void, skipped: (i: number) => void,
   *   note: (text: string) => void, progress: (fraction: number) => void}} hooks
   */
  constructor(api, audio, hooks) {
    this.api = api;
    this.audio = audio;
    this.hooks = hooks;
    this.sessionId = "";
    this.lines = [];
    this.clips = new Map(); // clip key -> Promise<{key, url, startMs, endMs} | null>
    this.index = -1; // the line being played (or paused, or loading)
    this.active = false; // the user wants sound: playing, or fetching the next clip
    this.gen = 0; // bumped by every new start, so a stale fetch gives up
    this.key = ""; // the clip loaded into the audio element
    this.started = -1; // the line whose clip has started (what a resume continues)
    this.from = 0; // where the current line starts in its clip (s)
    this.stopAt = null; // where the current line ends in its clip, when another turn follows (s)
    this.rate = 1;
    audio.addEventListener("timeupdate", () => this.tick());
    audio.addEventListener("ended", () => this.advance());
    audio.addEventListener("play", () => hooks.state());
    audio.addEventListener("pause", () => hooks.state());
    audio.addEventListener("error", () => {
      if (!this.active || !audio.getAttribute("src")) return;
      hooks.note("This line's recording could not be played; going on with the next.");
      this.advance();
    });
  }

  /** A new session's lines: [{utterance_id, parent_id, part, start_ms, end_ms}]. */
  load(sessionId, lines) {
    this.reset();
    this.sessionId = sessionId;
    this.lines = lines;
  }

  get playing() {
    return this.active;
  }

  setRate(rate) {
    this.rate = rate;
    this.audio.defaultPlaybackRate = rate; // a new clip starts at it too
    this.audio.playbackRate = rate;
  }

  /** Play / pause for the whole session: resume where it was, else from the first line. */
  toggle() {
    if (this.active) this.pause();
    else if (this.index >= 0 && this.started === this.index) this.resume();
    else this.playFrom(Math.max(0, this.index));
  }

  /** Play / pause from a line's own button. */
  toggleLine(i) {
    if (i === this.index && this.active) this.pause();
    else if (i === this.index && this.started === i) this.resume();
    else this.playFrom(i);
  }

  pause() {
    this.active = false;
    this.gen++; // a clip still being fetched must not start
    this.audio.pause();
    this.hooks.state();
  }

  async resume() {
    this.active = true;
    this.hooks.state();
    try {
      await this.audio.play();
    } catch (e) {
      this.refused(e);
    }
  }

  /** Play line `i`, then the next ones; lines without audio are skipped. */
  async playFrom(i) {
    const gen = ++this.gen;
    this.active = true;
    this.hooks.state();
    for (; i < this.lines.length; i++) {
      this.index = i;
      this.hooks.line(i); // highlight it at once, while its clip comes
      this.evict(i);
      let clip;
      try {
        clip = await this.clip(i);
      } catch (e) {
        if (gen !== this.gen) return;
        this.active = false;
        this.hooks.state();
        this.hooks.note(`Could not load the recording: ${e.message || e}`);
        return;
      }
      if (gen !== this.gen) return;
      this.prefetch(i + 1);
      if (clip) {
        await this.start(i, clip, gen);
        return;
      }
      this.hooks.skipped(i);
    }
    this.finish();
  }

  async start(i, clip, gen) {
    const line = this.lines[i];
    const next = this.lines[i + 1];
    // a later turn starts inside its utterance's recording
    this.from = line.part > 0 && Number.isFinite(line.start_ms) ? Math.max(0, (line.start_ms - clip.startMs) / 1000) : 0;
    this.stopAt =
      next && keyOf(next) === clip.key && Number.isFinite(line.end_ms) ? (line.end_ms - clip.startMs) / 1000 : null;
    const audio = this.audio;
    if (this.key !== clip.key) {
      this.key = clip.key;
      audio.src = clip.url; // resets playbackRate to defaultPlaybackRate (the chosen speed)
      if (this.from > 0) {
        await loaded(audio); // a seek needs the metadata
        if (gen !== this.gen) return;
        audio.currentTime = this.from;
      }
    } else if (Math.abs(audio.currentTime - this.from) > 0.4) {
      audio.currentTime = this.from; // a jump back, or to another turn; the next turn needs none
    }
    this.started = i;
    try {
      if (audio.paused) await audio.play();
    } catch (e) {
      if (gen === this.gen) this.refused(e);
    }
  }

  refused(e) {
    if (e && e.name === "AbortError") return; // a newer start took over
    this.active = false;
    this.hooks.state();
    this.hooks.note(`The browser did not play the recording: ${(e && e.message) || e}`);
  }

  tick() {
    const audio = this.audio;
    if (this.index < 0) return;
    const end = this.stopAt ?? audio.duration;
    if (Number.isFinite(end) && end > this.from) {
      this.hooks.progress(Math.min(1, Math.max(0, (audio.currentTime - this.from) / (end - this.from))));
    }
    if (this.active && this.stopAt !== null && audio.currentTime >= this.stopAt - 0.05) {
      this.stopAt = null;
      this.advance(); // the next turn of the same recording: it plays on, no seek
    }
  }

  advance() {
    if (!this.active) return;
    if (this.index + 1 < this.lines.length) this.playFrom(this.index + 1);
    else this.finish();
  }

  finish() {
    this.gen++;
    this.active = false;
    this.index = -1;
    this.key = "";
    this.started = -1;
    this.audio.pause();
    this.audio.removeAttribute("src");
    this.audio.load();
    this.hooks.line(-1);
    this.hooks.state();
  }

  /** The clip of line `i` (fetched once per segmented utterance), or null when none is stored. */
  clip(i) {
    const line = this.lines[i];
    const key = keyOf(line);
    let clip = this.clips.get(key);
    if (!clip) {
      const path = `api/sessions/${enc(this.sessionId)}/utterances/${enc(line.utterance_id)}/audio`;
      clip = this.api.fetch(path).then(
        async (r) => ({
          key,
          url: URL.createObjectURL(await r.blob()),
          startMs: Number(r.headers.get("X-Audio-Start-Ms")) || 0,
          endMs: Number(r.headers.get("X-Audio-End-Ms")) || 0,
        }),
        (e) => {
          if (e instanceof ApiError && e.status === 404) return null;
          this.clips.delete(key); // a network error: try again next time
          throw e;
        },
      );
      this.clips.set(key, clip);
    }
    return clip;
  }

  prefetch(i) {
    if (i < this.lines.length) this.clip(i).catch(() => {}); // its own play reports errors
  }

  /** Revoke the clips of lines other than `i`, the two after it and the one loaded (a long
   * session stays light); the line being prefetched is one of the two. */
  evict(i) {
    const keep = new Set(this.lines.slice(i, i + 3).map(keyOf));
    if (this.key) keep.add(this.key);
    for (const [key, clip] of this.clips) {
      if (keep.has(key)) continue;
      this.clips.delete(key);
      revoke(clip);
    }
  }

  /** Stop, and free every clip. */
  reset() {
    this.gen++;
    this.active = false;
    this.index = -1;
    this.key = "";
    this.started = -1;
    this.stopAt = null;
    this.audio.pause();
    this.audio.removeAttribute("src");
    this.audio.load();
    for (const clip of this.clips.values()) revoke(clip);
    this.clips.clear();
  }
}

/** Resolves once the element knows its media's duration (or cannot load it). */
function loaded(audio) {
  if (audio.readyState >= HTMLMediaElement.HAVE_METADATA) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      audio.removeEventListener("loadedmetadata", done);
      audio.removeEventListener("error", done);
      resolve();
    };
    audio.addEventListener("loadedmetadata", done);
    audio.addEventListener("error", done);
  });
}

function keyOf(line) {
  return line.parent_id || line.utterance_id;
}

function revoke(clip) {
  clip.then((c) => c && URL.revokeObjectURL(c.url)).catch(() => {});
}

// --- the page ------------------------------------------------------------------------------

/**
 * The History page. `show("")` shows the list, `show(id)` one conversation; `hide()` stops
 * playback (the page is left).
 *
 * @param {HTMLElement} root the page's <section>
 * @param {{api: import("./api.js").Api, toast: (text: string) => void, state: object}} ctx
 */
export function createHistory(root, ctx) {
  const { api, toast } = ctx;
  const audio = el("audio", { class: "history-audio", preload: "auto" });
  audio.hidden = true;
  const page = {
    request: 0, // bumped by every show(): answers to older ones are dropped
    sessions: [], // the list as loaded so far
    more: false,
    deleted: new Set(), // deleted here: hidden at once, before the recorder has applied it
    lastOpened: "",
    stopSelection: null,
    view: null, // the open conversation's parts (see showSession)
    saved: new Set(), // idioms saved here: `${utterance id} ${text}`
  };

  const player = new Player(api, audio, {
    line: (i) => markPlaying(i),
    state: () => syncPlayer(),
    skipped: (i) => {
      const v = page.view;
      if (!v) return;
      const node = v.nodes[i];
      if (!node.querySelector(".no-audio")) {
        node.querySelector(".hline-play").before(el("span", { class: "flag no-audio", text: "no recording" }));
      }
      v.status.textContent = `Line ${i + 1} has no stored recording; skipped.`;
    },
    note: (text) => {
      if (page.view) page.view.status.textContent = text;
    },
    progress: (fraction) => {
      if (page.view) page.view.bar.style.transform = `scaleX(${fraction.toFixed(3)})`;
    },
  });

  function clear() {
    player.reset();
    if (page.stopSelection) page.stopSelection();
    page.stopSelection = null;
    page.view = null;
    root.replaceChildren();
  }

  // --- the list ---------------------------------------------------------------------------

  async function showList() {
    const request = ++page.request;
    clear();
    const list = el("ul", { class: "session-list", "aria-label": "Past conversations" });
    const heading = el("h2", { class: "history-heading", tabindex: "-1", text: "Past conversations" });
    const note = el("p", { class: "history-note", role: "status" });
    const more = el("button", { type: "button", class: "history-more", text: "Load more" });
    more.hidden = true;
    const scroll = el("div", { class: "history-scroll" }, heading, note, list, more);
    root.append(el("div", { class: "history" }, scroll));

    const draw = () => {
      const sessions = page.sessions.filter((s) => !page.deleted.has(s.session_id));
      list.replaceChildren(...sessions.map(row));
      more.hidden = !page.more;
      if (!sessions.length) {
        note.replaceChildren(
          el("strong", { text: "No conversations yet." }),
          " Start one on the Live page: every conversation is kept here with its translation and recording, to read and replay later.",
        );
      } else {
        note.textContent = "";
      }
    };

    const load = async (offset) => {
      // one more than a page: whether there is a next page, without a count
      const r = await api.json(`api/sessions?limit=${PAGE_SIZE + 1}&offset=${offset}`);
      if (request !== page.request) return false;
      const got = r.sessions || [];
      page.more = got.length > PAGE_SIZE;
      const fresh = got.slice(0, PAGE_SIZE);
      // a session started meanwhile shifts the pages by one: skip what is already shown
      const known = new Set(page.sessions.map((s) => s.session_id));
      page.sessions = offset ? [...page.sessions, ...fresh.filter((s) => !known.has(s.session_id))] : fresh;
      return true;
    };

    more.addEventListener("click", async () => {
      more.disabled = true;
      more.textContent = "Loading…";
      const first = page.sessions.length;
      try {
        if (await load(page.sessions.length)) {
          draw();
          list.children[first]?.querySelector("a")?.focus(); // the first new one, for a keyboard
        }
      } catch (e) {
        toast(`Could not load more: ${e.message}`);
      } finally {
        more.disabled = false;
        more.textContent = "Load more";
      }
    });

    if (page.sessions.length) draw(); // what was there, while it refreshes
    else {
      note.textContent = "Loading your conversations…";
      list.setAttribute("aria-busy", "true");
    }
    try {
      // the first page again: the counts change while a session is recorded
      if (!(await load(0))) return;
    } catch (e) {
      if (request !== page.request) return;
      list.removeAttribute("aria-busy");
      const retry = el("button", { type: "button", class: "history-retry", text: "Try again" });
      retry.addEventListener("click", () => showList());
      note.replaceChildren(`Could not load your conversations. ${e.message} `, retry);
      return;
    }
    list.removeAttribute("aria-busy");
    draw();
    // back from a conversation: the keyboard goes on from where it was
    const back = page.lastOpened && list.querySelector(`a[data-session-id="${CSS.escape(page.lastOpened)}"]`);
    if (back) {
      back.focus({ preventScroll: true });
      back.scrollIntoView({ block: "nearest" });
    }
    page.lastOpened = "";
  }

  function row(s) {
    const name = sessionName(s);
    const facts = [sessionLength(s), plural(s.lines ?? s.transcribed ?? 0, "line", "lines")].filter(Boolean);
    const chips = el(
      "span",
      { class: "session-chips" },
      s.direction
        ? el("span", { class: "chip", title: DIRECTION_WORDS[s.direction] || s.direction, text: DIRECTIONS[s.direction] || s.direction })
        : null,
      s.mode ? el("span", { class: "chip", title: MODE_WORDS[s.mode] || s.mode, text: MODES[s.mode] || s.mode }) : null,
      s.ended_at ? null : el("span", { class: "chip chip-live", text: "not ended" }),
    );
    const link = el(
      "a",
      { class: "session-row", href: `#/history/${enc(s.session_id)}`, "data-session-id": s.session_id },
      el(
        "span",
        { class: "session-main" },
        el("span", { class: "session-name", text: name }),
        s.title ? el("span", { class: "session-when", text: when(s.started_at) }) : null,
        el("span", { class: "session-facts" }, el("span", { text: facts.join(" · ") }), chips),
      ),
      el("span", { class: "chevron", "aria-hidden": "true", text: "›" }),
    );
    return el("li", {}, link);
  }

  // --- one conversation -----------------------------------------------------------------

  async function showSession(id) {
    const request = ++page.request;
    clear();
    page.lastOpened = id;
    const backButton = el(
      "button",
      { type: "button", class: "history-back" },
      el("span", { "aria-hidden": "true", text: "‹ " }),
      "Conversations",
    );
    backButton.setAttribute("aria-label", "Back to all conversations");
    backButton.addEventListener("click", () => {
      location.hash = "#/history";
    });
    const bar = el("div", { class: "history-bar" }, backButton);
    const scroll = el("div", { class: "history-scroll" });
    const loading = el("p", { class: "history-note", role: "status", text: "Loading the conversation…" });
    scroll.append(loading);
    root.append(el("div", { class: "history history-session" }, bar, scroll));

    let session;
    let transcript;
    try {
      [session, transcript] = await Promise.all([
        api.json(`api/sessions/${enc(id)}`),
        api.json(`api/sessions/${enc(id)}/transcript?format=json`),
      ]);
    } catch (e) {
      if (request !== page.request) return;
      const gone = e instanceof ApiError && e.status === 404;
      const retry = gone ? null : el("button", { type: "button", class: "history-retry", text: "Try again" });
      retry?.addEventListener("click", () => showSession(id));
      loading.replaceChildren(
        el("strong", { text: gone ? "This conversation is not here. " : "Could not load the conversation. " }),
        e.message,
        retry ? " " : "",
        retry || "",
      );
      backButton.focus();
      return;
    }
    if (request !== page.request) return;
    renderSession(scroll, session, transcript.utterances || []);
  }

  function renderSession(scroll, s, utterances) {
    const name = sessionName(s);
    const lines = utterances.filter((u) => (u.text || "").trim() && !u.dropped);
    const title = el("h2", { class: "session-title", tabindex: "-1", text: name });
    const facts = [
      s.title ? when(s.started_at) : null,
      sessionLength(s),
      plural(lines.length, "line", "lines"),
      DIRECTIONS[s.direction] ? `${DIRECTIONS[s.direction]} · ${MODES[s.mode] || s.mode || ""}` : null,
    ].filter(Boolean);
    const speakers = (s.speakers || []).filter((sp) => sp.display);
    const legend = speakers.length
      ? el(
          "ul",
          { class: "speaker-legend", "aria-label": "Speakers" },
          ...speakers.map((sp) => el("li", {}, speakerChip(sp.display, sp.color))),
        )
      : null;

    const arrow = () => el("span", { "aria-hidden": "true", text: "↓ " });
    const action = (label) => ({ type: "button", class: "history-action", "aria-label": label });
    const md = el("button", action("Download the transcript as Markdown"), arrow(), "Markdown");
    const srt = el("button", action("Download the transcript as SRT subtitles"), arrow(), "SRT");
    const del = el("button", { type: "button", class: "history-action danger", text: "Delete…" });
    del.setAttribute("aria-label", "Delete this conversation");
    md.addEventListener("click", () => download(s, "md", md));
    srt.addEventListener("click", () => download(s, "srt", srt));
    del.addEventListener("click", () => confirmDelete(s, del));
    // in the bar, away from the downloads, where it stays put while the transcript scrolls
    scroll.parentElement.querySelector(".history-bar").append(del);

    const head = el(
      "header",
      { class: "session-head" },
      title,
      el("p", { class: "session-when", text: facts.join(" · ") }),
      legend,
      el("div", { class: "history-actions", role: "group", "aria-label": "Download" }, md, srt),
      lines.length ? el("p", { class: "history-tip", text: "Tip: select a word or a few in a line to save them for study." }) : null,
    );

    const list = el("ol", { class: "cards history-lines", "data-session-id": s.session_id, "aria-label": "Transcript" });
    const nodes = lines.map((u, i) => lineNode(s, u, i, lines.length));
    list.append(...nodes);
    const empty = lines.length ? null : el("p", { class: "history-note", text: "Nothing was transcribed in this conversation." });
    scroll.replaceChildren(head, empty || list);

    // the player's dock
    const play = el(
      "button",
      { type: "button", class: "player-play", "aria-pressed": "false" },
      el("span", { class: "player-icon", "aria-hidden": "true" }),
      el("span", { class: "player-text", text: "Play" }),
    );
    const speed = el("button", { type: "button", class: "player-speed", text: "1×" });
    const status = el("p", { class: "player-status", role: "status", "aria-live": "polite" });
    const progress = el("div", { class: "player-progress", "aria-hidden": "true" }, el("span"));
    const noAudio = s.audio_ms === 0;
    status.textContent = noAudio
      ? "The recording of this conversation is no longer stored; the transcript is all there is."
      : `Play all ${plural(lines.length, "line", "lines")} from the start, or one line with its ▶ button.`;
    play.disabled = noAudio || !lines.length;
    play.addEventListener("click", () => player.toggle());
    speed.addEventListener("click", () => {
      const next = SPEEDS[(SPEEDS.indexOf(player.rate) + 1) % SPEEDS.length];
      player.setRate(next);
      syncPlayer();
    });
    const dock = el("footer", { class: "dock history-dock" }, progress, el("div", { class: "player-row" }, play, speed), status);
    scroll.parentElement.append(dock, audio);

    for (const node of nodes) {
      node.querySelector(".hline-play").disabled = noAudio;
    }
    page.view = { session: s, lines, nodes, list, play, speed, status, bar: progress.firstChild, playing: -1 };
    player.load(s.session_id, lines);
    player.setRate(player.rate);
    syncPlayer();
    page.stopSelection = watchSelection(list, saveSelection);
    title.focus({ preventScroll: true });
  }

  function lineNode(s, u, i, count) {
    const t = u.translation;
    const [src, dst] = lineLanguages(u, s.direction);
    // the live card's source runs: the corrected text, its idioms and fixes marked
    const card = {
      text: u.text,
      dbIdioms: [],
      translation: t ? { corrected: t.corrected || "", idioms: t.idioms || [], corrections: t.corrections || [] } : null,
    };
    const { runs, idioms } = sourceRuns(card);
    const source = el("p", { class: "source", lang: src });
    for (const run of runs) {
      let node = run.text;
      if (run.fix) node = el("mark", { class: "fix", title: `heard “${run.fix.heard}”` }, run.text);
      if (run.idiom !== null) {
        const idiom = idioms[run.idiom];
        node = el("span", { class: "idiom", title: idiom.meaning || "" }, node);
      }
      source.append(node);
    }

    let flag = null;
    let target;
    if (!t && s.mode === "practice") {
      target = null; // the learner's own line in practice: answered by the partner, not translated
    } else if (!t) {
      flag = el("span", { class: "flag warn", text: "not translated" });
      target = el("p", { class: "target missing", text: "No translation was stored for this line." });
    } else if (t.status === "untranslated" || (!t.text && t.status !== "empty")) {
      flag = el("span", { class: "flag warn", text: "not translated" });
      target = el("p", { class: "target missing", text: "The translation failed for this line." });
    } else {
      if (t.status === "fallback") flag = el("span", { class: "flag", text: "literal (fallback)" });
      target = el("p", { class: "target", lang: dst, text: t.text });
    }

    const at = clock(u.start_ms);
    const play = el(
      "button",
      { type: "button", class: "hline-play", "aria-label": `Play line ${i + 1} of ${count}, at ${at}` },
      el("span", { class: "player-icon", "aria-hidden": "true" }),
    );
    play.addEventListener("click", () => player.toggleLine(i));
    const chip = u.speaker_name ? speakerChip(u.speaker_name, u.speaker_color) : null;
    const meta = el(
      "div",
      { class: "meta" },
      chip,
      el("span", { class: "hline-time", text: at, "aria-label": `at ${at}` }),
      flag,
      play,
    );
    const node = el(
      "li",
      { class: "card final hline", "data-utterance-id": u.utterance_id, "data-session-id": s.session_id, "data-line": i },
      meta,
      source,
      target,
    );
    if (idioms.length) {
      node.append(el("ul", { class: "idioms", "aria-label": "Idioms" }, ...idioms.map((idiom) => idiomCard(s, u, idiom, src))));
    }
    return node;
  }

  function idiomCard(s, u, idiom, language) {
    const text = idiom.canonical || idiom.phrase;
    const key = `${u.utterance_id} ${text.toLowerCase()}`;
    const save = el("button", { type: "button", class: "save", "aria-label": `Save “${text}” to your study deck` }, "Save");
    const mark = () => {
      save.textContent = "Saved ✓";
      save.setAttribute("aria-pressed", "true");
      save.setAttribute("aria-label", `Saved “${text}”`);
    };
    if (page.saved.has(key)) mark();
    save.addEventListener("click", async () => {
      if (page.saved.has(key)) return;
      save.textContent = "Saving…";
      const term = {
        kind: "idiom",
        text,
        meaning: idiom.meaning || "",
        literal: idiom.literal || "",
        utterance_id: u.utterance_id,
        language,
      };
      try {
        await api.saveTerm(s.session_id, term);
        page.saved.add(key);
        mark();
        toast(`Saved “${text}” to your study deck`);
      } catch (e) {
        save.textContent = "Save";
        toast(`Could not save “${text}”: ${e.message}`);
      }
    });
    return el(
      "li",
      { class: "idiom-card" },
      el("div", { class: "idiom-head" }, el("span", { class: "phrase", lang: language, text }), save),
      idiom.meaning ? el("p", { class: "meaning", text: idiom.meaning }) : null,
      idiom.literal ? el("p", { class: "literal" }, el("span", { text: "literally: " }), el("em", { text: idiom.literal })) : null,
    );
  }

  /** watchSelection's onSave: the selected words become a study card. */
  async function saveSelection(selected) {
    const { text, sessionId } = selected;
    try {
      await api.saveTerm(sessionId, selectedTerm(selected));
      toast(`Saved “${text}” to your study deck`);
    } catch (e) {
      toast(`Could not save “${text}”: ${e.message}`);
    }
  }

  // --- playback state in the view ---------------------------------------------------------

  function markPlaying(i) {
    const v = page.view;
    if (!v) return;
    if (v.playing === i) return;
    const before = v.nodes[v.playing];
    if (before) {
      before.classList.remove("playing");
      before.removeAttribute("aria-current");
    }
    v.playing = i;
    v.bar.style.transform = "scaleX(0)";
    const node = v.nodes[i];
    if (!node) {
      v.status.textContent = "Played to the end.";
      syncPlayer();
      return;
    }
    node.classList.add("playing");
    node.setAttribute("aria-current", "true");
    node.scrollIntoView({ block: "center", behavior: reducedMotion() ? "auto" : "smooth" });
    const line = v.lines[i];
    const who = line.speaker_name ? `${line.speaker_name}, ` : "";
    v.status.textContent = `Line ${i + 1} of ${v.lines.length} · ${who}${clock(line.start_ms)}`;
    syncPlayer();
  }

  function syncPlayer() {
    const v = page.view;
    if (!v) return;
    const on = player.playing;
    v.play.setAttribute("aria-pressed", String(on));
    v.play.querySelector(".player-text").textContent = on ? "Pause" : player.index >= 0 ? "Resume" : "Play";
    v.speed.textContent = `${player.rate}×`;
    const next = SPEEDS[(SPEEDS.indexOf(player.rate) + 1) % SPEEDS.length];
    v.speed.setAttribute("aria-label", `Playback speed ${player.rate} times; press for ${next} times`);
    v.nodes.forEach((node, i) => {
      const b = node.querySelector(".hline-play");
      const playingThis = on && i === player.index;
      b.classList.toggle("on", playingThis);
      b.setAttribute("aria-pressed", String(playingThis));
    });
  }

  // --- downloads and deletion ---------------------------------------------------------------

  async function download(s, fmt, button) {
    button.disabled = true;
    try {
      const r = await api.fetch(`api/sessions/${enc(s.session_id)}/transcript?format=${fmt}`);
      const url = URL.createObjectURL(await r.blob());
      const a = el("a", { href: url, download: fileName(s, fmt) });
      a.hidden = true;
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 30000); // the download has read it by then
    } catch (e) {
      toast(`Could not download: ${e.message}`);
    } finally {
      button.disabled = false;
    }
  }

  function confirmDelete(s, opener) {
    const name = sessionName(s);
    const keep = el("button", { type: "button", class: "history-action", text: "Keep it" });
    const go = el("button", { type: "button", class: "history-action danger solid", text: "Delete for good" });
    const dialog = el(
      "dialog",
      { class: "history-confirm", "aria-labelledby": "history-confirm-title", "aria-describedby": "history-confirm-text" },
      el("h3", { id: "history-confirm-title", text: "Delete this conversation?" }),
      el(
        "p",
        { id: "history-confirm-text" },
        el("strong", { text: name }),
        ": its transcript, translations, speakers and recording are deleted for good. " +
          "Words saved from it leave your study deck unless you also heard them elsewhere.",
      ),
      el("div", { class: "history-confirm-buttons" }, keep, go),
    );
    const close = () => {
      dialog.close();
      dialog.remove();
    };
    keep.addEventListener("click", () => {
      close();
      opener.focus();
    });
    dialog.addEventListener("cancel", () => {
      dialog.remove();
      opener.focus();
    });
    go.addEventListener("click", async () => {
      go.disabled = keep.disabled = true;
      go.textContent = "Deleting…";
      try {
        await api.json(`api/sessions/${enc(s.session_id)}`, { method: "DELETE", body: { confirm: s.session_id } });
      } catch (e) {
        go.disabled = keep.disabled = false;
        go.textContent = "Delete for good";
        toast(`Could not delete: ${e.message}`);
        return;
      }
      close();
      player.reset();
      page.deleted.add(s.session_id);
      page.sessions = page.sessions.filter((x) => x.session_id !== s.session_id);
      page.lastOpened = "";
      toast(`Deleted “${name}”.`);
      location.hash = "#/history";
    });
    root.append(dialog);
    dialog.showModal();
    keep.focus(); // the safe choice first
  }

  return {
    /** @param {string} arg "" for the list, else a session id */
    show(arg) {
      if (arg) showSession(arg);
      else showList();
    },
    hide() {
      page.request++;
      player.reset();
    },
  };
}
