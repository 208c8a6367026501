"""``text/plain; format=flowed`` (RFC 3676) turned back into the lines the writer typed.

Thunderbird, Apple Mail and some webmail send flowed text: a long line is cut into lines of at
most 78 characters, each but the last ending in a space (a *soft* break). Read as it arrives, a
two-line ``WEIGER`` reason or a long ``Kenmerk`` would be broken up at arbitrary words; the
reply reader and the field reader want the paragraphs back.

The rules (RFC 3676 §4): a line ending in a space is flowed and joins the next line of the
same quote depth (§4.5: never across a change of depth); a line of only ``-- `` is the signature
separator, never flowed (§4.3); one leading space is stuffing and removed (§4.4); with
``DelSp=yes`` the trailing space of a flowed line was added by the sender and goes (§4.2).
"""

from __future__ import annotations

import re

MAX_PARAGRAPH = 100_000  # a paragraph longer than this is no one's writing: it is ended there

_QUOTES = re.compile(r"^>+")
_SIGNATURE = "-- "


def _depth_and_text(line: str) -> tuple[int, str]:
    quotes = _QUOTES.match(line)
    depth = len(quotes.group(0)) if quotes else 0
    text = line[depth:]
    if text.startswith(" "):  # §4.4 space-stuffing (and the space after '>' quoting)
        text = text[1:]
    return depth, text


def unflow(text: str, *, delsp: bool = False) -> str:
    """The text with its soft line breaks removed; quoting is written back as ``> `` per
    level, so the quote readers recognise it as before."""
    out: list[str] = []
    paragraph: list[str] = []
    depth_of_paragraph = length = 0

    def flush() -> None:
        nonlocal length
        joined = "".join(paragraph)
        quoted = ">" * depth_of_paragraph
        out.append(f"{quoted} {joined}" if quoted and joined else quoted + joined)
        paragraph.clear()
        length = 0

    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        depth, line = _depth_and_text(raw)
        if paragraph and depth != depth_of_paragraph:
            flush()  # §4.5: a flowed line followed by one of another depth ends its paragraph
        if not paragraph:
            depth_of_paragraph = depth
        flowed = line.endswith(" ") and line != _SIGNATURE
        if flowed and delsp:
            line = line[:-1]
        paragraph.append(line)
        length += len(line)
        if not flowed or length >= MAX_PARAGRAPH:
            flush()
    if paragraph:
        flush()
    return "\n".join(out)
