"""The browser for the web client's tests: Debian's chromium driven by playwright.

Never a downloaded browser: ``/usr/bin/chromium`` (``apt-get install chromium``; scripts/test
installs it when run as root), headless, in a 360×800 phone viewport, with nothing that phones
home. ``phone(mic_wav)`` opens a page whose fake microphone plays ``mic_wav`` once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
PHONE = {"width": 360, "height": 800}
UI_TOKEN = "ui-test-token"  # the token of the `gateway_only` fixture
# Chromium in a closed network: nothing that phones home, no GPU, a fresh profile (playwright
# makes a new empty user data dir for each launch).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]


def wait_until(cond: Callable[[], Any], timeout: float, what: str, page: Any = None) -> Any:
    """Poll ``cond``; with a ``page``, wait through it, so its event handlers (socket frames) run."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        if page is not None:
            page.wait_for_timeout(250)
        else:
            time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_js(page: Any, expression: str, timeout: float = 30, arg: Any = None) -> Any:
    """Poll a JavaScript expression (or function, with ``arg``) until it is truthy. Through
    ``page.evaluate``, which the page's Content-Security-Policy (no eval) allows, unlike
    ``wait_for_function``: the tests run the page with its real CSP."""
    if arg is None:
        return wait_until(lambda: page.evaluate(expression), timeout, expression, page)
    return wait_until(lambda: page.evaluate(expression, arg), timeout, expression, page)


# Select characters [from, to) of the text of the element a CSS selector names, as a finger's
# long-press and drag would: page.evaluate(SELECT_TEXT, [selector, from, to]) -> the selection.
SELECT_TEXT = """([selector, from, to]) => {
  const root = document.querySelector(selector);
  root.scrollIntoView({block: 'center'});
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const points = [];
  let seen = 0;
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    for (const [k, at] of [[0, from], [1, to]]) {
      if (points[k] === undefined && at >= seen && at <= seen + n.length) points[k] = [n, at - seen];
    }
    seen += n.length;
  }
  const range = document.createRange();
  range.setStart(...points[0]);
  range.setEnd(...points[1]);
  const sel = document.getSelection();
  sel.removeAllRanges();
  sel.addRange(range);
  return sel.toString();
}"""


@contextmanager
def phone(mic_wav: Path | None = None, extra_args: list[str] | None = None) -> Iterator[Any]:
    """A page in a 360×800 phone viewport; ``mic_wav`` plays once into its microphone."""
    from playwright.sync_api import sync_playwright

    args = [*CHROMIUM_ARGS, *(extra_args or [])]
    if mic_wav is not None:
        args.append(f"--use-file-for-fake-audio-capture={mic_wav}%noloop")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)
        try:
            context = browser.new_context(
                viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True, permissions=["microphone"]
            )
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on(
                "console", lambda m: errors.append(m.text) if m.type == "error" and "favicon" not in m.text else None
            )
            page.errors = errors
            yield page
        finally:
            browser.close()
