"""The console command ``verwijsindex`` (CONTRACT §6), built with typer and rich.

Modules: ``app`` (root, global options), ``runtime`` (building the core, output, error → exit
code), and one module per command group: ``admin`` (db, covenant, sweep, outbox, audit),
``registrations`` (import), ``signals`` (signal), ``youths`` (youth show, access-report),
``handover`` (transfer, absence).
"""

from core.cli.app import app, main

__all__ = ["app", "main"]
