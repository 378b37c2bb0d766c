#!/usr/bin/env python3
"""check-links.py BOOK_DIR — every internal link and anchor of a built mdBook resolves.

Reads each HTML page's href and src attributes; a link to another page must name a file that
exists, and a #fragment must name an id (or a name) on the page it points to. Links that leave the
book (a scheme such as https: or mailto:) are not followed: the build has no network. Prints each
broken link with the page it is on and exits 1 when there is one.
"""
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.links = set(), []

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("id", "name") and value:
                self.ids.add(value)
            if key in ("href", "src") and value is not None:
                self.links.append(value)


def parse(path):
    page = Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def main(root):
    root = Path(root).resolve()
    pages = {p: parse(p) for p in root.rglob("*.html")}
    broken = []
    for path, page in pages.items():
        for link in page.links:
            parts = urlsplit(link)
            if parts.scheme or parts.netloc or link.startswith("javascript:"):
                continue
            # A site-absolute path (mdBook's 404 page links "/") is taken from the book's root.
            base = root if parts.path.startswith("/") else path.parent
            target = (base / unquote(parts.path).lstrip("/")).resolve() if parts.path else path
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{path.relative_to(root)}: {link}: no file {unquote(parts.path)}")
                continue
            fragment = unquote(parts.fragment)
            if fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else parse(target).ids
                if fragment not in ids:
                    broken.append(f"{path.relative_to(root)}: {link}: no anchor #{fragment}")
    for line in sorted(set(broken)):
        print(f"check-links: {line}", file=sys.stderr)
    checked = sum(len(p.links) for p in pages.values())
    print(f"check-links: {len(pages)} pages, {checked} links, {len(set(broken))} broken")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "target/book"))
