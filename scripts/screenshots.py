"""Refresh the README's pictures: start the app, drive headless Chromium through each tab, write PNGs.

    .venv/bin/python scripts/screenshots.py                      # -> docs/images/*.png (about 2-3 minutes)
    .venv/bin/python scripts/screenshots.py --keep-data /tmp/shots-data   # keep the run for bench/plots.py

It starts ``app.py`` on a free port with an empty data dir, clicks an example on Chat, Classification, NER
and FAQ, runs the one-click sentiment fine-tune on the Fine-tune tab and waits for it to finish, then shoots
the Fine-tune tab (its one-click buttons; progress, loss plot, log and base-vs-adapter table) and the Adapters table. Each PNG is reduced to a
256-colour palette so it stays well under 300 KB. Needs Debian's ``chromium`` and ``playwright``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.app_server import running_app  # noqa: E402 - the same start the browser tests use

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
OUT = REPO / "docs" / "images"
MAX_BYTES = 300_000


def shrink(path: Path) -> int:
    """Re-save ``path`` as a 256-colour PNG; its size in bytes."""
    from PIL import Image

    with Image.open(path) as image:
        image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)
    return path.stat().st_size


def wait_until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.3)
    raise TimeoutError(f"gave up waiting for {what} after {timeout:.0f} s")


def shoot(page, name: str, selector: str, last: str | None = None) -> None:
    """Screenshot ``selector`` (or the area from ``selector``'s top to ``last``'s bottom) as docs/images/NAME.png."""
    path = OUT / f"{name}.png"
    page.wait_for_timeout(1500)  # let the last render (and the plot's transition) settle
    if last is None:
        page.locator(selector).first.screenshot(path=str(path))
    else:
        top, bottom = page.locator(selector).first.bounding_box(), page.locator(last).first.bounding_box()
        scroll = page.evaluate("window.scrollY")
        clip = {"x": 0, "y": top["y"] + scroll - 8, "width": page.viewport_size["width"],
                "height": bottom["y"] + bottom["height"] - top["y"] + 16}
        page.screenshot(path=str(path), full_page=True, clip=clip)
    size = shrink(path)
    print(f"{path.relative_to(REPO)}: {size / 1000:.0f} KB", flush=True)
    if size > MAX_BYTES:
        raise SystemExit(f"{path} is {size} bytes, over {MAX_BYTES}: shoot a smaller area")


def tab_panel(page) -> str:
    """The visible tab's panel (what a screenshot of "this tab" should show)."""
    return "[role=tabpanel]:visible"


def wait_for_stable_text(page, selector: str, quiet_s: float = 3, timeout: float = 120) -> None:
    """Wait until the last element of ``selector`` stops changing (a streamed reply is complete)."""
    last, since, deadline = None, time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = page.locator(selector).last.inner_text()
        if text != last:
            last, since = text, time.monotonic()
        elif text.strip() and time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.3)


def run_example(page, tab: str, example: str, result: str, expected: str = "", timeout: float = 180) -> None:
    """Click ``example`` on ``tab`` and wait until ``result`` shows ``expected`` and nothing is processing."""
    page.get_by_role("tab", name=tab).click()
    page.get_by_text(example, exact=True).first.click()

    def shown() -> bool:
        target = page.locator(result).first
        text = target.input_value() if result.endswith("textarea") else target.inner_text()
        busy = "processing" in page.locator(tab_panel(page)).first.inner_text()
        return bool(text.strip()) and expected in text and "Loading" not in text[:20] and not busy

    wait_until(shown, timeout, f"a result in {result}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep-data", help="use (and keep) this data dir: the fine-tune run stays there")
    parser.add_argument("--width", type=int, default=1280)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    data_dir = Path(args.keep_data) if args.keep_data else Path(tempfile.mkdtemp(prefix="shots-"))
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        with running_app(env={"ASSISTANT_DATA_DIR": str(data_dir)}) as url, sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": args.width, "height": 900}, locale="en-US")
            page.goto(url)
            page.get_by_role("tab", name="Chat").wait_for()

            bot = "#chatbot .message.bot, #chatbot [data-testid='bot']"
            run_example(page, "Chat", "Write a haiku about autumn.", bot)
            wait_for_stable_text(page, bot)
            shoot(page, "chat", tab_panel(page))

            run_example(page, "Classification", "An absolute delight from start to finish!", "#classify-scores", "positive")
            shoot(page, "classification", tab_panel(page))
            run_example(page, "NER", "Angela Merkel met Tim Cook at Apple's office in Berlin.", "#ner-json", "Merkel")
            shoot(page, "ner", tab_panel(page))
            run_example(page, "FAQ", "What should I do if the model overfits during fine-tuning?", "#faq-answer", "validation")
            shoot(page, "faq", tab_panel(page))

            page.get_by_role("tab", name="Fine-tune").click()
            page.locator("#quickstart-sentiment").click()
            wait_until(lambda: "Finished" in page.locator("#ft-progress").inner_text()
                       or "Failed" in page.locator("#ft-progress").inner_text(), 600, "the one-click fine-tune")
            if "Failed" in page.locator("#ft-progress").inner_text():
                raise SystemExit(f"the fine-tune failed: {page.locator('#ft-progress').inner_text()}")
            wait_until(lambda: "Base model vs adapter" in page.locator("#ft-metrics").inner_text(), 30, "the metrics")
            shoot(page, "finetune_quickstart", "#quickstart")
            shoot(page, "finetune", "#ft-progress", "#ft-metrics")
            page.get_by_role("tab", name="Adapters").click()
            page.locator("#adapters-table").wait_for()
            shoot(page, "adapters", "#adapters-table")
            browser.close()
    finally:
        if not args.keep_data:
            shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
