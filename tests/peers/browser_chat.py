"""The chat page in a real browser: Playwright driving Debian's chromium, headless.

    browser_chat.py URL [SCREENSHOT.png]

Prints, in order: `joined` (the page is in the room), then, after the test's nc member
writes a line with markup in it, `shown as text` (the markup is there as characters, no
element was made), `ran nothing` (its handler never ran), `actions: KINDS` (the classes of
the nc member's actions that pose as notices), `who: NICKS` (the member list).
Sends `hello from the browser` once joined. Waits for stdin to close, then exits.
"""

import sys

from playwright.sync_api import sync_playwright

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def wait_until(page, expr, timeout_ms=20000):
    """Polls `expr` with `page.evaluate` until it is true. Not `wait_for_function`: when its
    first check is false, Playwright re-evaluates the string with eval() in the page, which
    the chat page's Content-Security-Policy (no 'unsafe-eval') refuses."""
    waited = 0
    while not page.evaluate(expr):
        if waited >= timeout_ms:
            raise TimeoutError(f"not true after {timeout_ms} ms: {expr}")
        page.wait_for_timeout(50)
        waited += 50


def main():
    url = sys.argv[1]
    shot = sys.argv[2] if len(sys.argv) > 2 else ""
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
        page = browser.new_page(viewport={"width": 900, "height": 560})
        page.goto(url)
        wait_until(page, "document.getElementById('state').textContent.startsWith('you are')")
        print("joined", flush=True)
        page.fill("#input", "hello from the browser")
        page.press("#input", "Enter")
        wait_until(page, "[...document.querySelectorAll('#log li')].some(li => li.textContent.includes('hi browser'))")
        text = page.evaluate(
            "[...document.querySelectorAll('#log li')].find(li => li.textContent.includes('hi browser')).textContent"
        )
        images = page.evaluate("document.querySelectorAll('#log img').length")
        assert "<img src=x" in text and images == 0, (text, images)
        print("shown as text:", text, flush=True)
        page.wait_for_timeout(500)
        title = page.title()
        assert title != "pwned", title
        print("ran nothing", flush=True)
        wait_until(page, "document.querySelectorAll('#who li').length >= 2")
        # The nc member's `/me here: admin, root, FAKE` and `/me joined` are actions: they
        # fill no member list and show as no notice.
        wait_until(page, "[...document.querySelectorAll('#log li')].some(li => li.textContent.includes('FAKE'))")
        kinds = page.evaluate(
            "[...document.querySelectorAll('#log li')].filter(li => /FAKE| joined$/.test(li.textContent) && li.textContent.startsWith('* ')).map(li => li.className).join(',')"
        )
        print("actions:", kinds, flush=True)
        who = page.evaluate("[...document.querySelectorAll('#who li')].map(li => li.textContent).join(', ')")
        print("who:", who, flush=True)
        if shot:
            page.screenshot(path=shot)
        sys.stdin.read()
        browser.close()


if __name__ == "__main__":
    main()
