// Cards in the DOM, rendered from the state (state.js) and nothing else: each card has one
// element keyed by its utterance id; rendering a card again replaces what changed, so a live
// card becomes its final card in place, and replayed events change nothing.
//
// Practice mode: the learner's line shows its slips marked (and listed, unless the partner's
// card lists them); the partner's card (`.card.tutor`) shows the Spanish reply (its words can be
// selected and saved like any card's), its English behind a "Show English" button (it is
// practice), the corrections it made ("better: tengo (not tiene)") and the learner's level.

import { el } from "./dom.js";
import { cardOrder, compareOrder, languages, savedKey, sourceRuns, speakerView } from "./state.js";

const LANGUAGE_NAMES = { es: "ES", en: "EN" };

export class View {
  /**
   * @param {HTMLOListElement} list the cards' <ol>
   * @param {{onSave: (card: object, idiom: object, button: HTMLElement) => void, onRename?: (card: object, speaker: object) => void, onLevel?: (card: object) => void}} hooks
   */
  constructor(list, hooks) {
    this.list = list;
    this.hooks = hooks;
    this.nodes = new Map(); // card id -> {node, sig, order}
    this.dividers = new Map(); // session id -> node
    this.revealed = new Set(); // partner's cards whose English is shown
    this.speakingId = ""; // the card whose words are being spoken aloud
  }

  /** Mark the card being spoken aloud (card id, or "" for none). */
  markSpeaking(id) {
    if (id === this.speakingId) return;
    this.nodes.get(this.speakingId)?.node.classList.remove("speaking");
    this.speakingId = id;
    this.nodes.get(id)?.node.classList.add("speaking");
  }

  /** Render the dirty cards of `state`; returns the ids of cards that just became final. */
  update(state) {
    const finals = [];
    for (const id of state.dirty) {
      const c = state.cards.get(id);
      if (c) {
        const wasLive = this.nodes.get(id)?.live;
        this.renderCard(state, c);
        if (wasLive && !c.live && !c.hidden) finals.push(id);
      }
    }
    state.dirty.clear();
    return finals;
  }

  /** A divider before each session's cards after the first (a new conversation). */
  divider(state, sessionId) {
    const s = state.sessions.get(sessionId);
    if (!s || s.ordinal === 0 || this.dividers.has(sessionId)) return;
    const when = new Date(s.startedAt).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    const node = el("li", { class: "divider", role: "separator" }, el("span", { text: `New conversation · ${when}` }));
    this.dividers.set(sessionId, node);
    this.insert(node, [s.ordinal, -1, 0]);
  }

  /** The element of card `c` (made and placed on first sight), or null when its sig is unchanged. */
  place(state, c, sig, make) {
    let entry = this.nodes.get(c.id);
    if (entry && entry.sig === sig) return null;
    this.divider(state, c.sessionId);
    const order = cardOrder(state, c);
    if (!entry) {
      entry = { node: make(), sig: "", order, live: false };
      this.nodes.set(c.id, entry);
      if (c.id === this.speakingId) entry.node.classList.add("speaking");
      this.insert(entry.node, order);
    } else if (compareOrder(entry.order, order) !== 0) {
      entry.node.remove();
      this.insert(entry.node, order);
    }
    entry.sig = sig;
    entry.order = order;
    return entry;
  }

  insert(node, order) {
    node._order = order;
    let before = null;
    for (let n = this.list.lastElementChild; n; n = n.previousElementSibling) {
      if (compareOrder(n._order, order) <= 0) break;
      before = n;
    }
    this.list.insertBefore(node, before);
  }

  renderCard(state, c) {
    let entry = this.nodes.get(c.id);
    if (c.hidden) {
      if (entry) {
        entry.node.remove();
        this.nodes.delete(c.id);
      }
      return;
    }
    if (c.kind === "tutor") {
      this.renderTutor(state, c);
      return;
    }
    const speaker = speakerView(state, c);
    const [src, dst] = languages(state, c);
    const saved = c.live ? [] : (c.translation?.idioms || c.dbIdioms).map((i) => state.saved.has(savedKey(c.id, i.canonical)));
    const reply = c.replyId ? state.cards.get(c.replyId) : null;
    const sig = JSON.stringify([c, speaker, src, saved, reply ? reply.corrections : null]);
    entry = this.place(state, c, sig, () => el("li", { class: "card", "data-utterance-id": c.id, "data-session-id": c.sessionId }));
    if (!entry) return;
    entry.live = c.live;
    const node = entry.node;
    if (c.live && node.classList.contains("live")) {
      this.updateLive(node, c, speaker, src, dst); // text changes in place: nothing flickers
      return;
    }
    const focused = node.contains(document.activeElement) ? document.activeElement.dataset.focus : null;
    node.classList.toggle("live", c.live);
    node.classList.toggle("final", !c.live);
    node.setAttribute("aria-busy", c.live ? "true" : "false");
    node.replaceChildren(...(c.live ? this.liveParts(c, speaker, src, dst) : this.finalParts(state, c, speaker, src, dst)));
    if (focused) node.querySelector(`[data-focus="${focused}"]`)?.focus();
  }

  updateLive(node, c, speaker, src, dst) {
    const [meta, source, rough] = this.liveParts(c, speaker, src, dst);
    node.querySelector(".meta").replaceWith(meta);
    const committed = node.querySelector(".committed");
    const tentative = node.querySelector(".tentative");
    if (committed && tentative && c.committed + c.tentative) {
      committed.textContent = c.committed;
      tentative.textContent = (c.committed && c.tentative ? " " : "") + c.tentative;
      node.querySelector(".listening")?.remove();
    } else {
      node.querySelector(".source").replaceWith(source);
    }
    node.querySelector(".rough").textContent = rough.textContent;
  }

  meta(c, speaker, src, dst, flag) {
    const chip = speaker
      ? el(
          "button",
          { type: "button", class: "speaker", "data-speaker": speaker.id, "data-focus": "speaker", title: "Rename", "aria-label": `${speaker.display}: rename` },
          el("span", { class: "dot", "aria-hidden": "true" }),
          speaker.display,
        )
      : null;
    if (chip) {
      if (speaker.color) chip.style.setProperty("--speaker", speaker.color);
      chip.addEventListener("click", () => this.hooks.onRename && this.hooks.onRename(c, speaker));
    }
    // a practice line is not translated: only its language
    const direction = el("span", {
      class: "langs",
      text: dst ? `${LANGUAGE_NAMES[src] || src}→${LANGUAGE_NAMES[dst] || dst}` : LANGUAGE_NAMES[src] || src,
      "aria-label": dst ? `${src} to ${dst}` : src,
    });
    return el("div", { class: "meta" }, chip, direction, flag || null);
  }

  liveParts(c, speaker, src, dst) {
    const heard = c.committed || c.tentative;
    const source = el(
      "p",
      { class: "source", lang: src },
      el("span", { class: "committed", text: c.committed }),
      el("span", { class: "tentative", text: (c.committed && c.tentative ? " " : "") + c.tentative }),
      heard ? null : el("span", { class: "listening", text: "listening…" }),
    );
    const rough = el("p", { class: "target rough", lang: dst, text: c.rough });
    return [this.meta(c, speaker, src, dst, el("span", { class: "flag live-flag", text: "live" })), source, rough];
  }

  finalParts(state, c, speaker, src, dst) {
    const t = c.translation;
    const { runs, idioms, corrections } = sourceRuns(c);
    const source = el("p", { class: "source", lang: src });
    for (const run of runs) {
      let node = run.text;
      if (run.fix) {
        node = el("mark", { class: "fix", title: `heard “${run.fix.heard}”` }, run.text);
      } else if (run.slip) {
        node = el("mark", { class: "slip", title: `better: ${run.slip.correct}` }, run.text);
      }
      if (run.idiom !== null) {
        const b = el("button", { class: "idiom", type: "button", "data-idiom": run.idiom, "data-focus": `idiom-${run.idiom}` }, node);
        b.addEventListener("click", () => {
          const target = source.parentElement?.querySelector(`.idiom-card[data-idiom="${run.idiom}"]`);
          if (target) {
            target.scrollIntoView({ block: "nearest", behavior: "smooth" });
            target.focus({ preventScroll: true });
          }
        });
        node = b;
      }
      source.append(node);
    }
    let flag = null;
    let target;
    if (!t && c.practice) {
      // answered by the partner's card, not translated
      target = c.replyId ? null : el("p", { class: "target pending answering", text: "your partner is answering…" });
    } else if (!t) {
      target = el("p", { class: "target pending", lang: dst }, c.rough ? `${c.rough} …` : "translating…");
    } else if (t.status === "untranslated" || (!t.translation && t.status !== "empty")) {
      flag = el("span", { class: "flag warn", text: "not translated" });
      target = el("p", { class: "target missing", text: "The translation failed for this line." });
    } else {
      if (t.status === "fallback") flag = el("span", { class: "flag", text: "literal (fallback)" });
      target = el("p", { class: "target", lang: dst, text: t.translation });
    }
    const parts = [this.meta(c, speaker, src, !t && c.practice ? "" : dst, flag), source, target];
    if (corrections.length) {
      parts.push(
        el(
          "ul",
          { class: "fixes", "aria-label": "Corrected from context" },
          ...corrections.map((x) =>
            el(
              "li",
              {},
              el("span", { class: "heard", text: x.heard }),
              " → ",
              el("strong", { text: x.fixed }),
              x.reason ? el("span", { class: "why", text: ` · ${x.reason}` }) : null,
            ),
          ),
        ),
      );
    }
    if (idioms.length) {
      parts.push(el("ul", { class: "idioms", "aria-label": "Idioms" }, ...idioms.map((i, n) => this.idiomCard(state, c, i, n))));
    }
    const teacher = c.classroom.filter((x) => x.cue !== "practice");
    if (teacher.length) parts.push(this.correctionList(teacher, "teacher", "Teacher's corrections"));
    // the learner's slips: listed here unless the partner's card lists them
    const reply = c.replyId ? state.cards.get(c.replyId) : null;
    const listed = (x) => reply && reply.corrections.some((r) => r.said === x.said && r.correct === x.correct);
    const slips = c.classroom.filter((x) => x.cue === "practice" && !listed(x));
    if (slips.length) parts.push(this.correctionList(slips, "teacher slips", "Corrections"));
    return parts.filter(Boolean);
  }

  correctionList(items, cls, label) {
    return el(
      "ul",
      { class: cls, "aria-label": label },
      ...items.map((x) =>
        el(
          "li",
          {},
          el("s", { text: x.said }),
          " → ",
          el("strong", { text: x.correct }),
          x.why ? el("span", { class: "why", text: ` · ${x.why}` }) : null,
        ),
      ),
    );
  }

  /** The practice partner's card: the reply, its English on request, gentle corrections, the level. */
  renderTutor(state, r) {
    const open = this.revealed.has(r.id);
    const entry = this.place(state, r, JSON.stringify([r, open]), () =>
      el("li", { class: "card tutor", "data-utterance-id": r.id, "data-session-id": r.sessionId }),
    );
    if (!entry) return;
    const node = entry.node;
    const focused = node.contains(document.activeElement) ? document.activeElement.dataset.focus : null;
    const failed = r.status === "failed";
    let level = null;
    if (r.level) {
      const evidence = levelEvidence(r.levelEvidence);
      level = el(
        "button",
        {
          type: "button",
          class: "level-chip",
          "data-focus": "level",
          title: evidence ? `Estimated from your lines so far: ${evidence}` : "Estimated from your lines so far",
          "aria-label": `Your level: ${r.level}. Show how it was estimated`,
        },
        "your level: ",
        el("strong", { text: r.level }),
      );
      level.addEventListener("click", () => this.hooks.onLevel && this.hooks.onLevel(r));
    }
    const meta = el(
      "div",
      { class: "meta" },
      el("span", { class: "partner", text: "Partner" }),
      level,
      failed ? el("span", { class: "flag warn", text: "no answer" }) : null,
    );
    const reply = r.reply
      ? el("p", { class: "source reply", lang: "es", text: r.reply })
      : el("p", { class: "target missing", text: "Your partner could not answer this line." });
    const parts = [meta, reply];
    if (r.replyTranslation) {
      const english = el("p", { class: "target reply-en", lang: "en", id: `en-${r.id}`, text: r.replyTranslation });
      english.hidden = !open;
      const reveal = el(
        "button",
        { type: "button", class: "reveal", "data-focus": "reveal", "aria-expanded": String(open), "aria-controls": `en-${r.id}` },
        open ? "Hide English" : "Show English",
      );
      reveal.addEventListener("click", () => {
        if (this.revealed.has(r.id)) this.revealed.delete(r.id);
        else this.revealed.add(r.id);
        this.renderTutor(state, state.cards.get(r.id) || r);
      });
      parts.push(reveal, english);
    }
    if (r.corrections.length) {
      parts.push(
        el(
          "ul",
          { class: "better", "aria-label": "Your partner's corrections" },
          ...r.corrections.map((x) =>
            el(
              "li",
              {},
              "better: ",
              el("strong", { lang: "es", text: x.correct }),
              x.said ? el("span", { class: "not" }, " (not ", el("s", { lang: "es", text: x.said }), ")") : null,
              x.why ? el("span", { class: "why", text: ` — ${x.why}` }) : null,
            ),
          ),
        ),
      );
    }
    node.classList.toggle("failed", failed);
    node.replaceChildren(...parts);
    if (focused) node.querySelector(`[data-focus="${focused}"]`)?.focus();
  }

  idiomCard(state, c, idiom, n) {
    const saved = state.saved.has(savedKey(c.id, idiom.canonical));
    const save = el(
      "button",
      { type: "button", class: "save", "data-focus": `save-${n}`, "aria-label": `${saved ? "Saved" : "Save"} “${idiom.canonical || idiom.phrase}”` },
      saved ? "Saved ✓" : "Save",
    );
    if (saved) save.setAttribute("aria-disabled", "true");
    save.addEventListener("click", () => {
      if (!saved) this.hooks.onSave(c, idiom, save);
    });
    return el(
      "li",
      { class: "idiom-card", "data-idiom": n, tabindex: "-1" },
      el("div", { class: "idiom-head" }, el("span", { class: "phrase", lang: "es", text: idiom.canonical || idiom.phrase }), save),
      el("p", { class: "meaning", text: idiom.meaning }),
      idiom.literal ? el("p", { class: "literal" }, el("span", { text: "literally: " }), el("em", { text: idiom.literal })) : null,
    );
  }
}

/** A level estimate's evidence as one line: "words: 42 · rare words: 0.12 · …". */
export function levelEvidence(evidence) {
  return Object.entries(evidence || {})
    .filter(([, v]) => typeof v === "number" || typeof v === "string")
    .map(([k, v]) => `${k.replace(/_/g, " ")}: ${typeof v === "number" && !Number.isInteger(v) ? v.toFixed(2) : v}`)
    .join(" · ");
}
