// The view's state: a pure function of the session events received (gateway/PROTOCOL.md).
//
// Cards are keyed by utterance id, speakers by (session, speaker id), so an event that
// arrives twice (a replay after a reconnect, two sockets of one session) changes nothing
// the second time: applying the same frames again gives the same state. No DOM here.

/** A fresh, empty state. */
export function createState() {
  return {
    sessions: new Map(), // session id -> {id, ordinal, direction, mode, ended, drained, lastEventId, summary}
    cards: new Map(), // utterance id -> card (see newCard)
    speakers: new Map(), // `${session} ${speaker}` -> {speaker, label, name, color, number, isUser}
    turnSpeaker: new Map(), // utterance id -> speaker id, from speaker.assigned (before the final)
    saved: new Set(), // `${utterance id} ${lower-case text}` of terms saved
    dirty: new Set(), // card ids to render again
    notes: [], // things to tell the user once (audio.rejected ...)
  };
}

/** The session record, made on first sight. */
export function session(state, sessionId) {
  let s = state.sessions.get(sessionId);
  if (!s) {
    s = {
      id: sessionId,
      ordinal: state.sessions.size,
      direction: null,
      mode: null,
      ended: false,
      drained: null,
      lastEventId: null,
      summary: "",
      startedAt: Date.now(),
    };
    state.sessions.set(sessionId, s);
  }
  return s;
}

function newCard(sessionId, id) {
  return {
    id,
    sessionId,
    index: 0,
    part: 0,
    parentId: "",
    live: true, // no final transcript yet
    hidden: false, // an empty final: nothing was said
    committed: "",
    tentative: "",
    partialWindow: -1,
    rough: "", // translation.partial: rough live translation of the committed words
    roughWindow: -1,
    text: "", // asr.final
    language: "",
    startMs: 0,
    speaker: "",
    dbIdioms: [], // idiom.detected (offsets in `text`), before the model answers
    translation: null, // newest translation.final
    classroom: [], // correction.detected (teacher corrections) on this utterance
  };
}

function card(state, sessionId, id) {
  let c = state.cards.get(id);
  if (!c) {
    c = newCard(sessionId, id);
    state.cards.set(id, c);
  }
  state.dirty.add(id);
  return c;
}

/** Redis stream ids ("1700000000000-3") in order; true when a comes after b. */
export function idAfter(a, b) {
  if (!b) return true;
  const [am, as] = a.split("-").map(Number);
  const [bm, bs] = b.split("-").map(Number);
  return am > bm || (am === bm && as > bs);
}

/**
 * Apply one event frame ({type: "event", id, kind, data}) of session `sessionId`.
 * Returns false when the frame was already applied (its id is not after the last one).
 */
export function applyFrame(state, sessionId, frame) {
  const s = session(state, sessionId);
  if (frame.id && !idAfter(frame.id, s.lastEventId)) return false;
  if (frame.id) s.lastEventId = frame.id;
  applyEvent(state, sessionId, frame.kind, frame.data || {});
  return true;
}

/** Apply one event by kind; idempotent per utterance. */
export function applyEvent(state, sessionId, kind, d) {
  const s = session(state, sessionId);
  switch (kind) {
    case "session.started":
      s.direction = d.direction || s.direction;
      s.mode = d.mode || s.mode;
      break;
    case "session.settings_changed":
      if (d.direction) s.direction = d.direction;
      if (d.mode) s.mode = d.mode;
      break;
    case "session.ended":
      s.ended = true;
      break;
    case "audio.drained":
      s.drained = d.utterances ?? 0;
      break;
    case "audio.rejected":
      state.notes.push(`Audio refused: ${d.message || d.code}`);
      break;
    case "topic.summarized":
      s.summary = d.summary || "";
      break;
    case "speech.started": {
      const c = card(state, sessionId, d.utterance_id);
      c.index = d.index ?? c.index;
      break;
    }
    case "asr.partial": {
      const c = card(state, sessionId, d.utterance_id);
      c.index = d.index ?? c.index;
      const w = d.window_index ?? 0;
      if (c.live && w >= c.partialWindow) {
        c.partialWindow = w;
        c.committed = d.committed || "";
        c.tentative = d.tentative || "";
        if (d.language) c.language = d.language;
      }
      break;
    }
    case "translation.partial": {
      const c = card(state, sessionId, d.utterance_id);
      const w = d.window_index ?? 0;
      if (!c.translation && w >= c.roughWindow) {
        c.roughWindow = w;
        c.rough = d.text || "";
      }
      break;
    }
    case "speaker.assigned":
      for (const t of d.turns || []) {
        if (t.utterance_id && t.speaker) setTurnSpeaker(state, t.utterance_id, t.speaker);
      }
      if (d.utterance_id && d.speaker && !state.turnSpeaker.has(d.utterance_id)) {
        setTurnSpeaker(state, d.utterance_id, d.speaker);
      }
      break;
    case "asr.final": {
      const c = card(state, sessionId, d.utterance_id);
      c.live = false;
      c.index = d.index ?? c.index;
      c.part = d.part ?? 0;
      c.parentId = d.parent_id || "";
      c.text = d.text || "";
      c.language = d.language || c.language;
      c.startMs = d.start_ms ?? 0;
      if (d.speaker) c.speaker = d.speaker;
      c.hidden = !c.text.trim() || Boolean(d.dropped);
      c.committed = "";
      c.tentative = "";
      break;
    }
    case "idiom.detected": {
      const c = card(state, sessionId, d.utterance_id);
      if (!c.dbIdioms.some((i) => i.start === d.start && i.canonical === d.canonical)) {
        c.dbIdioms.push({
          phrase: d.phrase,
          canonical: d.canonical,
          literal: d.literal,
          meaning: d.meaning,
          start: d.start,
          end: d.end,
          origin: "db",
        });
      }
      break;
    }
    case "translation.final": {
      const c = card(state, sessionId, d.utterance_id);
      const revision = d.revision ?? 0;
      if (!c.translation || revision >= c.translation.revision) {
        c.translation = {
          revision,
          corrected: d.corrected || "",
          translation: d.translation || "",
          corrections: d.corrections || [],
          idioms: d.idioms || [],
          status: d.status || "ok",
          sourceLanguage: d.source_language || "",
          targetLanguage: d.target_language || "",
        };
        if (d.speaker && !c.speaker) c.speaker = d.speaker;
      }
      break;
    }
    case "correction.detected": {
      const c = card(state, sessionId, d.utterance_id);
      if (!c.classroom.some((x) => x.said === d.said && x.correct === d.correct)) {
        c.classroom.push({ said: d.said, correct: d.correct, why: d.why, cue: d.cue });
      }
      break;
    }
    case "speaker.joined": {
      const key = `${sessionId} ${d.speaker}`;
      const old = state.speakers.get(key);
      state.speakers.set(key, {
        speaker: d.speaker,
        label: d.label || d.speaker,
        name: old ? old.name : "",
        color: d.color || "",
        number: d.number ?? 0,
        isUser: Boolean(d.is_user),
      });
      markSpeaker(state, sessionId, d.speaker);
      break;
    }
    case "speaker.renamed": {
      const key = `${sessionId} ${d.speaker}`;
      const sp = state.speakers.get(key) || { speaker: d.speaker, label: d.speaker, color: "", number: 0 };
      state.speakers.set(key, { ...sp, name: d.name || "", isUser: Boolean(d.is_user) || sp.isUser });
      markSpeaker(state, sessionId, d.speaker);
      break;
    }
    case "term.saved":
      state.saved.add(savedKey(d.utterance_id, d.text));
      if (d.utterance_id && state.cards.has(d.utterance_id)) state.dirty.add(d.utterance_id);
      break;
    default:
      break; // a kind this view does not show (yet)
  }
}

function setTurnSpeaker(state, utteranceId, speaker) {
  state.turnSpeaker.set(utteranceId, speaker);
  if (state.cards.has(utteranceId)) state.dirty.add(utteranceId);
}

function markSpeaker(state, sessionId, speaker) {
  for (const c of state.cards.values()) {
    if (c.sessionId === sessionId && speakerOf(state, c) === speaker) state.dirty.add(c.id);
  }
}

export function savedKey(utteranceId, text) {
  return `${utteranceId || ""} ${(text || "").toLowerCase()}`;
}

/** The speaker id of a card: its final's, else the one speaker.assigned gave its turn. */
export function speakerOf(state, c) {
  return c.speaker || state.turnSpeaker.get(c.id) || "";
}

/** What to show for a card's speaker: {id, display, color} or null when unknown. */
export function speakerView(state, c) {
  const id = speakerOf(state, c);
  if (!id) return null;
  const sp = state.speakers.get(`${c.sessionId} ${id}`);
  return { id, display: (sp && (sp.name || sp.label)) || id, color: (sp && sp.color) || "" };
}

/** Sort key of a card: session, utterance index, speaker turn. */
export function cardOrder(state, c) {
  const s = state.sessions.get(c.sessionId);
  return [s ? s.ordinal : 0, c.index, c.part];
}

export function compareOrder(a, b) {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

/**
 * The source line of a final card, cut into runs for rendering:
 * [{text, idiom?: index into idioms, fix?: correction}], and the idioms it shows.
 * After translation.final: its corrected text, idioms and corrections; before it: the
 * heard text with the idiom database's matches.
 */
export function sourceRuns(c) {
  const t = c.translation;
  const text = t && t.corrected ? t.corrected : c.text;
  const idioms = (t && t.corrected ? t.idioms : c.dbIdioms).filter(
    (i) => Number.isInteger(i.start) && Number.isInteger(i.end) && i.start >= 0 && i.end <= text.length && i.start < i.end,
  );
  const corrections = t && t.corrected ? t.corrections || [] : [];
  const marks = new Array(text.length).fill(null).map(() => ({ idiom: -1, fix: -1 }));
  idioms.forEach((idiom, n) => {
    for (let k = idiom.start; k < idiom.end; k++) if (marks[k].idiom < 0) marks[k].idiom = n;
  });
  corrections.forEach((fix, n) => {
    const at = fix.fixed ? text.indexOf(fix.fixed) : -1;
    if (at < 0) return;
    for (let k = at; k < at + fix.fixed.length; k++) if (marks[k].fix < 0) marks[k].fix = n;
  });
  const runs = [];
  for (let k = 0; k < text.length; k++) {
    const m = marks[k];
    const last = runs[runs.length - 1];
    if (last && last.idiom === m.idiom && last.fix === m.fix) last.text += text[k];
    else runs.push({ text: text[k], idiom: m.idiom, fix: m.fix });
  }
  return {
    runs: runs.map((r) => ({
      text: r.text,
      idiom: r.idiom >= 0 ? r.idiom : null,
      fix: r.fix >= 0 ? corrections[r.fix] : null,
    })),
    idioms,
    corrections,
  };
}

/** Source and target language of a card ("es"/"en"), from what is known about it. */
export function languages(state, c) {
  const t = c.translation;
  if (t && t.sourceLanguage && t.targetLanguage) return [t.sourceLanguage, t.targetLanguage];
  const s = state.sessions.get(c.sessionId);
  const direction = (s && s.direction) || "es-en";
  if (direction === "en-es") return ["en", "es"];
  if (direction === "auto" && c.language === "en") return ["en", "es"];
  return ["es", "en"];
}

/** Whether a session has nothing more to show: audio drained, and every card final and translated. */
export function settled(state, sessionId) {
  const s = state.sessions.get(sessionId);
  if (!s || !s.ended || s.drained === null) return false;
  for (const c of state.cards.values()) {
    if (c.sessionId !== sessionId || c.hidden) continue;
    if (c.live || !c.translation) return false;
  }
  return true;
}
