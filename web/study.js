// The Study page: today's due cards one at a time (front: the term in the sentence it was
// heard in; back: meaning, translation, the original speech, four grade buttons), and the
// deck's export as an Anki package or CSV (an rq job on the server; gateway/PROTOCOL.md).
//
// Grades are published as facts and applied by the vocab service a moment later, so the
// page keeps its own queue for the session instead of asking for the due list after each
// card; the tab's badge shows what is left.

import { el } from "./dom.js";

const KINDS = { word: "Word", phrase: "Phrase", idiom: "Idiom", correction: "Correction" };
// SM-2 grades (services/vocab/habla_vocab/srs.py): below 3 starts the card over (1 day,
// ease kept); 3-5 are correct answers that grow the interval and nudge the ease.
const GRADES = [
  { key: "1", grade: 1, name: "Again", hint: "Forgot it: start over" },
  { key: "2", grade: 3, name: "Hard", hint: "Knew it, with effort" },
  { key: "3", grade: 4, name: "Good", hint: "Knew it" },
  { key: "4", grade: 5, name: "Easy", hint: "Knew it at once" },
];
const POLL_MS = 700;
const NO_WORKER_MS = 10000; // a job queued this long: no job worker is taking it
const DAY_MS = 86400000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const fold = (s) => s.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();
const words = (s) => [...(s || "").matchAll(/[\p{L}\p{N}]+/gu)];

/** A client-chosen review id: crypto.randomUUID is missing on plain-http pages (a phone on the LAN). */
function reviewId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return "web-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** SM-2's next interval in days for `grade` (as srs.review computes it), to label the buttons. */
export function nextInterval(schedule, grade) {
  const s = schedule || {};
  if (grade < 3) return 1;
  const reps = s.repetitions || 0;
  if (reps === 0) return 1;
  if (reps === 1) return 6;
  const q = 5 - grade;
  const ease = Math.max(1.3, (s.ease || 2.5) + 0.1 - q * (0.08 + q * 0.02));
  return Math.ceil(Math.round((s.interval_days || 1) * ease * 1e6) / 1e6);
}

/** "1 day", "6 days", "3 mo": the wait a grade button gives, short enough for four in a row. */
function span(days) {
  if (days < 60) return `${days} day${days === 1 ? "" : "s"}`;
  return days < 730 ? `${Math.round(days / 30)} mo` : `${Math.round(days / 365)} yr`;
}

function inDays(days) {
  if (days <= 1) return "tomorrow";
  if (days < 60) return `in ${days} days`;
  return days < 730 ? `in ${Math.round(days / 30)} months` : `in ${Math.round(days / 365)} years`;
}

function whenDue(iso) {
  const t = new Date(iso);
  const days = Math.round((t - Date.now()) / DAY_MS);
  if (days <= 0) return `later today (${t.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })})`;
  return `${inDays(days)} (${t.toLocaleDateString([], { weekday: "short", day: "numeric", month: "short" })})`;
}

/**
 * Character ranges of `sentence` to emphasise: the first of `needles` found as whole words
 * (accents and case aside), else the words that share a stem with the term's longer words
 * (a saved idiom comes in its canonical form, "rendir homenaje", the sentence conjugated).
 */
export function emphasis(sentence, needles) {
  const ws = words(sentence).map((m) => ({ start: m.index, end: m.index + m[0].length, f: fold(m[0]) }));
  for (const needle of needles) {
    const n = words(needle).map((m) => fold(m[0]));
    if (!n.length) continue;
    for (let i = 0; i + n.length <= ws.length; i++) {
      if (n.every((w, k) => ws[i + k].f === w)) return [[ws[i].start, ws[i + n.length - 1].end]];
    }
  }
  const stems = new Set();
  for (const needle of needles) {
    for (const m of words(needle)) {
      const w = fold(m[0]);
      if (w.length >= 4) stems.add(w.slice(0, Math.max(4, w.length - 2)));
    }
  }
  const hits = ws.filter((w) => [...stems].some((s) => w.f.startsWith(s)));
  const ranges = [];
  for (const w of hits) {
    const last = ranges[ranges.length - 1];
    if (last && /^\s*$/.test(sentence.slice(last[1], w.start))) last[1] = w.end;
    else ranges.push([w.start, w.end]);
  }
  return ranges;
}

function sentenceNode(sentence, needles, lang) {
  const p = el("p", { class: "study-context", lang });
  let at = 0;
  for (const [start, end] of emphasis(sentence, needles)) {
    p.append(sentence.slice(at, start), el("mark", { text: sentence.slice(start, end) }));
    at = end;
  }
  p.append(sentence.slice(at));
  return p;
}

// --- exports -----------------------------------------------------------------------------

/** The export box: an Anki package or CSV, built by the server's job worker, then downloaded. */
function createExport(api) {
  const status = el("p", { class: "study-export-status", role: "status" });
  const fill = el("span");
  const bar = el("div", { class: "study-export-bar", role: "progressbar", "aria-label": "Export progress", "aria-valuemin": "0", "aria-valuemax": "100", hidden: true }, fill);
  const stop = el("button", { type: "button", class: "study-link", hidden: true, text: "Stop waiting" });
  const buttons = [
    ["apkg", "Anki deck (.apkg)"],
    ["csv", "CSV"],
  ].map(([fmt, label]) => {
    const b = el("button", { type: "button", class: "study-export-button", "data-format": fmt, text: label });
    b.addEventListener("click", () => runExport(fmt));
    return b;
  });
  const node = el(
    "section",
    { class: "study-export", "aria-labelledby": "study-export-title" },
    el("h3", { id: "study-export-title", text: "Export your deck" }),
    el("p", { class: "study-export-help", text: "Anki imports the package with each card's sound; importing it again updates the same notes." }),
    el("div", { class: "study-export-buttons" }, ...buttons),
    bar,
    status,
    stop,
  );
  let cancelled = false;
  stop.addEventListener("click", () => (cancelled = true));

  function progress(fraction, text) {
    bar.hidden = fraction === null;
    const pct = Math.round(100 * (fraction || 0));
    fill.style.width = `${pct}%`;
    bar.setAttribute("aria-valuenow", String(pct));
    status.textContent = text;
  }

  async function runExport(fmt) {
    for (const b of buttons) b.disabled = true;
    node.dataset.state = "running";
    cancelled = false;
    try {
      progress(0, "Starting the export…");
      const job = await api.json("api/exports", { method: "POST", body: { format: fmt } });
      const since = Date.now();
      let st = job;
      let misses = 0;
      while (st.status !== "finished") {
        await sleep(POLL_MS);
        if (cancelled) throw new Error("Stopped waiting. The export stays queued on the server and runs once a job worker starts.");
        try {
          st = await api.json(`api/exports/${encodeURIComponent(job.job_id)}`);
          misses = 0;
        } catch (e) {
          if (e.status === 404) throw new Error("The server lost this export (restarted, or older than a day). Export again.");
          if (e.status === 401 || ++misses > 5) throw e;
          continue; // a dropped poll: ask again
        }
        if (st.status === "failed") throw new Error(`The export failed: ${st.error || "no reason given"}.`);
        const stuck = st.status === "queued" && Date.now() - since > NO_WORKER_MS;
        stop.hidden = !stuck;
        const counts = st.total ? ` ${st.done} of ${st.total}` : "";
        const text = {
          queued: stuck
            ? "Still queued: no job worker has taken it. “habla up” runs one on your computer; is it running? (There, “habla export” works without it.)"
            : "Waiting for the job worker…",
          reading: "Reading your vocabulary…",
          exporting: `Exporting cards…${counts}`,
          writing: "Writing the file…",
        }[st.stage] || "Exporting…";
        progress(st.status === "finished" ? 1 : st.progress || 0, text);
      }
      stop.hidden = true;
      progress(1, "Downloading…");
      const r = await api.fetch(st.download_url || `api/exports/${encodeURIComponent(job.job_id)}/file`);
      const url = URL.createObjectURL(await r.blob());
      const today = new Date(Date.now() - new Date().getTimezoneOffset() * 60000).toISOString().slice(0, 10); // local date
      const name = `habla-vocabulary-${today}.${fmt}`;
      const a = el("a", { href: url, download: name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      const n = st.items ?? 0;
      progress(null, `Saved ${name}: ${n} card${n === 1 ? "" : "s"}${fmt === "apkg" && st.clips ? `, ${st.clips} with sound` : ""}.`);
      node.dataset.state = "done";
    } catch (e) {
      stop.hidden = true;
      progress(null, e.message || String(e));
      node.dataset.state = "error";
    } finally {
      for (const b of buttons) b.disabled = false;
    }
  }
  return node;
}

// --- the page ----------------------------------------------------------------------------

/** @param {HTMLElement} root the page's <section> @param {{api, toast, state}} ctx */
export function createStudy(root, ctx) {
  const { api, toast } = ctx;
  const badge = document.getElementById("due-badge");
  const s = {
    phase: "idle", // idle | front | back | done | empty | error
    cards: [], // today's queue, as GET /api/vocab/due gave it
    at: 0, // the card on screen
    reviewed: 0,
    loadedAt: 0,
    shownAt: 0, // when the front appeared: answer_ms counts from there
    answerMs: 0,
    reviewId: "", // the card's review_id: every try to grade it is one review
    clipFor: null, // the item whose clip is loaded (or loading) into `audio`
    clipPromise: null,
    clipUrl: null,
    predicted: [], // due dates of this session's grades, before the vocab service applies them
    busy: false,
    visible: false,
    error: "",
  };
  let loading = null;

  const main = el("div", { class: "study-main" });
  const live = el("p", { class: "sr-only", "aria-live": "polite" });
  const audio = el("audio", { preload: "auto", class: "study-audio" });
  root.append(el("h2", { class: "sr-only", text: "Study" }), main, live, createExport(api), audio);

  function setBadge(n) {
    if (!badge) return;
    badge.hidden = !n;
    badge.replaceChildren(...(n ? [String(n), el("span", { class: "sr-only", text: " due" })] : []));
  }

  // --- the queue -------------------------------------------------------------------------

  function load() {
    if (loading) return loading;
    if (s.visible) renderMessage("loading", "Loading today's cards…");
    loading = (async () => {
      try {
        const due = await api.json("api/vocab/due");
        s.cards = due.cards || [];
        s.at = 0;
        s.reviewed = 0;
        s.predicted = [];
        s.loadedAt = Date.now();
        setBadge(s.cards.length);
        if (s.cards.length) startCard();
        else s.phase = (await api.json("api/vocab?limit=1")).total ? "done" : "empty";
      } catch (e) {
        s.phase = "error";
        s.error = e.message || String(e);
      } finally {
        loading = null;
      }
      if (s.visible) render(true);
    })();
    return loading;
  }

  function render(focus) {
    if (s.phase === "front" || s.phase === "back") renderCard(focus);
    else if (s.phase === "done") renderDone();
    else if (s.phase === "empty") renderEmpty();
    else if (s.phase === "error") renderMessage("error", s.error, "Try again", load);
  }

  function renderMessage(kind, text, action, onAction) {
    const button = action ? el("button", { type: "button", class: "study-primary", text: action }) : null;
    if (button) button.addEventListener("click", onAction);
    main.replaceChildren(el("div", { class: `study-note study-${kind}`, role: kind === "error" ? "alert" : null }, el("p", { text }), button));
  }

  function renderEmpty() {
    main.replaceChildren(
      el(
        "div",
        { class: "study-note" },
        el("h3", { text: "No cards yet" }),
        el("p", { text: "Cards come from what you hear. While listening, tap Save on an idiom under a line; in History, select words in a transcript and save them." }),
        el("p", { text: "Each saved term becomes a card with the sentence it was heard in, its translation and the speaker's voice." }),
      ),
    );
  }

  async function renderDone() {
    const next = el("p", { class: "study-next" });
    main.replaceChildren(
      el(
        "div",
        { class: "study-note study-done" },
        el("h3", { text: "All done for today", tabindex: "-1" }),
        el("p", { text: s.reviewed ? `You reviewed ${s.reviewed} card${s.reviewed === 1 ? "" : "s"}.` : "Nothing is due right now." }),
        next,
      ),
    );
    if (s.visible) main.querySelector("h3").focus({ preventScroll: true });
    // the next due date: this session's grades as SM-2 schedules them, and the rest of the deck
    let soonest = Math.min(...s.predicted, Infinity);
    try {
      const deck = await api.json("api/vocab?limit=1000");
      const graded = new Set(s.cards.slice(0, s.reviewed).map((c) => c.item_id));
      for (const item of deck.items) {
        const due = Date.parse(item.schedule.due_at);
        if (!graded.has(item.item_id) && item.schedule.reviews > 0 && due > Date.now()) soonest = Math.min(soonest, due);
      }
    } catch {
      // the predictions alone
    }
    if (soonest < Infinity) next.textContent = `Next review ${whenDue(new Date(soonest).toISOString())}.`;
  }

  function renderCard(focus) {
    const card = s.cards[s.at];
    const c = card.context || {};
    const lang = card.language || "es";
    const sentence = c.corrected || c.heard || "";
    const back = s.phase === "back";
    const total = s.cards.length;
    if (!back && !s.shownAt) s.shownAt = Date.now(); // the answer time counts from here
    fetchClip(card).catch(() => {}); // ahead, so it plays at once on the back
    const kind = [KINDS[card.kind] || card.kind, card.is_new ? "new" : null].filter(Boolean).join(" · ");
    const bar = el("span");
    bar.style.width = `${(100 * s.at) / total}%`;
    const head = el(
      "div",
      { class: "study-progress" },
      el("span", { class: "study-count", text: `${s.at + 1} of ${total}` }),
      el("span", { class: "study-bar", "aria-hidden": "true" }, bar),
    );
    const front = [
      el("p", { class: "study-kind", text: kind }),
      el("h3", { class: "study-term", lang, id: "study-term", text: card.canonical }),
      sentence ? sentenceNode(sentence, [c.text, card.canonical], lang) : null,
      c.speaker_name ? el("p", { class: "study-speaker", text: `— ${c.speaker_name}` }) : null,
    ];
    const article = el("article", { class: `study-card${back ? " revealed" : ""}`, "aria-labelledby": "study-term" }, head, ...front);
    if (!back) {
      const reveal = el("button", { type: "button", class: "study-primary study-reveal", "aria-keyshortcuts": "Space Enter" }, "Show answer");
      reveal.addEventListener("click", showAnswer);
      article.append(reveal);
      main.replaceChildren(article);
      if (focus) reveal.focus({ preventScroll: true });
      return;
    }
    const meaning = el("p", { class: "study-meaning", tabindex: "-1", text: card.meaning || "No meaning was saved for this one." });
    if (!card.meaning) meaning.classList.add("missing");
    const play = el("button", { type: "button", class: "study-play", "aria-keyshortcuts": "P", disabled: true }, "Loading the clip…");
    const grades = el("div", { class: "study-grades", role: "group", "aria-label": "How well did you know it?" });
    for (const g of GRADES) {
      const days = nextInterval(card.schedule, g.grade);
      const b = el(
        "button",
        { type: "button", class: `study-grade grade-${g.name.toLowerCase()}`, "data-grade": g.grade, "aria-keyshortcuts": g.key, title: `${g.hint} (key ${g.key})` },
        el("span", { class: "g-name", text: g.name }),
        el("span", { class: "g-when", text: span(days) }),
      );
      b.setAttribute("aria-label", `${g.name}: ${g.hint}; next review ${inDays(days)}`);
      b.addEventListener("click", () => grade(g.grade, days));
      grades.append(b);
    }
    article.append(
      el(
        "div",
        { class: "study-back" },
        meaning,
        card.literal ? el("p", { class: "study-literal" }, "literally ", el("em", { text: card.literal })) : null,
        c.translation ? el("p", { class: "study-translation", lang: lang === "es" ? "en" : "es", text: c.translation }) : null,
        el("div", { class: "study-clip" }, play, el("span", { class: "study-clip-bar", "aria-hidden": "true" }, el("span"))),
        grades,
        el("p", { class: "study-legend", text: "Under each grade: when the card comes back. Again starts it over." }),
      ),
    );
    main.replaceChildren(article);
    if (focus) {
      meaning.focus({ preventScroll: true });
      grades.scrollIntoView({ block: "nearest" }); // the grades in sight on a small phone
    }
    setupClip(card, play);
  }

  // --- the clip --------------------------------------------------------------------------

  function dropClip() {
    audio.pause();
    audio.removeAttribute("src");
    if (s.clipUrl) URL.revokeObjectURL(s.clipUrl);
    s.clipUrl = null;
    s.clipFor = null;
  }

  /** Fetch the card's clip ahead (on the front) so it plays at once; null when it has none. */
  function fetchClip(card) {
    if (s.clipFor === card.item_id) return s.clipPromise;
    dropClip();
    s.clipFor = card.item_id;
    const url = card.context && card.context.clip_url;
    s.clipPromise = !url
      ? Promise.resolve(null)
      : api.blobUrl(url).then(
          (blobUrl) => {
            if (s.clipFor !== card.item_id) {
              URL.revokeObjectURL(blobUrl); // the user moved on meanwhile
              return null;
            }
            s.clipUrl = blobUrl;
            audio.src = blobUrl;
            return blobUrl;
          },
          (e) => {
            if (e.status === 404) return null; // no clip after all
            if (s.clipFor === card.item_id) s.clipFor = null; // try again when the card is shown again
            throw e;
          },
        );
    return s.clipPromise;
  }

  function setupClip(card, play) {
    const label = () =>
      play.replaceChildren(el("span", { "aria-hidden": "true", text: audio.paused ? "▶ " : "❚❚ " }), audio.paused ? "Play the speaker" : "Pause");
    play.addEventListener("click", () => {
      if (!audio.paused) return audio.pause();
      audio.play().catch((e) => toast(`The clip cannot play here: ${e.message || e}`));
    });
    audio.onplay = audio.onpause = audio.onended = label;
    audio.ontimeupdate = () => {
      const fill = play.parentElement && play.parentElement.querySelector(".study-clip-bar span");
      if (fill && audio.duration) fill.style.width = `${(100 * audio.currentTime) / audio.duration}%`;
    };
    fetchClip(card).then(
      (url) => {
        if (!play.isConnected) return;
        if (!url) {
          play.parentElement.replaceChildren(el("p", { class: "study-noclip", text: "No recording of this one." }));
          return;
        }
        play.disabled = false;
        label();
      },
      (e) => {
        play.textContent = "The clip did not load";
        play.title = e.message || String(e);
      },
    );
  }

  // --- answering -------------------------------------------------------------------------

  function showAnswer() {
    if (s.phase !== "front") return;
    s.answerMs = s.shownAt ? Math.min(Date.now() - s.shownAt, 86400000) : 0;
    s.phase = "back";
    render(true);
  }

  async function post(card, body) {
    const path = `api/vocab/${encodeURIComponent(card.item_id)}/reviews`;
    try {
      return await api.json(path, { method: "POST", body });
    } catch (e) {
      if (e.status !== 0) throw e;
      await sleep(1000); // one retry on a dropped connection: the same review_id makes it one review
      return api.json(path, { method: "POST", body });
    }
  }

  async function grade(value, days) {
    if (s.phase !== "back" || s.busy) return;
    const card = s.cards[s.at];
    s.busy = true;
    for (const b of main.querySelectorAll(".study-grade")) b.disabled = true;
    let counted = true;
    try {
      await post(card, { grade: value, answer_ms: s.answerMs || 0, review_id: s.reviewId });
    } catch (e) {
      if (e.status !== 404) {
        toast(`The grade was not saved: ${e.message || e}`);
        for (const b of main.querySelectorAll(".study-grade")) b.disabled = false;
        return; // grading again reuses the card's review_id: one review however often it is sent
      }
      counted = false;
      toast("This card was deleted meanwhile: skipped.");
    } finally {
      s.busy = false;
    }
    if (counted) {
      s.predicted.push(Date.now() + days * DAY_MS);
      s.reviewed += 1;
    }
    s.at += 1;
    setBadge(s.cards.length - s.at);
    dropClip();
    if (s.at < s.cards.length) {
      startCard();
      live.textContent = `Saved. Card ${s.at + 1} of ${s.cards.length}.`;
    } else {
      s.phase = "done";
      live.textContent = "All done for today.";
    }
    render(true);
  }

  function startCard() {
    s.phase = "front";
    s.shownAt = 0; // set when the card is on screen
    s.reviewId = reviewId(); // one per card: a retried grade of this card counts once
  }

  document.addEventListener("keydown", (e) => {
    if (!s.visible || e.altKey || e.ctrlKey || e.metaKey || e.repeat || document.body.dataset.screen !== "app") return;
    const t = e.target;
    if (t instanceof HTMLElement && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName))) return;
    const onControl = t instanceof HTMLElement && /^(BUTTON|A|SUMMARY)$/.test(t.tagName);
    if (s.phase === "front" && (e.key === " " || e.key === "Enter") && !onControl) {
      e.preventDefault();
      showAnswer();
    } else if (s.phase === "back") {
      const g = GRADES.find((x) => x.key === e.key);
      if (g) {
        e.preventDefault();
        main.querySelector(`.study-grade[data-grade="${g.grade}"]`)?.click();
      } else if (e.key === "p" || e.key === "P") {
        main.querySelector(".study-play:not(:disabled)")?.click();
      }
    }
  });

  // --- page life -------------------------------------------------------------------------

  // The due count for the tab's badge once the app is paired (asking before would report a
  // missing token as refused), and again when the phone comes back to the app.
  const refresh = () => {
    const idle = !["front", "back"].includes(s.phase) || Date.now() - s.loadedAt > 3600000;
    if (document.body.dataset.screen === "app" && idle && Date.now() - s.loadedAt > 60000) load();
  };
  new MutationObserver(refresh).observe(document.body, { attributes: true, attributeFilter: ["data-screen"] });
  document.addEventListener("visibilitychange", () => document.visibilityState === "visible" && refresh());

  return {
    show() {
      s.visible = true;
      // keep a review in progress; otherwise ask again (cards fall due during the day)
      const midway = (s.phase === "front" || s.phase === "back") && Date.now() - s.loadedAt < 3600000;
      if (midway) {
        if (s.phase === "front") s.shownAt = 0; // time away does not count as answer time
        render(true);
      } else if (loading) {
        renderMessage("loading", "Loading today's cards…");
      } else {
        load();
      }
    },
    hide() {
      s.visible = false;
      audio.pause();
    },
  };
}
