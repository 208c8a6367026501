"""Reading a covenant file: TOML in, a validated :class:`Covenant` or a :class:`CovenantError` out.

Every failure — unreadable file, TOML syntax, a wrong value, a broken cross-reference — becomes a
``CovenantError`` whose problems name the key path (``professionals[4].team``) and the item it lies
in, and say in Dutch what is expected, so an operator can fix the file without reading code.

One pass reports everything: when values are wrong, the cross-reference checks still run over the
values that are valid (:mod:`core.covenant.references`). ``serve`` (through ``core.config``) and
``verwijsindex covenant check`` both load a file here, so both refuse it with the same problems.
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

from core.covenant.problems import CovenantError, CovenantProblem
from core.covenant.references import Part, located, reference_problems
from core.covenant.schema import Covenant, model_for_section

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
            [CovenantProblem("", f"het convenantbestand is niet te lezen: {reason}")],
            source=str(path),
        ) from exc
    except UnicodeDecodeError as exc:
        raise CovenantError(
            [CovenantProblem("", f"het bestand is geen UTF-8 (TOML vereist UTF-8): {exc.reason}")],
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
        errors = exc.errors(include_url=False)
        file = Part.of_data(Covenant, data, (tuple(error["loc"]) for error in errors))
        problems = located([*_problems(errors), *reference_problems(file)], file)
        raise CovenantError(problems, source=source) from exc
    except CovenantError as exc:  # every value valid, a reference broken
        raise exc.with_source(source) from exc


def _syntax_problem(exc: tomllib.TOMLDecodeError) -> CovenantProblem:
    message = str(exc)
    position = _TOML_POSITION.search(message)
    if position:
        reason = message[: position.start()]
        return CovenantProblem(
            "",
            f"ongeldige TOML: {reason}",
            line=int(position.group(1)),
            column=int(position.group(2)),
        )
    return CovenantProblem(
        "", f"ongeldige TOML: {_TOML_END.sub('', message)} (aan het eind van het bestand)"
    )


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


# Pydantic's error types, in Dutch; a range's bound comes from the error's context.
_DATE = "moet een datum zijn (zoals 2026-12-24, zonder aanhalingstekens)"
_TYPE_MESSAGES = {
    "int_type": "moet een geheel getal zijn",
    "bool_type": "moet true of false zijn",
    "string_type": "moet een tekst zijn",
    "float_type": "moet een getal zijn",
    "greater_than_equal": "moet minstens {ge} zijn",
    "less_than_equal": "mag hoogstens {le} zijn",
    "greater_than": "moet groter zijn dan {gt}",
    "less_than": "moet kleiner zijn dan {lt}",
    "too_short": "moet minstens {min_length} element(en) hebben",
    "literal_error": "moet een van deze zijn: {expected}",
}


def _message(error: ErrorDetails, loc: tuple[int | str, ...]) -> str:
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "missing":
        return "verplichte sleutel ontbreekt"
    if kind == "extra_forbidden":
        return _unknown_key(loc)
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    if kind == "model_type":
        return f"verwacht een tabel, gevonden: {_describe(value)}"
    if kind in {"tuple_type", "list_type"}:
        return f"verwacht een array, gevonden: {_describe(value)}"
    if kind == "too_short" and isinstance(value, list | tuple) and not value:
        return "mag niet leeg zijn"
    template = _DATE if kind.startswith("date_") else _TYPE_MESSAGES.get(kind)
    # pydantic lists the choices of a Literal as "'a', 'b' or 'c'"
    bounds = {key: str(bound).replace("' or '", "' of '") for key, bound in ctx.items()}
    try:
        text = template.format_map(bounds) if template else ""
    except KeyError:  # a pydantic version whose context names the bound otherwise
        text = ""
    if not text:
        text = f"ongeldige waarde ({error['msg']})"
    return f"{text}, gevonden: {_describe(value)}"


def _unknown_key(loc: tuple[int | str, ...]) -> str:
    key = str(loc[-1])
    section = tuple(str(part) for part in loc[:-1] if not isinstance(part, int))
    model = model_for_section(section)
    if model is None:
        return f"onbekende sleutel '{key}'"
    allowed = list(model.model_fields)
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f"bedoelt u '{close[0]}'? " if close else ""
    return f"onbekende sleutel '{key}' ({hint}toegestaan hier: {', '.join(allowed)})"


_TOML_TYPES: dict[type, str] = {
    bool: "boolean",
    int: "geheel getal",
    float: "kommagetal",
    str: "tekst",
    list: "array",
    dict: "tabel",
    datetime: "datum-tijd",
    date: "datum",
    time: "tijd",
}


def _describe(value: Any) -> str:
    kind = _TOML_TYPES.get(type(value), type(value).__name__)
    if isinstance(value, dict | list):
        return f"een {kind}"
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return f"{shown} ({kind})"
