"""Headless Chromium for the tests that check what a page shows: Debian's (installed by make test), driven by Playwright."""

import shutil
from contextlib import contextmanager


@contextmanager
def chromium():
    """A launched headless Chromium, closed on exit."""
    from playwright.sync_api import sync_playwright

    executable = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield browser
        finally:
            browser.close()
