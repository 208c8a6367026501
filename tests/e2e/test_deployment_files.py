"""The deployment files (issue 13.4), tested as far as this machine allows: base images cannot be
pulled here, so the compose file is parsed, the systemd unit verified by systemd-analyze, and the
Dockerfile's install step (deploy/install.sh) run in a fresh venv."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import typer
import yaml

import cli
from bot.service import SlackMode, slack_mode
from core.cli.runtime import ConfigurationError, load_cli_settings
from tests.conftest import TEST_SECRET

pytestmark = pytest.mark.database_independent  # CI runs it once, on SQLite

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / "deploy" / "verwijsindex.env.example"


def _environment_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines as systemd's EnvironmentFile (and compose's env_file) read them:
    comments and blank lines skipped, an empty value kept as an empty variable."""
    lines = [line.strip() for line in path.read_text().splitlines()]
    pairs = [line.split("=", 1) for line in lines if line and not line.startswith(("#", ";"))]
    return {key.strip(): value.strip() for key, value in pairs}


def test_the_example_settings_leave_slack_imap_and_dkim_off_and_want_a_real_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for key in os.environ:
        if key.startswith(("SLACK_", "VERWIJSINDEX_")):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no .env
    example = _environment_file(ENV_EXAMPLE)
    assert {"SLACK_BOT_TOKEN", "VERWIJSINDEX_IMAP_URL", "VERWIJSINDEX_DKIM_KEY"} <= set(example)
    for key, value in example.items():
        monkeypatch.setenv(key, value)

    # As shipped, the key's placeholder is refused: nothing starts on a key nobody chose.
    with pytest.raises(ConfigurationError, match="VERWIJSINDEX_SECRET_KEY"):
        load_cli_settings()

    monkeypatch.setenv("VERWIJSINDEX_SECRET_KEY", TEST_SECRET)  # the administrator's step
    settings = load_cli_settings()
    # The empty lines are unset, not "" (a Slack token) or Path(".") (a DKIM key file).
    assert slack_mode(settings) == SlackMode.OFF
    assert settings.slack_signing_secret is None and settings.slack_bot_token is None
    assert settings.imap_url is None and settings.dkim_key is None
    assert settings.database_url.startswith("sqlite:///")
    assert str(settings.covenant) == "/etc/verwijsindex/covenant.toml"
    # serve's role check: a role named without its settings is refused, nothing else is.
    cli.refuse_unconfigured_roles(settings, ["smtp", "processing", "delivery", "scheduler"])
    for unconfigured in ("slack", "imap"):
        with pytest.raises(typer.BadParameter):
            cli.refuse_unconfigured_roles(settings, [unconfigured])


def test_compose_runs_two_instances_on_one_postgresql_after_the_migration() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    covenant = compose["x-verwijsindex"]["environment"]["VERWIJSINDEX_COVENANT"]
    assert covenant == _environment_file(ENV_EXAMPLE)["VERWIJSINDEX_COVENANT"]
    assert compose["x-verwijsindex"]["volumes"] == [f"./covenant.toml:{covenant}:ro"]
    assert set(services) == {"postgres", "migrate", "verwijsindex-1", "verwijsindex-2"}
    instances = [services["verwijsindex-1"], services["verwijsindex-2"]]
    urls = {s["environment"]["VERWIJSINDEX_DATABASE_URL"] for s in instances}
    assert len(urls) == 1 and next(iter(urls)).startswith("postgresql+psycopg://")
    assert "@postgres:5432/" in next(iter(urls))  # the compose service, by name
    for instance in instances:
        assert instance["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}
        }
        assert "command" not in instance  # the image's own: verwijsindex serve
    assert services["migrate"]["command"] == ["verwijsindex", "db", "upgrade"]
    host_ports = [port.rsplit(":", 1)[0] for s in instances for port in s["ports"]]
    assert len(host_ports) == len(set(host_ports)), "each instance its own host ports"
    assert all(
        port.startswith("127.0.0.1:") for s in instances for port in s["ports"] if "8080" in port
    ), "metrics only for the host's monitoring"


def _package(requirement: str) -> str:
    """A requirement's package name, normalised (PEP 503): ``psycopg[binary]>=3.1`` → psycopg."""
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement.strip())
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group()).lower()


def test_every_dependency_is_pinned_in_the_constraints() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = {_package(r) for r in [*project["dependencies"], *extras["postgres"], *extras["test"]]}
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version.strip(), f"not pinned: {line}"
            pins[_package(name)] = version.strip()
    assert sorted(wanted - pins.keys()) == [], "regenerate: bash deploy/update-constraints.sh"


def test_the_dockerfile_runs_unprivileged_with_a_health_check_and_the_tested_install() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    lines = [line.strip() for line in dockerfile.splitlines()]
    assert any(line.startswith("FROM python:3.11-slim") for line in lines)
    assert "USER verwijsindex" in lines
    assert "RUN bash deploy/install.sh" in lines
    assert any(line.startswith("HEALTHCHECK") for line in lines)
    assert "/healthz" in dockerfile
    assert 'CMD ["verwijsindex", "serve"]' in lines
    for line in lines:  # everything it copies exists
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), source


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is absent")
def test_the_systemd_unit_verifies(tmp_path: Path) -> None:
    installed = shutil.which("verwijsindex")
    assert installed, "the project is installed"
    unit = (ROOT / "deploy" / "verwijsindex.service").read_text()
    assert "/opt/verwijsindex/venv/bin/verwijsindex" in unit
    # As installed on a host: the command at the path the unit names.
    local = tmp_path / "verwijsindex.service"
    local.write_text(unit.replace("/opt/verwijsindex/venv/bin/verwijsindex", installed))
    result = subprocess.run(
        ["systemd-analyze", "verify", str(local)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verwijsindex.service" not in result.stderr, result.stderr  # no warning about it


def test_the_install_step_works_in_a_fresh_venv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))},
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
    }
    environment.pop("PIP_BREAK_SYSTEM_PACKAGES", None)
    result = subprocess.run(
        ["bash", str(ROOT / "deploy" / "install.sh")],
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.strip().startswith("verwijsindex ")
    # The installed service finds its templates and renders from any folder.
    check = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "from core.rendering import TEMPLATES_DIR; import sys; "
            "sys.exit(0 if (TEMPLATES_DIR / 'email' / 'match.text.j2').is_file() else 1)",
        ],
        cwd="/",
        env=environment,
        timeout=120,
    )
    assert check.returncode == 0
