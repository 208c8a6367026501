"""Benchmark: the same SMTP load on one and on two ``serve`` processes sharing one PostgreSQL
database (issue 10: the service scales with processes, and so with machines).

    python tests/benchmarks/bench_scaling.py
        [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
        [--messages 2000] [--connections 4] [--workers 0]

The load, clients, relay sink and measurement are ``bench_smtp_ingest.py``'s (its run c.): the
rate counts a message once it was accepted, processed and its receipt written to the outbox.
With two processes the client connections are spread over both listeners. Each ``serve`` runs
with ``--workers 0`` by default (every role in the one process), so that "two processes" means
two and not six; pass ``--workers N`` to run each with N children instead.

The last line is one JSON object: both rates, ``scaling_ratio`` (two over one; the aim is 1.5
where the cores allow it), and the machine's core count and load average when the run began
(on a machine with two cores, shared with the database, the clients and the sinks, two
processes cannot double anything).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_smtp_ingest import (
    common_arguments,
    latency_line,
    measure_gateway,
    percentile,
    registrations,
    work_directory,
)

DEFAULT_DATABASE = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SCALING_AIM = 1.5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    common_arguments(parser)
    parser.add_argument("--workers", type=int, default=0, help="serve --workers, per process")
    parser.set_defaults(database_url=DEFAULT_DATABASE)
    args = parser.parse_args()
    if not args.database_url.startswith("postgresql"):
        raise SystemExit("several serve processes share a PostgreSQL database: --database-url")

    load = os.getloadavg()[0]
    burst = registrations(args.messages)
    print(
        f"{len(burst):,} registrations on {args.connections} connections, one and then two "
        f"serve --workers {args.workers} processes on one PostgreSQL database",
        flush=True,
    )
    rates = {}
    with work_directory(args.keep) as workdir:
        for serves in (1, 2):
            run = measure_gateway(
                workdir / f"{serves}-serve",
                args.database_url,
                burst,
                [],
                connections=args.connections,
                rate=0.0,
                timeout=args.timeout,
                workers=args.workers,
                serves=serves,
            )
            rates[serves] = len(burst) / run.processed_seconds
            print(
                f"{serves} serve process{'es' if serves > 1 else '':2}: "
                f"{rates[serves]:7.1f} msg/s processed"
            )
            print(latency_line("   latency to its receipt", run.latencies))
            p95 = percentile(run.latencies, 0.95)
    ratio = rates[2] / rates[1]
    print(
        f"scaling ratio {ratio:.2f} (aim >= {SCALING_AIM} where the cores allow it); "
        f"{os.cpu_count()} CPUs, load average {load:.1f} at the start"
    )
    figures = {
        "one_serve_msgs_per_s": round(rates[1], 1),
        "two_serves_msgs_per_s": round(rates[2], 1),
        "scaling_ratio": round(ratio, 3),
        "two_serves_p95_ms": round(p95 * 1000, 1),
        "workers_per_serve": args.workers,
        "cpus": os.cpu_count(),
        "load_average_at_start": round(load, 2),
        "database": "postgresql",
        "messages": len(burst),
        "aim": SCALING_AIM,
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
