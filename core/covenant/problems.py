"""What can be wrong with a covenant file: one :class:`CovenantProblem` per mistake, all of them
together in one :class:`CovenantError`.

The messages are Dutch (an operator reads them); the paths are the file's own TOML keys.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class CovenantProblem:
    """One thing wrong with a covenant file: where (a key path, the item it lies in) and what."""

    path: str  # e.g. "institutions[2].teams[0].may_signal"; "" for the file as a whole
    message: str
    line: int | None = None  # only known for TOML syntax errors
    column: int | None = None
    # The item the path lies in, by its own id: "instelling 'ggd-groningen'" (when it has one).
    item: str | None = None

    def __str__(self) -> str:
        if self.line is not None:
            where = f"regel {self.line}" + (f", kolom {self.column}" if self.column else "")
        else:
            where = self.path or "(het hele bestand)"
            if self.item:
                where += f" ({self.item})"
        return f"{where}: {self.message}"


class CovenantError(Exception):
    """The covenant file is unusable; ``problems`` says everything that is wrong with it."""

    def __init__(self, problems: Iterable[CovenantProblem], source: str | None = None) -> None:
        self.problems: list[CovenantProblem] = list(problems)
        self.source = source
        super().__init__(str(self))

    def with_source(self, source: str) -> CovenantError:
        return CovenantError(self.problems, source=source)

    def __str__(self) -> str:
        prefix = f"{self.source}: " if self.source else ""
        return "\n".join(f"{prefix}{problem}" for problem in self.problems)
