// Habla's phone client: pairing, the live conversation view, settings, the microphone.
//
// The view is a pure function of the session events (state.js -> render.js); this module
// wires the page: the token (first run: the pairing link's `#token=`), the Start button
// (microphone -> Link -> gateway), auto-scroll, the screen wake lock and the status pills.
// Later increments hook in here: speaker rename (the chip's data-speaker), text-to-speech
// of the translation, the history and review pages.

import { MicError, Microphone, micUnavailable } from "./audio.js";
import { Link } from "./connection.js";
import { View } from "./render.js";
import { applyFrame, createState, languages, savedKey, session, settled } from "./state.js";

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
const view = new View($("cards"), { onSave: saveIdiom });
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

// --- settings -------------------------------------------------------------------------

function syncControls() {
  for (const b of $("direction").querySelectorAll("button")) {
    b.setAttribute("aria-pressed", String(b.dataset.direction === store.direction));
  }
  for (const b of $("mode").querySelectorAll("button")) {
    b.setAttribute("aria-pressed", String(b.dataset.mode === store.mode));
  }
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

function newLink() {
  const link = new Link({
    url: wsUrl(),
    token: store.token,
    settings: { direction: store.direction, mode: store.mode },
    onEvent: (frame) => {
      if (applyFrame(state, link.sessionId, frame)) schedule();
    },
    onReady: (ready) => {
      const s = session(state, ready.session_id);
      s.direction = s.direction || ready.direction;
      s.mode = s.mode || ready.mode;
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
      link.push(pcm);
    },
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
  const link = [app.link, ...app.viewers].find((l) => l && l.sessionId === card.sessionId);
  if (link && link.save(term)) return; // the term.saved event marks it saved
  try {
    const r = await fetch(`api/sessions/${encodeURIComponent(card.sessionId)}/terms`, {
      method: "POST",
      headers: { Authorization: `Bearer ${store.token}`, "Content-Type": "application/json" },
      body: JSON.stringify(term),
    });
    if (r.status === 401) return refused();
    if (!r.ok) throw new Error(`the server answered ${r.status}`);
    state.saved.add(savedKey(card.id, term.text));
    state.dirty.add(card.id);
    schedule();
  } catch (e) {
    button.textContent = "Save";
    toast(`Could not save: ${e.message || e}`);
  }
}

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
