"""What a test needs to know about an HTML page: the URLs it loads and any inline code."""

from __future__ import annotations

from html.parser import HTMLParser


class _Parts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []
        self._in_code: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        for name in ("src", "href", "action"):
            if found.get(name):
                self.urls.append(str(found[name]))
        if "style" in found:
            self.inline.append(f"style attribute on <{tag}>")
        if any(name.startswith("on") for name in found):
            self.inline.append(f"event handler on <{tag}>")
        if (tag == "script" and not found.get("src")) or tag == "style":
            self._in_code = tag

    def handle_endtag(self, tag: str) -> None:
        self._in_code = None

    def handle_data(self, data: str) -> None:
        if self._in_code and data.strip():
            self.inline.append(f"inline <{self._in_code}>")


def urls(html: str) -> list[str]:
    """Every src, href and form action of the page."""
    parts = _Parts()
    parts.feed(html)
    return parts.urls


def inline_code(html: str) -> list[str]:
    """Inline scripts, style elements, style attributes and event handlers (CSP forbids them)."""
    parts = _Parts()
    parts.feed(html)
    return parts.inline
