"""Benchmark: a nightly CSV batch of registrations into a large index (DOMAIN: Scale).

    python tests/benchmarks/bench_import.py [--youths 1000000] [--rows 100000]

Builds a fresh SQLite database in a temporary directory (schema + the bundled example
covenant), pre-fills it with ``--youths`` youths registered by the police (fast raw inserts,
not measured), writes a CSV of ``--rows`` registrations for GGD Groningen (valid BSNs, about 5 %
for youths already in the index so the chain notification runs, a few invalid rows), then
measures on copies of that same database:

* ours: ``read_registration_csv`` from the file + ``import_registrations``, end to end;
* ours again under ``tracemalloc`` (its peak; tracing slows Python, so it is not timed);
* baseline: a raw ``sqlite3`` ``executemany`` of the same rows' youth and registration values
  (no parsing, no validation, no audit, no notifications; parameters built before the clock
  starts) in one transaction, with the application engine's journal mode and synchronous
  setting, and foreign keys off (a raw load checks nothing; the application's engine does).

Each measurement runs in a child process so ``ru_maxrss`` is the import's own peak. Not collected
by pytest (the name does not start with ``test_``).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import os
import random
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.bsns import valid_bsns  # noqa: E402 (after the path is set)

SECRET = b"benchmark-secret-key-that-is-long-enough-0123456789"
INSTITUTION = "ggd-groningen"
OTHER = "politie-noord-nederland"
NOW = datetime(2026, 3, 2, 22, 0, tzinfo=UTC)  # a Monday night
MUNICIPALITIES = ("Groningen", "Westerkwartier", "Midden-Groningen", "Het Hogeland")
PROFESSIONALS = (
    "a.devries@ggd-groningen.example",
    "p.bakker@ggd-groningen.example",
    "m.smit@ggd-groningen.example",
)
SURNAMES = (
    "de Vries",
    "Jansen",
    "Bakker",
    "Visser",
    "Smit",
    "Meijer",
    "de Boer",
    "Mulder",
    "de Groot",
    "Bos",
    "Vos",
    "Peters",
    "Hendriks",
    "van Dijk",
    "Dijkstra",
    "Postma",
)
EXISTING_SHARE = 0.05
INVALID_ROWS = 25
HEADER = "bsn;naam;geboortedatum;gemeente;kenmerk;hulpverlener;bsn_ouder;einddatum;actie"


# --- data --------------------------------------------------------------------------------------


def birth_date(rng: random.Random) -> date:
    # Under 23 on NOW, and not born today.
    return date(2026, 3, 1) - timedelta(days=rng.randrange(1, 22 * 365))


def _config() -> Any:
    from core.config import CoreConfig
    from core.covenant import bundled_covenant_path, load_covenant
    from core.identity import IdentityKeys

    return CoreConfig(covenant=load_covenant(bundled_covenant_path()), keys=IdentityKeys(SECRET))


def build_database(
    path: Path, youths: int, seed: int
) -> tuple[list[str], list[tuple[str, date, str]]]:
    """Schema, covenant, and ``youths`` youths registered by the police. Returns the pre-filled
    BSNs with their birth date and municipality (for the CSV's 'already known' rows)."""
    from core.audit import use_keyring
    from core.covenant.sync import sync_covenant
    from core.db import create_db_engine, transaction
    from core.keyring import KeyRing
    from core.models import metadata

    config = _config()
    engine = create_db_engine(f"sqlite:///{path}")
    use_keyring(engine, KeyRing.of(SECRET))
    metadata.create_all(engine)
    with transaction(engine) as session:
        sync_covenant(session, config.covenant)
    engine.dispose()

    rng = random.Random(seed)
    known = valid_bsns(youths, start_prefix=10_000_000)
    sample: list[tuple[str, date, str]] = []
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=OFF")
    created = NOW.replace(tzinfo=None) - timedelta(days=30)
    created_text = created.isoformat(sep=" ", timespec="microseconds")
    chunk = 100_000
    next_id = 1
    for start in range(0, youths, chunk):
        youth_rows = []
        registration_rows = []
        for bsn in known[start : start + chunk]:
            born = birth_date(rng)
            municipality = rng.choice(MUNICIPALITIES)
            purge = (
                born.replace(year=born.year + 23)
                if (born.month, born.day) != (2, 29)
                else date(born.year + 23, 3, 1)
            )
            youth_rows.append(
                (
                    next_id,
                    config.keys.bsn_digest(bsn),
                    1,
                    os.urandom(37),
                    os.urandom(40),
                    municipality,
                    created_text,
                    config.keys.key_id,
                    config.keys.encrypt_date(born),  # the rules decrypt it
                    purge.replace(day=1).isoformat(),
                )
            )
            registration_rows.append(
                (
                    next_id,
                    OTHER,
                    f"PNN-{next_id}",
                    None,
                    created_text,
                    None,
                    "active",
                    None,
                )
            )
            if rng.random() < 0.01:
                sample.append((bsn, born, municipality))
            next_id += 1
        connection.executemany(
            "INSERT INTO youth (id, identity_key, has_bsn, bsn_encrypted, name_encrypted, "
            "municipality, created_at, key_id, birth_date_encrypted, purge_month) "
            "VALUES (?,?,?,?,?,?,?,?,?,?)",
            youth_rows,
        )
        connection.executemany(
            "INSERT INTO registration (youth_id, institution_id, reference, professional_id, "
            "registered_at, ends_on, status, ended_at) VALUES (?,?,?,?,?,?,?,?)",
            registration_rows,
        )
        connection.commit()
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.execute("ANALYZE")
    connection.commit()
    connection.close()
    return known, sample


def write_csv(
    path: Path, rows: int, sample: list[tuple[str, date, str]], seed: int
) -> dict[str, int]:
    rng = random.Random(seed + 1)
    existing = min(int(rows * EXISTING_SHARE), len(sample))
    fresh = valid_bsns(rows - existing - INVALID_ROWS + 50, start_prefix=60_000_000)
    parents = valid_bsns(2000, start_prefix=90_000_000)
    chosen_existing = rng.sample(sample, existing)
    lines: list[list[str]] = []
    for bsn, born, municipality in chosen_existing:
        lines.append(_line(rng, bsn, born, municipality, len(lines), parents))
    for bsn in fresh[: rows - existing - INVALID_ROWS]:
        lines.append(
            _line(rng, bsn, birth_date(rng), rng.choice(MUNICIPALITIES), len(lines), parents)
        )
    rng.shuffle(lines)
    invalid = [
        ["123456789", "Kind", "01-05-2016", "Groningen", "X-1", "", "", "", ""],  # elfproef
        [fresh[-1], "Kind", "01-05-2016", "Atlantis", "X-2", "", "", "", ""],  # municipality
        [fresh[-2], "Kind", "01-01-2000", "Groningen", "X-3", "", "", "", ""],  # 26 years old
        [fresh[-3], "Kind", "31-02-2016", "Groningen", "X-4", "", "", "", ""],  # no such date
        [fresh[-4], "Kind", "01-05-2016", "Groningen", "", "", "", "", ""],  # no kenmerk
        [
            fresh[-5],
            "Kind",
            "01-05-2016",
            "Groningen",
            "X-6",
            "niemand@ggd-groningen.example",
            "",
            "",
            "",
        ],
    ]
    for i in range(INVALID_ROWS):
        lines.insert(rng.randrange(len(lines)), invalid[i % len(invalid)])
    with path.open("w", newline="", encoding="utf-8") as handle:
        handle.write(HEADER + "\r\n")
        writer = csv.writer(handle, delimiter=";", lineterminator="\r\n")
        writer.writerows(lines)
    return {"rows": len(lines), "existing": existing, "invalid": INVALID_ROWS}


def _line(
    rng: random.Random, bsn: str, born: date, municipality: str, n: int, parents: list[str]
) -> list[str]:
    professional = rng.choice(PROFESSIONALS) if rng.random() < 0.3 else ""
    parent = rng.choice(parents) if rng.random() < 0.1 else ""
    name = (
        f"{rng.choice(('Anna', 'Daan', 'Sem', 'Julia', 'Noah', 'Emma', 'Liam', 'Mila'))} "
        f"{rng.choice(SURNAMES)}"
    )
    return [
        bsn,
        name,
        born.strftime("%d-%m-%Y"),
        municipality,
        f"GGD-{n:07d}",
        professional,
        parent,
        "",
        "",
    ]


# --- measurements (each in a child process) ----------------------------------------------------


def max_rss() -> int:
    """This process's peak resident set size in bytes (``getrusage``'s ``ru_maxrss``)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def child_import(database: Path, csv_path: Path, traced: bool) -> dict[str, Any]:
    import tracemalloc

    from core.actors import institution_actor
    from core.audit import use_keyring
    from core.bulk_import import BATCH_SIZE, import_registrations, read_registration_csv
    from core.db import create_db_engine
    from core.keyring import KeyRing

    config = _config()
    engine = create_db_engine(f"sqlite:///{database}")
    use_keyring(engine, KeyRing.of(SECRET))
    actor = institution_actor(INSTITUTION, "smtp")
    if traced:
        tracemalloc.start()
    started = time.perf_counter()
    with csv_path.open(newline="", encoding="utf-8") as stream:
        report = import_registrations(
            engine, config, INSTITUTION, read_registration_csv(stream), actor=actor, now=NOW
        )
    elapsed = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] if traced else None
    if traced:
        tracemalloc.stop()
    engine.dispose()
    return {
        "seconds": elapsed,
        "tracemalloc_peak": peak,
        "max_rss": max_rss(),
        "accepted": report.accepted,
        "refused": len(report.refused),
        "new_involvements": report.new_involvements,
        "notifications": report.notifications,
        "batch_size": BATCH_SIZE,
    }


def child_profile(database: Path, csv_path: Path, out: Path) -> dict[str, Any]:
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    result = child_import(database, csv_path, traced=False)
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.dump_stats(out)
    return result


def child_baseline(database: Path, csv_path: Path) -> dict[str, Any]:
    config = _config()
    youths = []
    registrations = []
    created = NOW.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
    with csv_path.open(newline="", encoding="utf-8") as stream:
        reader = csv.reader(stream, delimiter=";")
        next(reader)
        for bsn, _name, born, municipality, reference, _prof, _parent, _end, _action in reader:
            _day, month, year = born.split("-")
            try:
                key = config.keys.bsn_digest(bsn)
            except Exception:  # the few invalid rows: the baseline validates nothing
                key = hashlib.sha256(bsn.encode()).hexdigest()
            youths.append(
                (
                    key,
                    1,
                    os.urandom(37),
                    os.urandom(40),
                    municipality,
                    created,
                    config.keys.key_id,
                    os.urandom(47),  # the size of a sealed birth date
                    f"{int(year) + 23}-{month}-01",
                )
            )
            registrations.append((key, INSTITUTION, reference, None, created, None, "active", None))
    connection = sqlite3.connect(database, isolation_level=None)
    for pragma in ("journal_mode=WAL", "foreign_keys=OFF", "synchronous=NORMAL"):
        connection.execute(f"PRAGMA {pragma}")
    started = time.perf_counter()
    connection.execute("BEGIN IMMEDIATE")
    connection.executemany(
        "INSERT OR IGNORE INTO youth (identity_key, has_bsn, bsn_encrypted, name_encrypted, "
        "municipality, created_at, key_id, birth_date_encrypted, purge_month) "
        "VALUES (?,?,?,?,?,?,?,?,?)",
        youths,
    )
    connection.executemany(
        "INSERT OR IGNORE INTO registration (youth_id, institution_id, reference, "
        "professional_id, registered_at, ends_on, status, ended_at) VALUES "
        "((SELECT id FROM youth WHERE identity_key = ?),?,?,?,?,?,?,?)",
        registrations,
    )
    connection.execute("COMMIT")
    elapsed = time.perf_counter() - started
    connection.close()
    return {
        "seconds": elapsed,
        "rows": len(youths),
        "max_rss": max_rss(),
    }


def fresh_copy(pristine: Path, target: Path) -> str:
    """A copy of the pre-filled database, written out to disk before anything is timed (the
    kernel flushing a 0.5 GB copy would otherwise slow whatever runs next)."""
    for stale in target.parent.glob(target.name + "*"):
        stale.unlink()
    shutil.copyfile(pristine, target)
    os.sync()
    return str(target)


def run_child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", *args], capture_output=True, text=True, cwd=ROOT
    )
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise SystemExit(f"child {args[0]} failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--youths", type=int, default=1_000_000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --keep: reuse the database and CSV built by an earlier run",
    )
    parser.add_argument("--profile", type=Path, help="also write a cProfile of the import here")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *paths = args.child
        if kind == "build":
            pristine, csv_path = Path(paths[0]), Path(paths[1])
            youths, rows, seed = (int(value) for value in paths[2:5])
            if pristine.exists():
                pristine.unlink()
            _, sample = build_database(pristine, youths, seed)
            result = write_csv(csv_path, rows, sample, seed)
        elif kind == "import":
            result = child_import(Path(paths[0]), Path(paths[1]), traced=False)
        elif kind == "traced":
            result = child_import(Path(paths[0]), Path(paths[1]), traced=True)
        elif kind == "profile":
            result = child_profile(Path(paths[0]), Path(paths[1]), Path(paths[2]))
        else:
            result = child_baseline(Path(paths[0]), Path(paths[1]))
        print(json.dumps(result))
        return

    workdir = args.keep or Path(tempfile.mkdtemp(prefix="verwijsindex-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        pristine = workdir / "pristine.db"
        csv_path = workdir / "registraties.csv"
        print(f"Pre-filling {args.youths:,} youths (registered by {OTHER}) in {workdir} ...")
        started = time.perf_counter()
        marker = workdir / "shape.json"
        wanted = {"youths": args.youths, "rows": args.rows, "seed": args.seed}
        if args.reuse and marker.exists() and json.loads(marker.read_text())["args"] == wanted:
            shape = json.loads(marker.read_text())["shape"]
            print("  (reusing the database and CSV built earlier in this directory)")
        else:
            # In a child too: this process stays small, and a child inherits its parent's
            # peak RSS across fork and exec (Linux), which would spoil the import's figure.
            shape = run_child(
                "build",
                str(pristine),
                str(csv_path),
                str(args.youths),
                str(args.rows),
                str(args.seed),
            )
            marker.write_text(json.dumps({"args": wanted, "shape": shape}))
        print(
            f"  done in {time.perf_counter() - started:.1f} s; database "
            f"{pristine.stat().st_size / 1e6:.0f} MB; CSV {shape['rows']:,} rows "
            f"({shape['existing']:,} youths already known, {shape['invalid']} invalid)"
        )

        ours = run_child("import", fresh_copy(pristine, workdir / "ours.db"), str(csv_path))
        baseline = run_child(
            "baseline", fresh_copy(pristine, workdir / "baseline.db"), str(csv_path)
        )
        traced = run_child("traced", fresh_copy(pristine, workdir / "traced.db"), str(csv_path))
        if args.profile:
            profiled = fresh_copy(pristine, workdir / "profiled.db")
            run_child("profile", profiled, str(csv_path), str(args.profile))

        rows = shape["rows"]
        ours_rate = rows / ours["seconds"]
        base_rate = baseline["rows"] / baseline["seconds"]
        mb = 1024 * 1024
        print()
        print(
            f"import_registrations (CSV file -> committed, {rows:,} rows, "
            f"batches of {ours['batch_size']:,})"
        )
        print(f"  time                 {ours['seconds']:8.2f} s")
        print(f"  throughput           {ours_rate:8,.0f} rows/s")
        print(f"  accepted / refused   {ours['accepted']:,} / {ours['refused']:,}")
        print(
            f"  new involvements     {ours['new_involvements']:,}; chain notifications "
            f"{ours['notifications']:,}"
        )
        print(
            f"  peak memory          tracemalloc {traced['tracemalloc_peak'] / mb:.1f} MB; "
            f"max RSS {ours['max_rss'] / mb:.1f} MB (traced run: {traced['max_rss'] / mb:.1f} MB)"
        )
        print(f"baseline: raw sqlite3 executemany ({baseline['rows']:,} youth + registration rows)")
        print(f"  time                 {baseline['seconds']:8.2f} s")
        print(f"  throughput           {base_rate:8,.0f} rows/s")
        ratio = ours_rate / base_rate
        print(f"ratio ours / baseline  {ratio:8.2f}   (aim >= 0.4)")
        peak_ok = max(traced["tracemalloc_peak"], ours["max_rss"]) < 500 * mb
        print(f"peak < 500 MB          {'yes' if peak_ok else 'NO'}")
    finally:
        if args.keep is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
