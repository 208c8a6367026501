"""The layout's rules, checked on the source (STYLE: dependencies point inward; every rule has one
home): ``core/`` imports no transport, and the transports (``bot/``, ``mail_gateway/``) run no
query of their own on a domain table — they ask a core read function, so who may see or do what
is decided in one place.

The gateway's own tables (the stored inbound mail, the IMAP cursor) and the outbox queue it
counts for flow control are not domain tables; everything else in ``core.models`` is.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TRANSPORTS = ("bot", "mail_gateway")
TRANSPORT_MODULES = ("bot", "mail_gateway", "slack_bolt", "slack_sdk", "aiosmtpd", "imapclient")
DOMAIN_TABLES = frozenset(
    {
        "Absence",
        "AuditEvent",
        "AuditHead",
        "Coordination",
        "Installation",
        "Institution",
        "Match",
        "MatchMember",
        "Municipality",
        "Professional",
        "Registration",
        "ReplyToken",
        "Signal",
        "Team",
        "TransferRequest",
        "Youth",
        "YouthParent",
    }
)
QUERY_BUILDERS = frozenset({"select", "select_from", "join", "outerjoin"})


def transport_imports(source: str) -> list[str]:
    """The transport modules a core module imports (anywhere in it, also inside functions)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found += [n for n in names if n.split(".")[0] in TRANSPORT_MODULES]
    return found


def _called_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def domain_queries(source: str) -> list[tuple[int, str]]:
    """(line, table) for each query builder (``select(...)``, ``.join(...)``, ...) that names a
    domain table."""
    found: set[tuple[int, str]] = set()
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and _called_name(node) in QUERY_BUILDERS):
            continue
        for argument in node.args:
            for inner in ast.walk(argument):
                if isinstance(inner, ast.Name) and inner.id in DOMAIN_TABLES:
                    found.add((node.lineno, inner.id))
    return sorted(found)


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", _modules("core"), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_imports_no_transport(path: Path) -> None:
    assert transport_imports(path.read_text()) == []


@pytest.mark.parametrize(
    "path",
    [p for package in TRANSPORTS for p in _modules(package)],
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_transports_ask_the_core_instead_of_querying_domain_tables(path: Path) -> None:
    assert domain_queries(path.read_text()) == []


def test_the_checks_catch_a_deliberate_violation() -> None:
    """Planted violations, so that the two checks above cannot pass by looking at nothing."""
    assert transport_imports("def f():\n    from bot.reply import ReplyTo\n") == ["bot.reply"]
    assert transport_imports("import aiosmtpd.smtp\nfrom core import audit\n") == ["aiosmtpd.smtp"]
    query = (
        "rows = session.exec(select(Professional).where(Professional.email == a)).all()\n"
        "n = select(func.count()).select_from(Youth)\n"
        "m = select(Signal.id).join(Match, col(Match.id) == 1)\n"
        "ok = select(InboundMessage.id).where(InboundMessage.id == 1)\n"
    )
    assert domain_queries(query) == [(1, "Professional"), (2, "Youth"), (3, "Match"), (3, "Signal")]


def outbox_writes(source: str) -> list[int]:
    """Lines that add outbox rows other than through ``core.outbox.enqueue_many``: an INSERT
    into the outbox table, or an ``OutboxMessage(...)`` made to be added."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = _called_name(node)
        if name == "OutboxMessage":
            found.add(node.lineno)
        if name == "insert":
            for argument in node.args:
                for inner in ast.walk(argument):
                    if isinstance(inner, ast.Name) and inner.id in ("_outbox", "OutboxMessage"):
                        found.add(node.lineno)
    return sorted(found)


def _core_and_transports(*, but: Path) -> list[Path]:
    """Every module of ``core/`` and the transports, except the one a rule is about."""
    return [p for package in ("core", *TRANSPORTS) for p in _modules(package) if p != but]


@pytest.mark.parametrize(
    "path",
    _core_and_transports(but=ROOT / "core" / "outbox.py"),  # enqueue_many itself
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_one_way_into_the_outbox(path: Path) -> None:
    assert outbox_writes(path.read_text()) == []


def test_the_outbox_check_catches_a_deliberate_violation() -> None:
    source = (
        "connection.execute(sqlite.insert(_outbox).on_conflict_do_nothing(), rows)\n"
        "session.add(OutboxMessage(kind='match'))\n"
        "connection.execute(insert(_youth), rows)\n"
    )
    assert outbox_writes(source) == [1, 2]


def import_graph(sources: dict[str, str]) -> dict[str, set[str]]:
    """Module → the modules of ``sources`` it imports (anywhere in it, also inside functions;
    a package's ``__init__`` importing its own submodules is no dependency back)."""
    graph: dict[str, set[str]] = {name: set() for name in sources}
    for name, source in sources.items():
        for node in ast.walk(ast.parse(source)):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
            for target in targets:
                if target in sources and target != name and not name.startswith(target + "."):
                    graph[name].add(target)
    return graph


def import_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of the graph (its modules in order), or [] when there is none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str]:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (found := visit(target)):
                return found
        state[module] = 2
        path.pop()
        return []

    for module in sorted(graph):
        if module not in state and (found := visit(module)):
            return found
    return []


def _core_sources() -> dict[str, str]:
    sources = {}
    for path in _modules("core"):
        if "migrations" in path.parts:
            continue
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        sources[name] = path.read_text()
    return sources


def test_core_has_no_import_cycle() -> None:
    """Rules are layered (read modules below the commands, subscribers below neither), so no
    import has to hide inside a function to break a cycle."""
    assert import_cycle(import_graph(_core_sources())) == []


def test_the_cycle_check_catches_a_deliberate_cycle() -> None:
    sources = {
        "core.a": "from core.b import f\n",
        "core.b": "def f():\n    from core.c import g\n",
        "core.c": "import core.a\n",
        "core.pkg": "from core.pkg.sub import x\n",
        "core.pkg.sub": "from core.a import y\n",
    }
    assert import_cycle(import_graph(sources)) == ["core.a", "core.b", "core.c", "core.a"]
    del sources["core.c"]
    assert import_cycle(import_graph(sources)) == []


SUBSCRIBERS_MODULE = "core.notifications.subscribers"


def subscriber_imports(source: str) -> list[str]:
    """What a module imports of the subscribers themselves (an ``on_*`` function, their list, or
    the module whole): calling one runs it at once, in the middle of a command, instead of at the
    commit through ``publish`` (core.unit_of_work). Their shared helpers are fine."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names if a.name == SUBSCRIBERS_MODULE]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            if node.module == SUBSCRIBERS_MODULE:
                found += [
                    a.name
                    for a in node.names
                    if a.name.startswith("on_") or a.name == "SUBSCRIBERS"
                ]
            elif node.module == "core.notifications":
                found += [f"{node.module}.{a.name}" for a in node.names if a.name == "subscribers"]
    return found


@pytest.mark.parametrize(
    "path",
    _core_and_transports(but=ROOT / "core" / "notifications" / "__init__.py"),  # the dispatcher
    ids=lambda p: str(p.relative_to(ROOT)),
)
def test_subscribers_run_only_at_the_commit(path: Path) -> None:
    assert subscriber_imports(path.read_text()) == []


def test_the_subscriber_check_catches_a_deliberate_violation() -> None:
    source = (
        "from core.notifications.subscribers import involvement_occasion, on_signal_placed\n"
        "from core.notifications.subscribers import SUBSCRIBERS\n"
        "import core.notifications.subscribers as subscribers\n"
        "from core.notifications import publish, subscribers\n"
    )
    assert subscriber_imports(source) == [
        "on_signal_placed",
        "SUBSCRIBERS",
        SUBSCRIBERS_MODULE,
        "core.notifications.subscribers",
    ]
