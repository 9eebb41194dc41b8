// Habla's phone client: pairing, the live conversation view, settings, the microphone.
//
// The view is a pure function of the session events (state.js -> render.js); this module
// wires the page: the token (first run: the pairing link's `#token=`), the Start button
// (microphone -> Link -> gateway), auto-scroll, the screen wake lock and the status pills.
// The History and Study pages are their own modules (history.js, study.js), shown by the
// hash route (#/live, #/history, #/history/<session id>, #/study); listening goes on while
// another page is open.
//
// Habla speaks (speech.js): the session's `tts.audio` sentences play as they arrive, and while
// they play the microphone sends silence (same chunk cadence and indices), so Habla does not
// hear itself. The speaker button sets the session's `speak` setting (auto / on / off).
// Practice mode (Chat / Class / Practice) sends a topic and shows the partner's cards.

import { Api } from "./api.js";
import { MicError, Microphone, micUnavailable } from "./audio.js";
import { Link } from "./connection.js";
import { Keep } from "./keep.js";
import { createHistory } from "./history.js";
import { View, levelEvidence } from "./render.js";
import { selectedTerm, watchSelection } from "./selection.js";
import { Voice } from "./speech.js";
import {
  applyEvent,
  applyFrame,
  createState,
  languages,
  replyId,
  savedKey,
  session,
  settled,
  speaksAloud,
  speechPending,
} from "./state.js";
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
  /** What Habla speaks aloud: "auto" (what is said to someone in Spanish), "on" (every translation too), "off". */
  get speak() {
    const v = localStorage.getItem("habla.speak");
    if (v === "1") return "on"; // the earlier on/off switch of the browser's voice
    return v === "on" || v === "off" ? v : "auto";
  },
  set speak(value) {
    localStorage.setItem("habla.speak", value);
  },
  /** Practice mode: what the learner wants to talk about ("" = the partner picks). */
  get topic() {
    return localStorage.getItem("habla.topic") || "";
  },
  set topic(value) {
    localStorage.setItem("habla.topic", value);
  },
};

/** Practice is in Spanish: the direction its sessions use, whatever ES→EN / EN→ES says. */
function sessionDirection() {
  return store.mode === "practice" ? "es-en" : store.direction;
}

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
  capture: { chunks: 0, silenced: 0 }, // microphone chunks sent, and those sent as silence (Habla speaking)
  screen: "loading",
};
const view = new View($("cards"), { onSave: saveIdiom, onRename: openRename, onLevel: explainLevel });
const voice = new Voice({ onChange: speakingChanged, onBlocked: speakingBlocked });
// for debugging and the browser tests: the state, a way to show event frames (handled as if they
// came live on a session's socket), and what was spoken aloud
window.habla = {
  state,
  app,
  voice,
  get spoken() {
    return voice.played;
  },
  feed(sessionId, frame) {
    onFrame(sessionId, frame, true);
  },
};

/** An event frame of a session: into the state; a live `tts.audio` to the voice. */
function onFrame(sessionId, frame, live) {
  voice.note(frame.id);
  if (!applyFrame(state, sessionId, frame)) return; // seen before: never shown or spoken twice
  if (frame.kind === "tts.audio") voice.offer(frame, { live, muted: store.speak === "off" });
  schedule();
}

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
    const said = c && !c.hidden ? (c.kind === "tutor" ? c.reply : c.translation && c.translation.translation) : "";
    if (said && !app.announced.has(id)) {
      app.announced.add(id);
      $("announce").textContent = said;
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
  app.micPill = [stateName, text];
  refreshMic();
}

/** The mic pill: its own state, or "Speaking…" while the microphone sends silence for Habla's voice. */
function refreshMic() {
  const [stateName, text] = app.micPill || ["off", "Mic off"];
  if (voice.speaking && app.listening) setPill("mic", "speaking", "Speaking…");
  else setPill("mic", stateName, text);
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

// --- Habla speaking: the session's spoken audio, and the speaker button -----------------
// The speaker button shows whether Habla speaks in the chosen direction and mode: "auto" (the
// default) speaks what is said to someone in Spanish (EN→ES translations, the practice partner),
// so it shows on there and off in ES→EN. A tap flips what you hear: to "on" or "off" where auto
// would not, back to "auto" where it would. While Habla speaks, a tap (or one on the "speaking"
// bar) stops it instead.

const SPEAK_NOTES = {
  auto: "Habla speaks what is said to someone in Spanish (EN→ES translations, your practice partner).",
  on: "Habla speaks every translation, English ones too.",
  off: "Habla stays silent.",
};

function speakingNow() {
  return speaksAloud(store.speak, store.mode, sessionDirection());
}

$("speak").addEventListener("click", () => {
  voice.unlock(); // a user gesture: audio may play from now on
  if (voice.speaking) {
    voice.stop();
    return;
  }
  const on = speakingNow();
  const auto = speaksAloud("auto", store.mode, sessionDirection());
  store.speak = on === auto ? (on ? "off" : "on") : "auto";
  if (!speakingNow()) voice.stop();
  changeSetting({ speak: store.speak });
  toast(SPEAK_NOTES[store.speak]);
});

$("speaking").addEventListener("click", () => voice.stop());

/** The voice started or stopped speaking (or moved to another text). */
function speakingChanged() {
  const item = voice.current;
  document.body.dataset.speaking = String(Boolean(item));
  $("speaking").hidden = !item;
  view.markSpeaking(!item ? "" : item.spokenKind === "tutor.replied" ? replyId(item.utteranceId) : item.utteranceId);
  refreshMic();
  syncControls();
  if (app.stick) toBottom();
}

let blockedNoted = false;

function speakingBlocked() {
  if (blockedNoted) return;
  blockedNoted = true;
  toast("The browser held back Habla's voice: tap the speaker button once to allow it.");
}

function explainLevel(reply) {
  const evidence = levelEvidence(reply.levelEvidence);
  toast(`Your level: ${reply.level}, estimated from your lines so far${evidence ? ` (${evidence})` : ""}.`);
}

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
  const practice = store.mode === "practice";
  document.body.dataset.practice = String(practice);
  $("direction").hidden = practice;
  $("topic-form").hidden = !practice;
  const speak = $("speak");
  const on = speakingNow();
  speak.setAttribute("aria-pressed", String(on));
  speak.dataset.speak = store.speak;
  speak.classList.toggle("talking", voice.speaking);
  const label = voice.speaking
    ? "Stop speaking"
    : `Habla speaks aloud: ${store.speak === "auto" ? `automatic, ${on ? "on" : "off"} here` : store.speak}`;
  speak.setAttribute("aria-label", label);
  speak.title = label;
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
  b.addEventListener("click", () => {
    const mode = b.dataset.mode;
    const was = store.mode;
    if (mode === was) return;
    if (mode === "practice") {
      // practice is in Spanish; the topic is optional ("" lets the partner choose)
      changeSetting({ mode, direction: "es-en", topic: store.topic });
      if (!store.topic) $("topic").focus();
    } else if (was === "practice") {
      changeSetting({ mode, direction: store.direction }); // back to the direction chosen before
    } else {
      changeSetting({ mode });
    }
  });
}

/** The practice topic: one line, sent when it changes (Enter, or leaving the field). */
function topicChanged() {
  const topic = $("topic").value.replace(/\s+/g, " ").trim().slice(0, 200);
  $("topic").value = topic;
  if (topic === store.topic) return;
  store.topic = topic;
  if (app.link) app.link.changeSettings({ topic });
  toast(topic ? `Practice topic: ${topic}` : "No topic: your partner picks one.");
}

$("topic").value = store.topic;
$("topic").addEventListener("change", topicChanged);
$("topic-form").addEventListener("submit", (e) => {
  e.preventDefault();
  topicChanged();
  $("topic").blur();
});

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
    settings: { direction: sessionDirection(), mode: store.mode, speak: store.speak, topic: store.topic },
    keep,
    resume,
    // a session restored after a reload replays its events: shown, never spoken again
    onEvent: (frame) => onFrame(link.sessionId, frame, !resume),
    onReady: (ready) => {
      const s = session(state, ready.session_id);
      s.direction = s.direction || ready.direction;
      s.mode = s.mode || ready.mode;
      s.speak = s.speak || ready.speak || null;
      if (typeof ready.topic === "string" && !s.topic) s.topic = ready.topic;
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
      app.capture.chunks++;
      // Habla's own voice must not go back in (transcribed, and answered in practice mode):
      // while it speaks the chunk goes out as silence, same length, same index
      if (voice.silencing()) {
        app.capture.silenced++;
        link.push(new ArrayBuffer(pcm.byteLength));
      } else {
        link.push(pcm);
      }
    },
    onMuted: micMuted,
    onLevel: (peak) => {
      const shown = voice.silencing() ? 0 : peak;
      $("level-bar").style.transform = `scaleX(${Math.min(1, shown * 1.6).toFixed(2)})`;
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

/**
 * An ended session keeps its socket until its last cards are final and translated, and their
 * spoken audio has come (for at most 30 s more: speech is best-effort).
 */
function retire(link) {
  app.viewers.add(link);
  const deadline = Date.now() + 180000;
  let settledAt = 0;
  const timer = setInterval(() => {
    let done = link.sessionId ? settled(state, link.sessionId) : link.state === "closed";
    if (done && link.sessionId) {
      settledAt = settledAt || Date.now();
      done = !speechPending(state, link.sessionId) || Date.now() - settledAt > 30000;
    }
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

$("start").addEventListener("click", () => {
  voice.unlock(); // a user gesture: Habla's voice may play from now on
  if (app.listening) stopListening();
  else startListening();
});

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
  const reply = state.cards.get(selected.utteranceId);
  if (reply && reply.kind === "tutor") {
    // words of the partner's reply: no recorded line of the session holds them, so the reply
    // itself goes with them as the sentence they were met in
    term.utterance_id = "";
    term.example = reply.reply;
  }
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
