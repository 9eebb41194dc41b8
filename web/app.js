// Habla's phone client: pairing, the live conversation view, settings, the microphone.
//
// The view is a pure function of the session events (state.js -> render.js); this module
// wires the page: the token (first run: the pairing link's `#token=`), the Start button
// (microphone -> Link -> gateway), auto-scroll, the screen wake lock and the status pills.
// The History and Study pages are their own modules (history.js, study.js), shown by the
// hash route (#/live, #/history, #/history/<session id>, #/study); listening goes on while
// another page is open.

import { Api } from "./api.js";
import { MicError, Microphone, micUnavailable } from "./audio.js";
import { Link } from "./connection.js";
import { Keep } from "./keep.js";
import { createHistory } from "./history.js";
import { View } from "./render.js";
import { selectedTerm, watchSelection } from "./selection.js";
import { applyEvent, applyFrame, createState, languages, savedKey, session, settled } from "./state.js";
import { createStudy } from "./study.js";

const $ = (id) => document.getElementById(id);

const store = {
  get token() {
    return localStorage.getItem("habla.token") || "";
  },
  set token(value) {
    if (value) localStorage.setItem("habla.token", value);
    else localStorage.removeItem("habla.token");
  },
  get direction() {
    return localStorage.getItem("habla.direction") || "es-en";
  },
  set direction(value) {
    localStorage.setItem("habla.direction", value);
  },
  get mode() {
    return localStorage.getItem("habla.mode") || "conversation";
  },
  set mode(value) {
    localStorage.setItem("habla.mode", value);
  },
  get speak() {
    return localStorage.getItem("habla.speak") === "1";
  },
  set speak(value) {
    localStorage.setItem("habla.speak", value ? "1" : "0");
  },
};

const state = createState();
const app = {
  link: null, // the session being recorded
  viewers: new Set(), // ended sessions still receiving their last cards
  mic: null,
  listening: false,
  starting: false,
  wake: null,
  stick: true, // follow the newest card
  announced: new Set(),
  metrics: {}, // epoch ms: micStartedAt, firstChunkAt (for the browser tests)
  screen: "loading",
};
const view = new View($("cards"), { onSave: saveIdiom, onRename: openRename });
// for debugging and the browser tests: the state, and a way to show event frames
window.habla = {
  state,
  app,
  feed(sessionId, frame) {
    if (applyFrame(state, sessionId, frame)) schedule();
  },
};

// --- pairing and full-screen states -------------------------------------------------

function takeTokenFromUrl() {
  const params = new URLSearchParams(location.hash.slice(1));
  const token = params.get("token");
  if (token) {
    store.token = token.trim();
    history.replaceState(null, "", location.pathname + location.search); // out of history and bookmarks
  }
}

/** "ok" | "unauthorized" | "unreachable": does the server take this phone's token? */
async function checkServer() {
  try {
    const r = await fetch("api/sessions?limit=1", {
      headers: { Authorization: `Bearer ${store.token}` },
      cache: "no-store",
    });
    if (r.status === 401) return "unauthorized";
    return r.ok || r.status === 503 ? "ok" : "unreachable";
  } catch {
    return "unreachable";
  }
}

const SCREENS = {
  pair: {
    title: "Pair this phone",
    text: "Open the pairing link that <code>habla up</code> printed on your computer (it ends in <code>#token=…</code>), or paste the token here.",
    form: true,
  },
  unauthorized: {
    title: "This phone's token was refused",
    text: "The Habla server at <code></code> did not accept the token stored on this phone. It may have changed: open the pairing link that <code>habla up</code> prints now, or paste the token here.",
    form: true,
  },
  unreachable: {
    title: "Can't reach Habla",
    text: "Nothing answered at <code></code>. Is <code>habla up</code> running on your computer, and is this phone on the same network or VPN? Trying again every few seconds.",
    retry: true,
  },
};

let retryTimer = 0;

function showScreen(name) {
  app.screen = name;
  document.body.dataset.screen = name;
  const spec = SCREENS[name];
  $("gate").hidden = !spec;
  $("app").inert = Boolean(spec);
  if (!spec) return;
  $("gate-title").textContent = spec.title;
  $("gate-text").innerHTML = spec.text; // fixed markup from SCREENS; the origin goes in as text
  for (const code of $("gate-text").querySelectorAll("code:empty")) code.textContent = location.origin;
  $("token-form").hidden = !spec.form;
  $("retry").hidden = !spec.retry;
  if (spec.form) {
    $("token-input").value = "";
    $("token-input").focus();
  } else {
    $("retry").focus();
  }
}

async function verify() {
  clearTimeout(retryTimer);
  if (!store.token) {
    showScreen("pair");
    return;
  }
  const result = await checkServer();
  if (result === "ok") {
    showScreen("app");
    updateStatus();
    route();
    restoreRecording();
  } else {
    showScreen(result);
    if (result === "unreachable") retryTimer = setTimeout(verify, 5000);
  }
}

function refused() {
  stopListening({ keepLink: false });
  for (const link of app.viewers) link.close();
  app.viewers.clear();
  showScreen("unauthorized");
}

// --- rendering ----------------------------------------------------------------------

let frame = 0;

function schedule() {
  if (!frame) frame = requestAnimationFrame(render);
}

function render() {
  frame = 0;
  const touched = [...state.dirty];
  view.update(state);
  $("empty").hidden = $("cards").childElementCount > 0;
  for (const id of touched) {
    const c = state.cards.get(id);
    if (c && c.translation && c.translation.translation && !c.hidden && !app.announced.has(id)) {
      app.announced.add(id);
      $("announce").textContent = c.translation.translation;
      if (store.speak && ownLink(c.sessionId)) speak(c.translation.translation, languages(state, c)[1]);
    }
  }
  while (state.notes.length) toast(state.notes.shift());
  if (app.stick) toBottom();
  syncControls();
}

const transcript = $("transcript");

function toBottom() {
  transcript.scrollTop = transcript.scrollHeight;
}

transcript.addEventListener(
  "scroll",
  () => {
    const atBottom = transcript.scrollHeight - transcript.scrollTop - transcript.clientHeight < 48;
    app.stick = atBottom;
    $("jump").hidden = atBottom;
  },
  { passive: true },
);

$("jump").addEventListener("click", () => {
  app.stick = true;
  $("jump").hidden = true;
  toBottom();
  transcript.focus({ preventScroll: true });
});

let toastTimer = 0;

function toast(text) {
  const t = $("toast");
  t.textContent = text;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    t.hidden = true;
  }, 5000);
}

// --- status: connection and microphone ----------------------------------------------

function setPill(id, stateName, text) {
  const pill = $(id);
  pill.dataset.state = stateName;
  $(`${id}-text`).textContent = text;
}

function updateStatus() {
  const link = app.link;
  const banner = $("banner");
  banner.hidden = true;
  if (link) {
    const s = link.status();
    const kept = s.bufferedSeconds >= 1 ? ` · ${Math.round(s.bufferedSeconds)} s kept` : "";
    const lost = s.state === "waiting" || (s.state === "connecting" && s.failures > 0);
    if (s.state === "live") setPill("conn", "live", "Connected");
    else if (lost) {
      setPill("conn", "waiting", `Reconnecting…${kept}`);
      banner.hidden = false;
      banner.textContent = `Connection lost. Still recording on this phone (${Math.round(s.bufferedSeconds)} s kept); it is sent when the server is back.`;
    } else if (s.state === "connecting") setPill("conn", "connecting", `Connecting…${kept}`);
    else setPill("conn", s.state, s.state);
  } else if (app.viewers.size) {
    setPill("conn", "live", "Finishing…");
  } else {
    setPill("conn", "idle", app.screen === "app" ? "Ready" : "Offline");
  }
  if (app.micPausedAt && banner.hidden) {
    banner.hidden = false;
    banner.textContent = app.micBanner;
  }
}

function setMic(stateName, text) {
  setPill("mic", stateName, text);
}

async function keepAwake(on) {
  if (!("wakeLock" in navigator)) return;
  if (on && !app.wake) {
    try {
      app.wake = await navigator.wakeLock.request("screen");
      app.wake.addEventListener("release", () => {
        app.wake = null;
      });
    } catch {
      app.wake = null; // refused (battery saver): the screen may sleep; recording goes on
    }
  } else if (!on && app.wake) {
    const lock = app.wake;
    app.wake = null;
    await lock.release().catch(() => {});
  }
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && app.listening) keepAwake(true);
});

// --- the microphone paused by the phone -----------------------------------------------
// A phone may stop feeding the microphone to a page in the background (or while a call has
// it): no chunks come, though nothing failed. The mic pill and a banner say so while it lasts,
// and a toast says for how long it was off once it is back, so a gap in the transcript has
// an explanation.

const MIC_SILENT_MS = 2500;

function watchMic() {
  clearInterval(app.micWatch);
  app.micPausedAt = 0;
  app.micMuted = false;
  app.micWatch = setInterval(() => {
    if (!app.listening) return;
    const last = app.metrics.lastChunkAt || app.metrics.micStartedAt || Date.now();
    if (!app.micPausedAt && Date.now() - last > MIC_SILENT_MS) micPaused(last);
  }, 1000);
}

/** No sound since `since`: the audio graph stopped (no chunks) or the track was muted. */
function micPaused(since) {
  app.micPausedAt = app.micPausedAt || since;
  app.micBanner =
    document.visibilityState === "hidden"
      ? "The phone paused the microphone while Habla was in the background. Keep Habla on screen while listening."
      : "The microphone stopped sending sound (another app or a call may have it). Nothing is recorded until it is back.";
  setMic("error", "Mic paused");
  updateStatus();
}

function micResumed() {
  if (!app.micPausedAt || app.micMuted) return;
  const seconds = Math.max(1, Math.round((Date.now() - app.micPausedAt) / 1000));
  app.micPausedAt = 0;
  setMic("on", "Listening");
  updateStatus();
  toast(`The microphone was paused for ${seconds} s; recording again.`);
}

function micChunk() {
  app.metrics.lastChunkAt = Date.now();
  // a muted track still yields (silent) chunks: only its unmute ends that pause
  if (app.micPausedAt && !app.micMuted) micResumed();
}

function micMuted(muted) {
  app.micMuted = muted;
  if (muted) micPaused(Date.now());
  else micResumed();
}

// --- speaking translations aloud (the browser's speech synthesis) ----------------------

const VOICE_LANG = { en: "en-US", es: "es-ES" };

function speak(text, lang) {
  if (!("speechSynthesis" in window) || !text) return;
  const u = new SpeechSynthesisUtterance(text);
  u.lang = VOICE_LANG[lang] || lang;
  const voice = speechSynthesis.getVoices().find((v) => v.lang && v.lang.toLowerCase().startsWith(lang));
  if (voice) u.voice = voice;
  app.spoken = (app.spoken || 0) + 1;
  speechSynthesis.speak(u);
}

$("speak").addEventListener("click", () => {
  store.speak = !store.speak;
  if (!store.speak && "speechSynthesis" in window) speechSynthesis.cancel();
  toast(store.speak ? "Translations are read aloud." : "Translations are not read aloud.");
  syncControls();
});

/** The link of a session this page recorded (live, or ended and finishing), if any. */
function ownLink(sessionId) {
  return [app.link, ...app.viewers].find((l) => l && l.sessionId === sessionId) || null;
}

// --- renaming a speaker (tap the chip) ------------------------------------------------

let renaming = null; // {sessionId, speaker}

function openRename(card, speaker) {
  const sp = state.speakers.get(`${card.sessionId} ${speaker.id}`);
  renaming = { sessionId: card.sessionId, speaker: speaker.id };
  $("rename-title").textContent = `Who is ${speaker.display}?`;
  $("rename-name").value = (sp && sp.name) || "";
  $("rename-remember").checked = false;
  $("rename-me").checked = Boolean(sp && sp.isUser);
  $("rename-error").hidden = true;
  $("rename").showModal();
  $("rename-name").select();
}

$("rename-cancel").addEventListener("click", () => $("rename").close());

$("rename-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  if (!renaming) return;
  const { sessionId, speaker } = renaming;
  const name = $("rename-name").value.replace(/\s+/g, " ").trim();
  const body = { name, remember: $("rename-remember").checked, is_user: $("rename-me").checked };
  try {
    await api.json(`api/sessions/${encodeURIComponent(sessionId)}/speakers/${encodeURIComponent(speaker)}`, {
      method: "POST",
      body,
    });
  } catch (err) {
    $("rename-error").textContent = err.message;
    $("rename-error").hidden = false;
    return;
  }
  // shown at once; the session's speaker.renamed event (if its socket is still open) says the same
  applyEvent(state, sessionId, "speaker.renamed", { speaker, name, is_user: body.is_user, remember: body.remember });
  renaming = null;
  $("rename").close();
  schedule();
  toast(body.remember ? `${name}: this voice will be recognised next time.` : `Renamed to ${name}.`);
});

// --- settings -------------------------------------------------------------------------

function syncControls() {
  for (const b of $("direction").querySelectorAll("button")) {
    b.setAttribute("aria-pressed", String(b.dataset.direction === store.direction));
  }
  for (const b of $("mode").querySelectorAll("button")) {
    b.setAttribute("aria-pressed", String(b.dataset.mode === store.mode));
  }
  $("speak").setAttribute("aria-pressed", String(store.speak));
  const s = app.link && app.link.sessionId ? state.sessions.get(app.link.sessionId) : null;
  document.body.dataset.sessionDirection = (s && s.direction) || "";
  document.body.dataset.sessionMode = (s && s.mode) || "";
}

function changeSetting(change) {
  if (change.direction) store.direction = change.direction;
  if (change.mode) store.mode = change.mode;
  if (app.link) app.link.changeSettings(change);
  syncControls();
}

for (const b of $("direction").querySelectorAll("button")) {
  b.addEventListener("click", () => changeSetting({ direction: b.dataset.direction }));
}
for (const b of $("mode").querySelectorAll("button")) {
  b.addEventListener("click", () => changeSetting({ mode: b.dataset.mode }));
}

// --- listening --------------------------------------------------------------------------

function wsUrl() {
  const url = new URL("ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

const keep = new Keep();

/** The session being recorded, remembered so a reload can finish it: {sessionId, at}. */
const recording = {
  get() {
    try {
      return JSON.parse(localStorage.getItem("habla.recording") || "null");
    } catch {
      return null;
    }
  },
  set(sessionId) {
    localStorage.setItem("habla.recording", JSON.stringify({ sessionId, at: Date.now() }));
  },
  forget(sessionId) {
    const r = this.get();
    if (r && r.sessionId === sessionId) localStorage.removeItem("habla.recording");
  },
};

function newLink(resume) {
  const link = new Link({
    url: wsUrl(),
    token: store.token,
    settings: { direction: store.direction, mode: store.mode },
    keep,
    resume,
    onEvent: (frame) => {
      if (applyFrame(state, link.sessionId, frame)) schedule();
    },
    onReady: (ready) => {
      const s = session(state, ready.session_id);
      s.direction = s.direction || ready.direction;
      s.mode = s.mode || ready.mode;
      recording.set(ready.session_id);
      schedule();
    },
    onStatus: () => updateStatus(),
    onError: (err) => {
      // the gateway retries its own event stream ("unavailable" with the socket open) and
      // closes the socket when it cannot; the connection pill shows that, no need to shout
      if (err.code === "unavailable") console.warn("habla:", err.message);
      else toast(err.message || err.code);
    },
    onUnauthorized: refused,
  });
  return link;
}

const MIC_PROBLEMS = {
  insecure:
    "The microphone needs a secure page. Open Habla over https:// (or on this computer at http://localhost); a plain http:// address on the network is not allowed to record.",
  unsupported: "This browser cannot record audio here. Use a recent Chrome, Firefox or Safari.",
};

async function startListening() {
  if (app.listening || app.starting) return;
  const why = micUnavailable();
  if (why) {
    setMic("error", "No mic");
    toast(MIC_PROBLEMS[why]);
    $("banner").hidden = false;
    $("banner").textContent = MIC_PROBLEMS[why];
    return;
  }
  app.starting = true;
  updateStart();
  setMic("starting", "Mic starting…");
  const link = newLink();
  app.link = link;
  link.connect(); // the session starts while the microphone warms up; chunks wait for it
  const mic = new Microphone({
    onChunk: (pcm) => {
      if (!app.metrics.firstChunkAt) app.metrics.firstChunkAt = Date.now();
      micChunk();
      link.push(pcm);
    },
    onMuted: micMuted,
    onLevel: (peak) => {
      $("level-bar").style.transform = `scaleX(${Math.min(1, peak * 1.6).toFixed(2)})`;
    },
    onEnded: () => {
      toast("The microphone was taken away (another app or device).");
      stopListening();
    },
  });
  try {
    await mic.start();
  } catch (e) {
    app.starting = false;
    setMic("error", e instanceof MicError && e.code === "denied" ? "Mic blocked" : "Mic error");
    toast(e.message || String(e));
    app.link = null;
    link.end();
    retire(link);
    updateStart();
    updateStatus();
    return;
  }
  app.mic = mic;
  app.metrics.micStartedAt = Date.now();
  app.listening = true;
  app.starting = false;
  app.stick = true;
  setMic("on", "Listening");
  updateStart();
  keepAwake(true);
  watchMic();
}

async function stopListening({ keepLink = true } = {}) {
  if (!app.listening && !app.link) return;
  app.listening = false;
  updateStart();
  const mic = app.mic;
  app.mic = null;
  if (mic) await mic.stop(); // the last partial chunk comes out first
  const link = app.link;
  app.link = null;
  if (link) {
    if (keepLink) {
      link.end();
      retire(link);
    } else {
      link.close();
    }
  }
  clearInterval(app.micWatch);
  app.micPausedAt = 0;
  setMic("off", "Mic off");
  $("level-bar").style.transform = "scaleX(0)";
  keepAwake(false);
  updateStatus();
}

/** An ended session keeps its socket until its last cards are final and translated. */
function retire(link) {
  app.viewers.add(link);
  const deadline = Date.now() + 180000;
  const timer = setInterval(() => {
    const done = link.sessionId ? settled(state, link.sessionId) : link.state === "closed";
    if (done || Date.now() > deadline || link.state === "unauthorized") {
      clearInterval(timer);
      link.close();
      app.viewers.delete(link);
      if (done && link.sessionId) {
        // drained: the server has every chunk; nothing is left to resend after a reload
        keep.clear(link.sessionId);
        recording.forget(link.sessionId);
      }
      updateStatus();
    }
  }, 1000);
  updateStatus();
}

function updateStart() {
  const b = $("start");
  const on = app.listening || app.starting;
  b.setAttribute("aria-pressed", String(on));
  $("start-text").textContent = app.starting ? "Starting…" : app.listening ? "Stop" : "Start";
  document.body.dataset.listening = String(app.listening);
}

$("start").addEventListener("click", () => (app.listening ? stopListening() : startListening()));

// --- saving an idiom --------------------------------------------------------------------

async function saveIdiom(card, idiom, button) {
  const term = {
    kind: "idiom",
    text: idiom.canonical || idiom.phrase,
    meaning: idiom.meaning || "",
    literal: idiom.literal || "",
    utterance_id: card.id,
    language: languages(state, card)[0],
  };
  button.textContent = "Saving…";
  const link = ownLink(card.sessionId);
  if (link && link.save(term)) return; // the term.saved event marks it saved
  try {
    await api.saveTerm(card.sessionId, term);
    state.saved.add(savedKey(card.id, term.text));
    state.dirty.add(card.id);
    schedule();
  } catch (e) {
    if (e.code === "unauthorized") return; // the pairing screen is up (Api called refused)
    button.textContent = "Save";
    toast(`Could not save: ${e.message || e}`);
  }
}

// --- pages: #/live, #/history[/<session id>], #/study ----------------------------------

const api = new Api({ token: () => store.token, onUnauthorized: () => refused() });
const pageContext = { api, toast, state };
const pages = {
  live: { root: $("page-live"), show() {}, hide() {} },
  history: { root: $("page-history"), ...createHistory($("page-history"), pageContext) },
  study: { root: $("page-study"), ...createStudy($("page-study"), pageContext) },
};
app.page = "live";

/** The page a hash names: ["history", "<id>"]; null for other hashes (the skip link's). */
function parseRoute(hash) {
  const m = /^#\/(live|history|study)(?:\/(.+))?$/.exec(hash);
  if (m) return [m[1], m[2] ? decodeURIComponent(m[2]) : ""];
  return hash === "" || hash === "#" || hash === "#/" ? ["live", ""] : null;
}

function route() {
  const r = parseRoute(location.hash);
  if (!r || app.screen !== "app") return;
  const [name, arg] = r;
  const before = app.page;
  app.page = name;
  for (const [key, page] of Object.entries(pages)) {
    page.root.hidden = key !== name;
    if (key !== name && key === before) page.hide();
  }
  for (const a of document.querySelectorAll(".tabs a")) {
    if (a.dataset.page === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.body.dataset.page = name;
  pages[name].show(arg);
  if (name === "live" && app.stick) toBottom();
}

window.addEventListener("hashchange", route);

// --- after a reload: finish the session that was being recorded ---------------------------
// The page went away while listening (Android discarded the tab, a reload while offline):
// the chunks the server had not confirmed are in IndexedDB. They go into the same session,
// which then ends; its cards come back from its events, and Start begins a new session.

async function restoreRecording() {
  const r = recording.get();
  if (!r || !r.sessionId || app.link || [...app.viewers].some((l) => l.sessionId === r.sessionId)) return;
  const kept = await keep.load(r.sessionId);
  const chunks = [];
  for (const k of kept) {
    if (k.i !== kept[0].i + chunks.length) break; // only an unbroken run can be resent by index
    chunks.push(k.pcm);
  }
  const link = newLink({ sessionId: r.sessionId, base: kept.length ? kept[0].i : null, chunks });
  app.restored = { sessionId: r.sessionId, chunks: chunks.length };
  link.connect();
  link.end();
  retire(link);
  if (chunks.length) {
    toast(`Habla was reloaded while listening: sending the ${Math.round(chunks.length / 4)} s of audio this phone kept.`);
  }
}

// --- saving words: select them in a final card ------------------------------------------

watchSelection($("cards"), async (selected) => {
  const { text, sessionId } = selected;
  const term = selectedTerm(selected);
  const link = ownLink(sessionId);
  try {
    if (!(link && link.save(term))) await api.saveTerm(sessionId, term);
    toast(`Saved “${text}” to your study deck`);
  } catch (e) {
    toast(`Could not save “${text}”: ${e.message}`);
  }
});

// --- start ---------------------------------------------------------------------------------

$("token-form").addEventListener("submit", (e) => {
  e.preventDefault();
  store.token = $("token-input").value.trim();
  verify();
});
$("retry").addEventListener("click", verify);
window.addEventListener("hashchange", () => {
  if (location.hash.includes("token=")) {
    takeTokenFromUrl();
    verify();
  }
});

if ("serviceWorker" in navigator && window.isSecureContext) {
  navigator.serviceWorker.register("sw.js").catch(() => {}); // offline app shell; optional
}

takeTokenFromUrl();
syncControls();
updateStart();
verify();
