"""The console entry point: the core's commands plus ``serve`` and ``demo``, which wire
the core, the mail gateway and the Slack bot together. Only this module imports all three
(ARCHITECTURE, layout)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from core.cli import app
from core.cli.runtime import configure_logging, open_core, say
from core.settings import Settings

log = logging.getLogger("verwijsindex.serve")

SWEEP_INTERVAL_SECONDS = 60.0
ROLE_NAMES = ("smtp", "imap", "processing", "delivery", "scheduler", "slack")
NOT_GATEWAY_ROLES = ("scheduler", "slack")


async def run_scheduler(engine: object, config: object, stop: asyncio.Event) -> None:
    """The core's time-driven jobs every minute; each job is idempotent and safe with several
    instances (ARCHITECTURE, step 5)."""
    from core.scheduler import sweep

    while not stop.is_set():
        try:
            counts = await asyncio.to_thread(sweep, engine, config)  # type: ignore[arg-type]
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


async def serve_async(roles: list[str]) -> None:
    from bot.service import SlackMode, run_slack, slack_mode
    from mail_gateway.context import build_gateway
    from mail_gateway.service import run_roles

    with open_core() as core:
        warn_about_exposed_files(core.settings)
        gateway = build_gateway(core.settings, core.engine, core.config)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        gateway_roles = [r for r in roles if r not in NOT_GATEWAY_ROLES]
        tasks = []
        if gateway_roles:  # asyncio.wait refuses an empty set (serve --only slack)
            tasks.append(asyncio.create_task(run_roles(gateway, gateway_roles, stop)))
        if "scheduler" in roles:
            tasks.append(asyncio.create_task(run_scheduler(core.engine, core.config, stop)))
        settings = core.settings
        if "slack" in roles:
            tasks.append(asyncio.create_task(run_slack(settings, core.engine, core.config, stop)))
            mode = slack_mode(settings)
            if mode == SlackMode.HTTP:
                say(f"Slack op http://{settings.slack_host}:{settings.slack_port}/slack/events")
            elif mode == SlackMode.SOCKET:
                say("Slack via Socket Mode")
            else:
                say("Slack staat uit: SLACK_BOT_TOKEN en SLACK_SIGNING_SECRET zijn niet gezet.")
        if "smtp" in roles:
            say(
                f"SMTP op {settings.smtp_host}:{settings.smtp_port}, "
                f"postvakken @{settings.mail_domain}"
            )
        say(f"Uitgaande post: {settings.relay_url}; rollen: {', '.join(roles)}. Stoppen: Ctrl-C.")
        await asyncio.gather(*tasks)
        say("Gestopt; niets is verloren gegaan.")


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
) -> None:
    """Run the service: SMTP intake, IMAP polling (when configured), processing, delivery, the
    scheduler and Slack (when its secrets are set), in one process. SIGTERM finishes work in
    progress and loses nothing."""
    roles = list(only) if only else list(ROLE_NAMES)
    unknown = [r for r in roles if r not in ROLE_NAMES]
    if unknown:
        raise typer.BadParameter(
            f"onbekende rol {', '.join(unknown)}; kies uit {', '.join(ROLE_NAMES)}",
            param_hint="--only",
        )
    asyncio.run(serve_async(roles))


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
