"""Text from bytes whose charset is missing, wrong or not a charset at all.

What real mail does: UTF-8 without a declaration, Windows-1252 declared as ISO-8859-1 (Outlook,
older client systems), UTF-8 declared as ISO-8859-1, charsets Python does not know
(``x-unknown``) or knows as something else (``rot13``, ``base64`` are codecs, not charsets).
The rules here follow browsers (WHATWG Encoding: the labels ``iso-8859-1`` and ``us-ascii``
mean windows-1252) plus one repair browsers do not make: bytes that are valid multi-byte UTF-8
are read as UTF-8 whatever a Western single-byte label says — real Dutch Windows-1252 text
essentially never forms such sequences. Nothing here raises.

CSV attachments are not decoded here: every registration CSV, by mail or ``verwijsindex
import``, is decoded by one function of the core (:func:`core.bulk_import.open_csv_text`).
"""

from __future__ import annotations

import codecs
import re


# windows-1252 as browsers decode it: 0x80–0x9F are Windows' quotes, dashes and euro sign; the
# five bytes Windows leaves undefined (0x81, 0x8D, 0x8F, 0x90, 0x9D) stay C1 controls, so decoding
# never fails (Python's strict cp1252 codec refuses them).
def _windows_1252_c1() -> dict[int, str]:
    table = {}
    for byte in range(0x80, 0xA0):
        try:
            table[byte] = bytes([byte]).decode("cp1252")
        except UnicodeDecodeError:
            continue
    return table


_C1_AS_WINDOWS_1252 = _windows_1252_c1()

# Labels that mean windows-1252 (WHATWG), by Python's canonical codec name.
_WINDOWS_1252_LABELS = frozenset({"ascii", "iso8859-1", "latin-1", "cp1252"})
_UTF8_MULTIBYTE = re.compile(
    rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)
_CHECK_CHUNK = 1 << 16


def decode_windows_1252(data: bytes) -> str:
    return data.decode("latin-1").translate(_C1_AS_WINDOWS_1252)


def c1_as_windows_1252(text: str) -> str:
    """Text decoded as ISO-8859-1 by someone else (the email package, for an encoded-word) as
    browsers would have decoded it: C1 controls U+0080–U+009F as Windows' characters."""
    return text.translate(_C1_AS_WINDOWS_1252)


def is_utf8(data: bytes) -> bool:
    """Valid UTF-8, checked chunk by chunk so a large attachment is never copied as a whole."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(data)
    try:
        for start in range(0, len(view), _CHECK_CHUNK):
            decoder.decode(view[start : start + _CHECK_CHUNK])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def _codec_name(declared: str | None) -> str | None:
    """Python's name for a declared charset, or None when it is unknown or not a text codec."""
    label = (declared or "").strip().strip("\"'").lower()
    if not label or len(label) > 40:
        return None
    try:
        info = codecs.lookup(label)
    except (LookupError, ValueError):
        return None
    # 'rot13', 'base64', 'zlib' ... are codecs but not charsets: bytes.decode refuses them.
    if not getattr(info, "_is_text_encoding", True):
        return None
    return info.name


def _undeclared(data: bytes) -> str:
    if data.isascii():
        return data.decode("ascii")
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", "replace")
    if is_utf8(data):
        return data.decode("utf-8")
    if _UTF8_MULTIBYTE.search(data):  # UTF-8 with a broken byte somewhere: keep the rest right
        return data.decode("utf-8", "replace")
    return decode_windows_1252(data)


def decode_text(data: bytes, declared: str | None) -> tuple[str, str | None]:
    """``data`` as text, and a note for the defects list when the declaration was not used
    (None when it was)."""
    name = _codec_name(declared)
    if name is None:
        note = f"unknown charset {declared!r}; guessed from the bytes" if declared else None
        return _undeclared(data), note
    if data.isascii() and name in _WINDOWS_1252_LABELS | {"utf-8"}:
        return data.decode("ascii"), None
    if name in _WINDOWS_1252_LABELS:
        if _UTF8_MULTIBYTE.search(data) and is_utf8(data):
            return data.decode("utf-8"), f"charset {declared!r} declared, but the text is UTF-8"
        return decode_windows_1252(data), None
    if name == "utf-8":
        try:
            return data.decode("utf-8"), None
        except UnicodeDecodeError:
            return _undeclared(data), "charset 'utf-8' declared, but the text is not valid UTF-8"
    try:
        return data.decode(name), None
    except Exception:  # UnicodeError, or a codec that misbehaves on odd input
        return _undeclared(data), f"text is not valid {declared!r}; guessed from the bytes"
