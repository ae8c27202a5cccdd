"""The dashboard pictures in docs/, made from a small `mobilise demo` (not a bench: it
lives here for the bench plumbing it shares).

    .venv/bin/python -m bench.screenshots

Everything runs on a scratch SQLite database in a temporary folder (the project's own
`var/` is never touched), through the real commands: `mobilise demo` at 6,000 signatures
ending at a fixed instant (same seed, same campaign: the pictures change when the code
does), `mobilise apikey create`, then `mobilise run --no-scheduler` on 127.0.0.1 and a free
port, stopped at the end whatever happens. Headless Chromium (`/usr/bin/chromium`, or
`MOBILISE_TEST_CHROMIUM`) signs in with the key and writes:

- `docs/dashboard-journey.png`: the shipped journey's page (diagram with live counts,
  funnel, signatures and milestones, revenue per email, A/B verdict);
- `docs/dashboard-preview.png`: the preview of the milestone update email, images loaded.

About a minute and a half on the bench machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Page, expect

from bench.common import free_port, mobilise_run
from tests.e2e.browser import chromium

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
JOURNEY = "stop-reconnaissance-faciale"
SIGNATURES = "6000"
END = "2026-06-22T21:00"  # the demo's last instant: fixed, so that pictures are repeatable


def say(text: str) -> None:
    sys.stderr.write(f"screenshots: {text}\n")


def mobilise(env: dict[str, str], *args: str) -> str:
    """A `mobilise` command run to its end; its stdout."""
    done = subprocess.run(
        [sys.executable, "-m", "engine.cli", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"mobilise {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def sign_in(page: Page, base: str, key: str) -> None:
    page.goto(f"{base}/dashboard")
    page.get_by_label("Your API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


def journey(page: Page, base: str) -> Path:
    page.goto(f"{base}/dashboard/journeys/{JOURNEY}")
    expect(page.locator("body")).to_have_attribute("data-charts", "drawn")
    path = DOCS / "dashboard-journey.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def preview(page: Page, base: str) -> Path:
    page.goto(f"{base}/dashboard/templates/update")
    expect(page.get_by_role("heading", name="Preview: update")).to_be_visible()
    frame = page.frame_locator("#html")
    expect(frame.get_by_text("Bonjour Camille,")).to_be_visible()
    # Every image of the email loaded: the logo and the campaign photo, from /static/
    frame.locator("img").last.scroll_into_view_if_needed()
    loaded = frame.locator("img").evaluate_all(
        "images => images.every(i => i.complete && i.naturalWidth > 0)"
    )
    if not loaded:
        raise SystemExit("the preview's images did not load")
    page.evaluate("window.scrollTo(0, 0)")
    path = DOCS / "dashboard-preview.png"
    page.screenshot(path=str(path))
    return path


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="mobilise-screenshots-") as folder:
        port = free_port()
        env = {
            **os.environ,
            "MOBILISE_DATABASE_URL": f"sqlite:///{Path(folder) / 'demo.db'}",
            "MOBILISE_VAR_DIR": folder,
            "MOBILISE_OUTBOX_DIR": str(Path(folder) / "outbox"),
            "MOBILISE_PROJECT_DIR": str(ROOT),
            # the emails' images and links point at this very server
            "MOBILISE_BASE_URL": f"http://127.0.0.1:{port}",
            "MOBILISE_TRANSPORT": "file",
        }
        say(f"mobilise demo --signatures {SIGNATURES} --now {END}, on a scratch database")
        mobilise(env, "demo", "--signatures", SIGNATURES, "--now", END)
        # `apikey create` prints the key alone on stdout
        key = mobilise(env, "apikey", "create", "--role", "admin", "--label", "screenshots")
        with mobilise_run(env, port) as base, chromium() as browser:
            say(f"mobilise run at {base}; Chromium signs in")
            context = browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 1000})
            page = context.new_page()
            sign_in(page, base, key.strip())
            written = [journey(page, base)]
            page.set_viewport_size({"width": 1200, "height": 1000})
            written.append(preview(page, base))
            context.close()
    say("written: " + ", ".join(str(p.relative_to(ROOT)) for p in written))


if __name__ == "__main__":
    main()
