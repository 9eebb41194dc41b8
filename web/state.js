// The view's state: a pure function of the session events received (gateway/PROTOCOL.md).
//
// Cards are keyed by utterance id, speakers by (session, speaker id), so an event that
// arrives twice (a replay after a reconnect, two sockets of one session) changes nothing
// the second time: applying the same frames again gives the same state. No DOM here.
//
// Practice mode adds the partner's cards: each `tutor.replied` is a card of its own (kind
// "tutor", id `<utterance id>~reply`) placed right after the learner's line it answers.

/** A fresh, empty state. */
export function createState() {
  return {
    sessions: new Map(), // session id -> {id, ordinal, direction, mode, speak, topic, ended, drained, ...}
    cards: new Map(), // utterance id -> card (see newCard); `<utterance id>~reply` -> partner's card
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
      speak: null, // auto | on | off (what Habla speaks aloud)
      topic: "", // practice mode: what the learner wants to talk about
      ended: false,
      drained: null,
      lastEventId: null,
      summary: "",
      startedAt: Date.now(),
      speechDue: new Set(), // event ids of translations and replies whose spoken audio is still to come
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
    classroom: [], // correction.detected on this utterance (a teacher's, or cue "practice": the learner's slips)
    practice: false, // said in practice mode: answered by a partner's card, not translated
    replyId: "", // the partner's card answering it
  };
}

/** The id of the partner's card answering utterance `utteranceId` (practice mode). */
export function replyId(utteranceId) {
  return `${utteranceId}~reply`;
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
      s.speak = d.speak || s.speak;
      if (typeof d.topic === "string") s.topic = d.topic;
      break;
    case "session.settings_changed":
      if (d.direction) s.direction = d.direction;
      if (d.mode) s.mode = d.mode;
      if (d.speak) s.speak = d.speak;
      if (typeof d.topic === "string") s.topic = d.topic;
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
      c.practice = c.practice || s.mode === "practice";
      if (state.cards.has(replyId(c.id))) {
        c.practice = true;
        c.replyId = replyId(c.id);
      }
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
      if (d.event_id && willSpeak(s, kind, d)) s.speechDue.add(d.event_id);
      break;
    }
    case "tts.audio":
      if (d.last) s.speechDue.delete(d.spoken_id);
      break;
    case "correction.detected": {
      const c = card(state, sessionId, d.utterance_id);
      if (!c.classroom.some((x) => x.said === d.said && x.correct === d.correct)) {
        c.classroom.push({ said: d.said, correct: d.correct, why: d.why, cue: d.cue });
      }
      break;
    }
    case "tutor.replied": {
      if (d.event_id && willSpeak(s, kind, d)) s.speechDue.add(d.event_id);
      const id = replyId(d.utterance_id);
      const learner = state.cards.get(d.utterance_id);
      if (learner) {
        learner.practice = true;
        learner.replyId = id;
        state.dirty.add(learner.id);
      }
      const r = {
        id,
        kind: "tutor",
        sessionId,
        forId: d.utterance_id,
        index: d.index ?? 0,
        said: d.said || "",
        reply: d.reply || "",
        replyTranslation: d.reply_translation || "",
        corrections: (d.corrections || []).filter((x) => x && x.correct),
        level: d.level || "",
        levelEvidence: d.level_evidence || {},
        topic: d.topic || "",
        status: d.status || "ok",
      };
      state.cards.set(r.id, r);
      state.dirty.add(r.id);
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

/** Sort key of a card: session, utterance index, speaker turn (a partner's card right after its line). */
export function cardOrder(state, c) {
  const s = state.sessions.get(c.sessionId);
  if (c.kind === "tutor") {
    const learner = state.cards.get(c.forId);
    return [s ? s.ordinal : 0, learner ? learner.index : c.index, (learner ? learner.part : 0) + 0.5];
  }
  return [s ? s.ordinal : 0, c.index, c.part];
}

export function compareOrder(a, b) {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

/** Where `phrase` stands in `text` as whole words (case-insensitive), or -1. */
function findWords(text, phrase) {
  const hay = text.toLowerCase();
  const needle = phrase.toLowerCase();
  const letter = /[\p{L}\p{N}]/u;
  for (let at = hay.indexOf(needle); at >= 0; at = hay.indexOf(needle, at + 1)) {
    const before = at > 0 ? text[at - 1] : "";
    const after = text[at + needle.length] || "";
    if (!letter.test(before) && !letter.test(after)) return at;
  }
  return -1;
}

/**
 * The source line of a final card, cut into runs for rendering:
 * [{text, idiom?: index into idioms, fix?: correction, slip?: practice correction}], and the
 * idioms it shows. After translation.final: its corrected text, idioms and corrections; before
 * it: the heard text with the idiom database's matches. In practice mode the learner's slips
 * (`correction.detected` with cue "practice") are marked where their words are.
 */
export function sourceRuns(c) {
  const t = c.translation;
  const text = t && t.corrected ? t.corrected : c.text;
  const idioms = (t && t.corrected ? t.idioms : c.dbIdioms).filter(
    (i) => Number.isInteger(i.start) && Number.isInteger(i.end) && i.start >= 0 && i.end <= text.length && i.start < i.end,
  );
  const corrections = t && t.corrected ? t.corrections || [] : [];
  const slips = (c.classroom || []).filter((x) => x.cue === "practice" && x.said);
  const marks = new Array(text.length).fill(null).map(() => ({ idiom: -1, fix: -1, slip: -1 }));
  idioms.forEach((idiom, n) => {
    for (let k = idiom.start; k < idiom.end; k++) if (marks[k].idiom < 0) marks[k].idiom = n;
  });
  corrections.forEach((fix, n) => {
    const at = fix.fixed ? text.indexOf(fix.fixed) : -1;
    if (at < 0) return;
    for (let k = at; k < at + fix.fixed.length; k++) if (marks[k].fix < 0) marks[k].fix = n;
  });
  slips.forEach((slip, n) => {
    const at = findWords(text, slip.said);
    if (at < 0) return;
    for (let k = at; k < at + slip.said.length; k++) if (marks[k].slip < 0) marks[k].slip = n;
  });
  const runs = [];
  for (let k = 0; k < text.length; k++) {
    const m = marks[k];
    const last = runs[runs.length - 1];
    if (last && last.idiom === m.idiom && last.fix === m.fix && last.slip === m.slip) last.text += text[k];
    else runs.push({ text: text[k], idiom: m.idiom, fix: m.fix, slip: m.slip });
  }
  return {
    runs: runs.map((r) => ({
      text: r.text,
      idiom: r.idiom >= 0 ? r.idiom : null,
      fix: r.fix >= 0 ? corrections[r.fix] : null,
      slip: r.slip >= 0 ? slips[r.slip] : null,
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

/**
 * Whether a session has nothing more to show: audio drained, and every card final and
 * translated (in practice mode: answered by the partner).
 */
export function settled(state, sessionId) {
  const s = state.sessions.get(sessionId);
  if (!s || !s.ended || s.drained === null) return false;
  for (const c of state.cards.values()) {
    if (c.sessionId !== sessionId || c.hidden || c.kind === "tutor") continue;
    if (c.live || !(c.translation || c.replyId)) return false;
  }
  return true;
}

/**
 * Whether the server speaks this translation or reply (the tts stage's rule,
 * habla_contracts.spoken): replies unless speaking is off; live translations with text when
 * it is on, or auto and into Spanish; never a translation in practice mode.
 */
export function willSpeak(s, kind, d) {
  const speak = s.speak || "auto";
  if (speak === "off") return false;
  if (kind === "tutor.replied") return Boolean((d.reply || "").trim());
  if (kind !== "translation.final") return false;
  if ((d.revision ?? 0) !== 0 || !["ok", "fallback"].includes(d.status || "ok") || s.mode === "practice") return false;
  if (!(d.translation || "").trim()) return false;
  return speak === "on" || d.target_language === "es";
}

/** Whether a session still waits for spoken audio of a translation or reply it has. */
export function speechPending(state, sessionId) {
  const s = state.sessions.get(sessionId);
  return Boolean(s && s.speechDue.size);
}

/** What the speaker setting does now: speak | silent, for `speak` (auto/on/off), mode and direction. */
export function speaksAloud(speak, mode, direction) {
  if (speak === "on") return true;
  if (speak === "off") return false;
  return mode === "practice" || direction !== "es-en"; // auto: whatever is said to someone in Spanish
}
