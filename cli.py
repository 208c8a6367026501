"""The console entry point: the core's commands plus ``serve`` and ``demo``, which wire
the core, the mail gateway and the Slack bot together. Only this module imports all three
(ARCHITECTURE, layout)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from core import health, metrics
from core.cli import app
from core.cli.runtime import (
    EXIT_SERVICE_FAILED,
    Core,
    cli_options,
    load_cli_settings,
    open_core,
    say,
    stderr,
)
from core.config import build_config
from core.db import service_engine
from core.logging_setup import configure_logging, set_verbosity
from core.roles import OpenListener, RoleFailed, open_listeners, run_together
from core.settings import Settings
from core.wake import Wake, listen
from core.worker_processes import WorkerProcesses, stop_when_parent_exits

log = logging.getLogger("verwijsindex.serve")

SWEEP_INTERVAL_SECONDS = 60.0
ROLE_NAMES = ("smtp", "imap", "processing", "delivery", "scheduler", "slack")
NOT_GATEWAY_ROLES = ("scheduler", "slack")


async def run_scheduler(engine: object, config: object, stop: asyncio.Event) -> None:
    """The core's time-driven jobs every minute; each job is idempotent and safe with several
    instances (ARCHITECTURE, step 5)."""
    from core.scheduler import sweep

    health.roles.scheduler_runs(SWEEP_INTERVAL_SECONDS)
    while not stop.is_set():
        try:
            counts = await asyncio.to_thread(sweep, engine, config)  # type: ignore[arg-type]
            health.roles.swept()
            if any(counts.values()):
                log.info("sweep: %s", counts)
        except Exception:
            log.exception("sweep failed; trying again next round")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), SWEEP_INTERVAL_SECONDS)


def warn_about_exposed_files(settings: Settings) -> None:
    """Issue 9: name every private file (database, secret, maildir, ...) that others can read;
    the files ``serve`` creates itself are private already (core.file_privacy)."""
    from core.file_privacy import private_paths, warn_if_readable_by_others
    from mail_gateway.delivery.relay import maildir_path

    maildir = maildir_path(settings.relay_url)
    warn_if_readable_by_others(private_paths(settings, extra=[maildir] if maildir else []))


def warn_about_the_example_covenant(settings: Settings) -> None:
    """A region's service (a mail domain of its own) on the bundled example covenant: its
    institutions and addresses are fictional (``.example``, RFC 2606), so nobody real would get
    a notification. Almost always ``VERWIJSINDEX_COVENANT`` was forgotten; trying the service
    out on the default mail domain is what the example is for."""
    from core.covenant import bundled_covenant_path

    if settings.mail_domain == Settings.model_fields["mail_domain"].default:
        return
    if settings.covenant_path.resolve() != bundled_covenant_path().resolve():
        return
    log.warning(
        "the mail domain %s runs on the bundled EXAMPLE covenant (%s): its institutions and "
        "addresses are fictional. Set VERWIJSINDEX_COVENANT to the region's covenant "
        "(README, 'Deploying for a region').",
        settings.mail_domain,
        settings.covenant_path,
    )


# What ``serve --workers N`` runs in each child; the parent keeps the listeners (SMTP, IMAP,
# the Slack endpoint) and the scheduler. "slack" in a child is Slack delivery only.
WORKER_ROLES = ("processing", "delivery", "slack")


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT: every role then finishes what it is doing."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    return stop


async def start_roles(
    core: Core,
    roles: list[str],
    stop: asyncio.Event,
    *,
    slack_endpoint: bool = True,
    slack_delivery: bool = True,
) -> list[asyncio.Task[None]]:
    """The tasks of ``roles`` in this process, and the wake listener for its workers, each
    named by its role. The listeners (SMTP, the Slack endpoint, health and metrics) bind their
    ports first: a taken one raises :class:`RoleFailed` before the scheduler or a worker has
    done anything (core.roles.open_listeners)."""
    from bot.context import build_bot
    from bot.service import SlackMode, open_endpoint, run_slack, slack_mode
    from core.ops_http import open_ops_http, shares_the_slack_endpoint
    from mail_gateway.context import build_gateway
    from mail_gateway.service import open_smtp, run_roles

    settings = core.settings
    gateway = build_gateway(settings, core.engine, core.config)
    slack = slack_mode(settings) if "slack" in roles else SlackMode.OFF
    bot = build_bot(settings, core.engine, core.config) if slack != SlackMode.OFF else None
    openers: dict[str, OpenListener] = {}
    if "smtp" in roles:
        openers["smtp"] = functools.partial(open_smtp, gateway)
    if bot is not None and slack_endpoint:
        openers["slack"] = functools.partial(open_endpoint, bot)
    on_slacks_server = slack == SlackMode.HTTP and shares_the_slack_endpoint(settings)
    if slack_endpoint and settings.http_port and not on_slacks_server:  # a worker: no port
        openers["http"] = functools.partial(
            open_ops_http, core.engine, settings.http_host, settings.http_port
        )
    bound = await open_listeners(openers, stop)
    tasks = [
        asyncio.create_task(bound[name](stop), name=name)
        for name in ("smtp", "http")
        if name in bound
    ]
    gateway_roles = [r for r in roles if r not in (*NOT_GATEWAY_ROLES, "smtp")]
    if gateway_roles:  # asyncio.wait refuses an empty set (serve --only slack)
        tasks.append(asyncio.create_task(run_roles(gateway, gateway_roles, stop), name="gateway"))
    if "scheduler" in roles:
        scheduler = run_scheduler(core.engine, core.config, stop)
        tasks.append(asyncio.create_task(scheduler, name="scheduler"))
    if "slack" in roles:
        endpoint = bound.get("slack")
        slack_roles = run_slack(
            settings,
            core.engine,
            core.config,
            stop,
            bot=bot,
            endpoint=endpoint is not None,
            delivery=slack_delivery,
            opened_endpoint=endpoint,
        )
        tasks.append(asyncio.create_task(slack_roles, name="slack"))
    listeners: dict[Wake, list[asyncio.Event]] = {}
    if "processing" in roles:
        listeners[Wake.INBOUND] = [gateway.inbound_waiting]
    if "delivery" in roles:
        listeners.setdefault(Wake.OUTBOX, []).append(gateway.outbox_waiting)
    if bot is not None and slack_delivery:
        listeners.setdefault(Wake.OUTBOX, []).append(bot.outbox_waiting)
    if listeners:  # workers here: wake them when another process stores their work
        tasks.append(asyncio.create_task(listen(core.engine, listeners, stop), name="wake"))
    return tasks


def worker_processes(settings: Settings, roles: list[str], count: int) -> WorkerProcesses:
    """``count`` children of this program in worker mode, running ``roles``. The database and
    covenant go in the environment (a URL on the command line would show its password in
    ``ps``); the rest of the settings the children read as this process did."""
    command = [sys.executable, str(Path(__file__).resolve())]
    if cli_options().verbose:
        command.append("-" + "v" * cli_options().verbose)
    command += ["serve", "--worker-process", *[a for role in roles for a in ("--only", role)]]
    env = {
        **os.environ,
        "VERWIJSINDEX_DATABASE_URL": settings.database_url,
        "VERWIJSINDEX_COVENANT": str(settings.covenant_path.resolve()),
    }
    return WorkerProcesses(command, count, env=env)


async def serve_async(roles: list[str], workers: int = 0) -> None:
    from bot.service import SlackMode, slack_mode

    with open_core() as core, contextlib.ExitStack() as stack:  # migrations, covenant: first
        settings = core.settings
        warn_about_exposed_files(settings)
        warn_about_the_example_covenant(settings)
        stop = stop_on_signals()
        in_children = [r for r in roles if r in WORKER_ROLES] if workers else []
        if "slack" in in_children and slack_mode(settings) == SlackMode.OFF:
            in_children.remove("slack")  # nothing to deliver to
        if in_children:  # the children's counts reach this process's /metrics
            counts_folder = metrics.share_with_child_processes()
            stack.callback(metrics.stop_sharing, counts_folder)
        tasks = await start_roles(
            core,
            [r for r in roles if r not in in_children or r == "slack"],
            stop,
            slack_delivery="slack" not in in_children,
        )
        if in_children:
            pool = worker_processes(settings, in_children, workers)
            tasks.append(asyncio.create_task(pool.run(stop), name="workers"))
        _say_what_runs(settings, roles, in_children, workers)
        await run_together(tasks, stop)  # a failed role: RoleFailed, see serve()
        say("Gestopt; niets is verloren gegaan.")


async def serve_worker_async(roles: list[str]) -> None:
    """A child of ``serve --workers N``: ``roles`` until SIGTERM or until the parent is gone.
    The parent upgraded the schema and synced the covenant already; a child does neither, so a
    restarted child never runs a migration beside live workers."""
    settings = load_cli_settings()
    config = build_config(settings)
    engine = service_engine(settings)
    try:
        core = Core(settings=settings, engine=engine, config=config)
        stop = stop_on_signals()
        tasks = await start_roles(core, roles, stop, slack_endpoint=False)
        tasks.append(asyncio.create_task(stop_when_parent_exits(stop), name="parent"))
        await run_together(tasks, stop)
    finally:
        engine.dispose()


def _say_what_runs(
    settings: Settings, roles: list[str], in_children: list[str], workers: int
) -> None:
    from bot.service import SlackMode, slack_mode

    if "slack" in roles:
        mode = slack_mode(settings)
        if mode == SlackMode.HTTP:
            say(f"Slack op http://{settings.slack_host}:{settings.slack_port}/slack/events")
        elif mode == SlackMode.SOCKET:
            say("Slack via Socket Mode")
        else:
            say(f"Slack staat uit: zet {_slack_missing_nl(settings)}.")
    if "smtp" in roles:
        say(
            f"SMTP op {settings.smtp_host}:{settings.smtp_port}, postvakken @{settings.mail_domain}"
        )
    if in_children:
        say(f"Werkprocessen: {workers} voor {', '.join(in_children)}.")
    elif any(r in WORKER_ROLES for r in roles):
        say("Werkprocessen: geen; verwerking en bezorging in dit proces (--workers 0).")
    say(f"Uitgaande post: {settings.relay_url}; rollen: {', '.join(roles)}. Stoppen: Ctrl-C.")


@app.command()
def serve(
    only: Annotated[
        list[str] | None,
        typer.Option(
            "--only",
            help=f"Run only this role (repeatable): {', '.join(ROLE_NAMES)}.",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=0,
            help="Child processes for processing and delivery (the listeners and the "
            "scheduler stay in this one); 0 runs everything in this process. Default: the "
            "number of cores.",
            show_default=False,
        ),
    ] = None,
    worker_process: Annotated[
        bool, typer.Option("--worker-process", hidden=True, help="A child of --workers.")
    ] = False,
) -> None:
    """Run the service: SMTP intake, IMAP polling (when configured), processing, delivery, the
    scheduler and Slack (when its secrets are set). Processing and delivery run in
    ``--workers`` child processes; a child that dies is restarted. SIGTERM finishes work in
    progress and loses nothing."""
    set_verbosity(cli_options().verbose, service=True)
    roles = list(only) if only else list(ROLE_NAMES)
    unknown = [r for r in roles if r not in ROLE_NAMES]
    if unknown:
        raise typer.BadParameter(
            f"onbekende rol {', '.join(unknown)}; kies uit {', '.join(ROLE_NAMES)}",
            param_hint="--only",
        )
    if only:
        refuse_unconfigured_roles(load_cli_settings(), roles)
    try:
        if worker_process:
            asyncio.run(serve_worker_async(roles))
        else:
            asyncio.run(serve_async(roles, (os.cpu_count() or 1) if workers is None else workers))
    except RoleFailed as failure:
        stderr().print(
            Text(
                f"Gestopt: de rol {failure.role} faalde ({failure.cause}). Wat al was "
                f"aangenomen, gaat niet verloren. / Stopped: role {failure.role} failed.",
                style="bold red",
            ),
            soft_wrap=True,
        )
        raise typer.Exit(EXIT_SERVICE_FAILED) from None


def refuse_unconfigured_roles(settings: Settings, roles: list[str]) -> None:
    """A role asked for by name (``--only``) that has nothing to run is a mistake, not a
    silent no-op: refuse it before anything starts."""
    from bot.service import SlackMode, slack_mode

    missing = []
    if "imap" in roles and not settings.imap_url:
        missing.append("imap: VERWIJSINDEX_IMAP_URL is niet gezet")
    if "slack" in roles and slack_mode(settings) == SlackMode.OFF:
        missing.append(f"slack: zet {_slack_missing_nl(settings)}")
    if missing:
        raise typer.BadParameter("; ".join(missing), param_hint="--only")


def _slack_missing_nl(settings: Settings) -> str:
    """What Slack still needs (bot.service.slack_missing), in Dutch."""
    from bot.service import describe_missing, slack_missing

    return describe_missing(slack_missing(settings), either="of", both="en")


@app.command()
def demo(
    keep: Annotated[
        Path | None,
        typer.Option(
            "--keep",
            help="Keep the demo's database and sent mail in this directory (default: a "
            "temporary one, removed afterwards).",
        ),
    ] = None,
) -> None:
    """Play the whole scenario through the real transports on a temporary database and free
    loopback ports: registrations by SMTP, signals through signed Slack requests, a match, an
    e-mail reply AKKOORD, an absence with a stand-in; print every notification."""
    from demo.scenario import run_demo

    run_demo(workdir=keep)


def main() -> None:
    """Entry point of the console script (pyproject ``[project.scripts]``)."""
    configure_logging()
    app(prog_name="verwijsindex")


if __name__ == "__main__":
    main()
