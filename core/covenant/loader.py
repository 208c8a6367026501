"""Reading a covenant file: TOML in, a validated :class:`Covenant` or a :class:`CovenantError` out.

Every failure — unreadable file, TOML syntax, a wrong value, a broken cross-reference — becomes a
``CovenantError`` whose problems name the key path (``professionals[4].team``) and say what is
expected, so an operator can fix the file without reading code.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from core.covenant.schema import Covenant, CovenantError, CovenantProblem, model_for_section

BUNDLED_COVENANT = Path(__file__).resolve().parent.parent / "data" / "covenant.example.toml"

# tomllib (3.11) puts the position only in the message: "... (at line 3, column 7)".
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")
_TOML_END = re.compile(r"\s*\(at end of document\)\s*$")


def bundled_covenant_path() -> Path:
    """The example covenant shipped with the package (a Groningen-style region)."""
    return BUNDLED_COVENANT


def load_covenant(path: str | os.PathLike[str]) -> Covenant:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise CovenantError(
            [CovenantProblem("", f"cannot read the covenant file: {reason}")], source=str(path)
        ) from exc
    except UnicodeDecodeError as exc:
        raise CovenantError(
            [CovenantProblem("", f"the file is not UTF-8 (TOML requires UTF-8): {exc.reason}")],
            source=str(path),
        ) from exc
    return load_covenant_text(text, source=str(path))


def load_covenant_text(text: str, source: str = "<text>") -> Covenant:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CovenantError([_syntax_problem(exc)], source=source) from exc
    try:
        return Covenant.model_validate(data)
    except ValidationError as exc:
        problems = _problems(exc.errors(include_url=False))
        raise CovenantError(problems, source=source) from exc
    except CovenantError as exc:
        raise exc.with_source(source) from exc


def _syntax_problem(exc: tomllib.TOMLDecodeError) -> CovenantProblem:
    message = str(exc)
    position = _TOML_POSITION.search(message)
    if position:
        reason = message[: position.start()]
        return CovenantProblem(
            "",
            f"invalid TOML: {reason}",
            line=int(position.group(1)),
            column=int(position.group(2)),
        )
    return CovenantProblem("", f"invalid TOML: {_TOML_END.sub('', message)} (at end of file)")


def key_path(loc: tuple[int | str, ...]) -> str:
    """A pydantic ``loc`` as a key path.

    ``("institutions", 2, "teams", 0, "may_signal")`` → ``institutions[2].teams[0].may_signal``
    """
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


def _problems(errors: list[ErrorDetails]) -> list[CovenantProblem]:
    # When an item of an array fails, pydantic also reports the array as too short ("at least 1
    # item after validation"); that is noise next to the item's own error.
    failing = [tuple(error["loc"]) for error in errors]
    return [
        _problem(error)
        for error in errors
        if not (
            error["type"] == "too_short"
            and any(
                len(loc) > len(error["loc"]) and loc[: len(error["loc"])] == error["loc"]
                for loc in failing
            )
        )
    ]


def _problem(error: ErrorDetails) -> CovenantProblem:
    loc = tuple(error["loc"])
    return CovenantProblem(key_path(loc), _message(error, loc))


def _message(error: ErrorDetails, loc: tuple[int | str, ...]) -> str:
    kind = error["type"]
    value = error.get("input")
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return _unknown_key(loc)
    if kind == "value_error":
        ctx = error.get("ctx") or {}
        return str(ctx.get("error", error["msg"]))
    if kind == "model_type":
        return f"expected a table, got {_describe(value)}"
    if kind in {"tuple_type", "list_type"}:
        return f"expected an array, got {_describe(value)}"
    if kind == "too_short" and isinstance(value, list | tuple) and not value:
        return "must not be empty"
    text = error["msg"].replace("Input should be", "must be")
    return f"{text}, got {_describe(value)}"


def _unknown_key(loc: tuple[int | str, ...]) -> str:
    key = str(loc[-1])
    section = tuple(str(part) for part in loc[:-1] if not isinstance(part, int))
    model = model_for_section(section)
    if model is None:
        return f"unknown key '{key}'"
    allowed = list(model.model_fields)
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown key '{key}' ({hint}allowed here: {', '.join(allowed)})"


_TOML_TYPES: dict[type, str] = {
    bool: "boolean",
    int: "integer",
    float: "float",
    str: "string",
    list: "array",
    dict: "table",
    datetime: "date-time",
    date: "date",
    time: "time",
}


def _describe(value: Any) -> str:
    kind = _TOML_TYPES.get(type(value), type(value).__name__)
    if isinstance(value, dict | list):
        return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{shown} ({kind})"
