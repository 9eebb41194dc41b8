// Save words by selecting them: select a word or a few in a line's source text and a floating
// "Save “…”" button appears next to the selection; tapping it hands the words to `onSave`.
//
// Shared by the pages that show transcript lines (History now, the live cards later), so it
// knows nothing about them beyond this markup:
//
//   <li data-utterance-id="…" data-session-id="…">   the line (any element; data-session-id
//     <p class="source" lang="es">…</p>                 may sit on an ancestor instead, e.g. the
//   </li>                                              list, for pages showing one session)
//
// Only a selection that starts and ends inside one line's `.source` counts. The selection is
// widened to whole words (a drag on a desktop often cuts a word) and trimmed of punctuation,
// so "rindieron homenaje." saves "rindieron homenaje".
//
// The button lives inside the line, after its `.source`, so Tab reaches it right after the
// line's other controls; it is positioned with `position: fixed` next to the selection (its
// look is `.selection-save` in history.css, which every page loads). It stays put while the
// selection is cleared by the tap that presses it (Android clears a selection on touchstart),
// since the words are taken when it is shown, not when it is pressed.

const MAX_WORDS = 12; // longer is a sentence, not a term to study
const MAX_CHARS = 120;
const EDGE = /^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu;
const WORD_CHAR = /[\p{L}\p{N}\p{M}'’-]/u;

/** The term to save for words a user selected: a word, or a phrase of several. */
export function selectedTerm({ text, utteranceId, language }) {
  return {
    kind: text.split(/\s+/).length > 1 ? "phrase" : "word",
    text,
    utterance_id: utteranceId,
    language: language === "en" ? "en" : "es",
  };
}

/**
 * Watch `container` for selections of words in its lines and offer to save them.
 *
 * @param {HTMLElement} container the element holding the lines (a list of cards)
 * @param {(term: {text: string, utteranceId: string, sessionId: string, language: string})
 *   => (void | Promise<unknown>)} onSave called when the user presses the button; while the
 *   promise it returns is pending the button says "Saving…"
 * @returns {() => void} stops watching and removes the button
 */
export function watchSelection(container, onSave) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "selection-save";
  button.hidden = true;
  const label = document.createElement("span");
  label.className = "selection-save-text";
  button.append(label);

  let pending = null; // {text, utteranceId, sessionId, language, range}
  let saving = false;
  let pressing = false; // a finger or mouse is down on the button
  let hideTimer = 0;
  let frame = 0;

  function hide() {
    clearTimeout(hideTimer);
    pending = null;
    if (!button.hidden) {
      const hadFocus = button === document.activeElement;
      button.hidden = true;
      // keep the keyboard user where they were rather than dropping focus to <body>
      if (hadFocus) button.closest("[data-utterance-id]")?.focus?.();
    }
  }

  function place(range) {
    const rects = [...range.getClientRects()].filter((r) => r.width || r.height);
    const box = rects.length ? rects[rects.length - 1] : range.getBoundingClientRect();
    const first = rects.length ? rects[0] : box;
    const view = visibleBox(container);
    // off the visible part of the list (scrolled away): nothing to point at
    if (box.bottom < view.top || first.top > view.bottom) {
      button.style.visibility = "hidden";
      return;
    }
    button.style.visibility = "";
    const width = button.offsetWidth || 160;
    const height = button.offsetHeight || 48;
    const gap = 14; // Android's selection handles hang below the words
    // below the selection (Android shows its own copy/share bar above it), else above
    let top = box.bottom + gap;
    if (top + height > window.innerHeight - 8) top = first.top - gap - height;
    top = Math.max(8, Math.min(top, window.innerHeight - height - 8));
    let left = (first.left + box.right) / 2 - width / 2;
    left = Math.max(8, Math.min(left, window.innerWidth - width - 8));
    button.style.top = `${Math.round(top)}px`;
    button.style.left = `${Math.round(left)}px`;
  }

  function update() {
    frame = 0;
    if (saving) return;
    const found = selected(container);
    if (!found) {
      // the tap on the button may clear the selection before its click: wait for the click
      if (pending && !pressing) {
        clearTimeout(hideTimer);
        hideTimer = setTimeout(() => {
          if (!pressing && !saving && !selected(container)) hide();
        }, 400);
      }
      return;
    }
    clearTimeout(hideTimer);
    pending = found;
    const text = `Save “${found.text}”`;
    if (label.textContent !== text) label.textContent = text;
    button.setAttribute("aria-label", `Save “${found.text}” to your study deck`);
    const source = found.line.querySelector(".source");
    if (button.parentElement !== found.line || button.previousElementSibling !== source) {
      (source || found.line).after(button);
    }
    button.hidden = false;
    button.disabled = false;
    place(found.range);
  }

  function schedule() {
    if (!frame) frame = requestAnimationFrame(update);
  }

  function reposition() {
    if (pending && !button.hidden && pending.range) place(pending.range);
  }

  async function press() {
    if (!pending || saving) return;
    const { text, utteranceId, sessionId, language } = pending;
    saving = true;
    button.disabled = true;
    label.textContent = "Saving…";
    try {
      await onSave({ text, utteranceId, sessionId, language });
    } finally {
      saving = false;
      pressing = false;
      document.getSelection()?.removeAllRanges();
      hide();
    }
  }

  const onDown = (e) => {
    pressing = true;
    // a mouse press on a button would clear the selection on a desktop; keep it
    if (e.pointerType === "mouse") e.preventDefault();
  };
  const onUp = () => {
    // the click comes after pointerup; let it land before a cleared selection hides us
    setTimeout(() => {
      pressing = false;
    }, 500);
  };
  const onKey = (e) => {
    if (e.key === "Escape" && !button.hidden) {
      e.preventDefault();
      document.getSelection()?.removeAllRanges();
      hide();
    }
  };

  button.addEventListener("pointerdown", onDown);
  button.addEventListener("pointerup", onUp);
  button.addEventListener("pointercancel", onUp);
  button.addEventListener("click", press);
  button.addEventListener("keydown", onKey);
  document.addEventListener("selectionchange", schedule);
  container.addEventListener("keydown", onKey);
  window.addEventListener("scroll", reposition, { capture: true, passive: true });
  window.addEventListener("resize", reposition, { passive: true });

  return () => {
    cancelAnimationFrame(frame);
    clearTimeout(hideTimer);
    document.removeEventListener("selectionchange", schedule);
    container.removeEventListener("keydown", onKey);
    window.removeEventListener("scroll", reposition, { capture: true });
    window.removeEventListener("resize", reposition);
    button.remove();
  };
}

/**
 * The words selected in one line's `.source` inside `container`, widened to whole words and
 * trimmed of punctuation: {text, utteranceId, sessionId, language, line, range}, or null.
 */
function selected(container) {
  const sel = document.getSelection();
  if (!sel || sel.rangeCount === 0 || sel.isCollapsed) return null;
  const range = sel.getRangeAt(0);
  const source = elementOf(range.startContainer)?.closest(".source");
  if (!source || !container.contains(source) || !source.contains(range.endContainer)) return null;
  const line = source.closest("[data-utterance-id]");
  if (!line || !container.contains(line)) return null;

  const whole = source.textContent;
  let start = offsetIn(source, range.startContainer, range.startOffset);
  let end = offsetIn(source, range.endContainer, range.endOffset);
  while (start > 0 && isWord(whole[start - 1]) && isWord(whole[start])) start--;
  while (end > 0 && isWord(whole[end]) && isWord(whole[end - 1])) end++;
  const text = whole.slice(start, end).replace(/\s+/g, " ").replace(EDGE, "");
  if (!text || text.length > MAX_CHARS || text.split(" ").length > MAX_WORDS) return null;

  const sessionId = line.dataset.sessionId || line.closest("[data-session-id]")?.dataset.sessionId || "";
  const language = source.closest("[lang]")?.lang || "es";
  return { text, utteranceId: line.dataset.utteranceId, sessionId, language, line, range: range.cloneRange() };
}

/** The part of the viewport where `node` can show: clipped by every scrolling ancestor. */
function visibleBox(node) {
  const box = { top: 0, bottom: window.innerHeight };
  for (let p = node; p && p !== document.body; p = p.parentElement) {
    const style = getComputedStyle(p);
    if (style.overflowY === "visible" && style.overflowX === "visible") continue;
    const r = p.getBoundingClientRect();
    box.top = Math.max(box.top, r.top);
    box.bottom = Math.min(box.bottom, r.bottom);
  }
  return box;
}

function isWord(ch) {
  return ch !== undefined && WORD_CHAR.test(ch);
}

function elementOf(node) {
  return node && node.nodeType === Node.ELEMENT_NODE ? node : node?.parentElement;
}

/** The character offset in `root`'s text of a (node, offset) boundary point. */
function offsetIn(root, node, offset) {
  const r = document.createRange();
  r.selectNodeContents(root);
  r.setEnd(node, offset);
  return r.toString().length;
}
