// One small helper for building DOM from JavaScript, shared by the pages (no templates, no
// innerHTML: text goes in as text).

/**
 * `el("p", {class: "x", text: "hi", "aria-label": "…"}, child, …)`: an element with attributes
 * (`class`, `text` for textContent, anything else as an attribute; null/undefined/false are
 * left out, true is an empty attribute) and children (nodes or strings; null/false skipped).
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) node.append(c);
  return node;
}
