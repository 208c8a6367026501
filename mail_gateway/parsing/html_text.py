"""Readable text from an HTML-only mail body (stdlib ``html.parser``: lenient, no dependency).

Lines are what a reader sees: ``<br>`` breaks a line, block elements (``<p>``, ``<div>``,
``<tr>``, ``<li>``, ...) start a new one, whitespace inside text collapses as a browser collapses
it (except in ``<pre>``), ``<style>``/``<script>``/``<head>`` are dropped and entities are
unescaped. Text inside ``<blockquote>`` is prefixed with ``> `` per level, so quoted history in
HTML replies is recognised like plain-text quoting.
"""

from __future__ import annotations

import html
import re
from html.parser import HTMLParser

_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt",
        "fieldset", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header",
        "hr", "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "tfoot",
        "thead", "tr", "ul",
    }
)  # fmt: skip
_HIDDEN = frozenset({"head", "script", "style", "title", "template", "noscript"})
_CELLS = frozenset({"td", "th"})
_WHITESPACE = re.compile(r"[ \t\r\n\f\v]+")
_INVISIBLE = str.maketrans({"\xa0": " ", "\u200b": None, "\ufeff": None, "\xad": None})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[tuple[int, list[str]]] = [(0, [])]  # (quote depth, text pieces)
        self.hidden = 0
        self.depth = 0
        self.pre = 0

    def _has_text(self) -> bool:
        return any(piece.strip() for piece in self.lines[-1][1])

    def _new_line(self, *, force: bool = False) -> None:
        if force or self._has_text():
            self.lines.append((self.depth, []))
        elif not self.lines[-1][1]:
            self.lines[-1] = (self.depth, [])  # an empty line takes the current depth

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        elif tag == "br":
            self._new_line(force=True)
        elif tag in _BLOCKS:
            if tag == "blockquote":
                self.depth += 1
            elif tag == "pre":
                self.pre += 1
            self._new_line()
        elif tag in _CELLS and self._has_text():
            self.lines[-1][1].append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":  # <br/> is one break, not a start and an end tag
            self._new_line(force=True)
        elif tag in _BLOCKS:
            self._new_line()

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag in _BLOCKS:
            self._new_line()
            if tag == "blockquote" and self.depth:
                self.depth -= 1
                self.lines[-1] = (self.depth, self.lines[-1][1])
            elif tag == "pre" and self.pre:
                self.pre -= 1

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if self.pre:
            first, *rest = data.split("\n")
            self.lines[-1][1].append(first)
            for line in rest:
                self.lines.append((self.depth, [line]))
            return
        self.lines[-1][1].append(_WHITESPACE.sub(" ", data))

    def text(self) -> str:
        rendered = []
        for depth, pieces in self.lines:
            line = " ".join("".join(pieces).translate(_INVISIBLE).split())
            rendered.append(("> " * depth + line).rstrip())
        return re.sub(r"\n{3,}", "\n\n", "\n".join(rendered)).strip("\n")


def html_to_text(markup: str) -> str:
    parser = _TextExtractor()
    try:
        parser.feed(markup)
        parser.close()
    except Exception:  # html.parser is lenient, but not on every byte sequence ever mailed
        return html.unescape(_WHITESPACE.sub(" ", re.sub(r"<[^>]*>", " ", markup))).strip()
    return parser.text()
