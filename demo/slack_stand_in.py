"""A small stand-in for the Slack Web API on a free loopback port, for ``verwijsindex demo``
and the tests.

It runs an aiohttp web server in a background thread with its own event loop, so it serves
both synchronous and asynchronous tests, and the code under test talks to it over real HTTP
(``AsyncWebClient(base_url=api.url)`` or ``VERWIJSINDEX_SLACK_API_URL``).

Every request is recorded as a :class:`Call` — the method name and its arguments decoded from
the query string, a form body or a JSON body, with ``blocks``/``view``/``attachments`` parsed
to Python objects when they arrive as JSON strings. ``rate_limit``, ``fail`` and ``delay``
script the next answers of one method (HTTP 429 with ``Retry-After``; ``{"ok": false, "error":
...}``; an answer that takes its time, as a slow Slack does).

Every message and view is checked as Slack checks it (:mod:`demo.block_kit`: slack_sdk's Block
Kit models and Slack's documented limits): an invalid one is answered ``invalid_blocks`` (a
message text past 4,000 characters ``msg_too_long``) and kept in :attr:`FakeSlackApi.invalid`,
so a test can fail on it (the tests' wrapper does, when it stops).

A request to ``/response/<anything>`` is recorded as method ``response_url`` and answered
``{"ok": true}``, so a test can hand the app ``api.response_url("x")`` as a ``response_url``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from demo import block_kit

# Arguments Slack accepts as a JSON string inside a form or query string.
_JSON_ARGUMENTS = ("blocks", "view", "attachments", "metadata", "users")


@dataclass(frozen=True)
class Call:
    """One request the fake received."""

    method: str
    args: dict[str, Any]
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)
    token: str | None = None
    at: float = field(default_factory=time.monotonic)  # when it arrived (time.monotonic)

    @property
    def ok(self) -> bool:
        return self.status == 200 and bool(self.response.get("ok"))


@dataclass
class _User:
    user_id: str
    email: str
    deleted: bool
    name: str


@dataclass
class _Script:
    """Scripted answers for the next calls of one method, consumed in order."""

    rate_limited: list[int] = field(default_factory=list)  # Retry-After seconds per call
    failures: list[str] = field(default_factory=list)  # error codes per call
    delays: list[float] = field(default_factory=list)  # seconds before answering, per call


@dataclass(frozen=True)
class InvalidPayload:
    """A message or view Slack would have refused: the method and what is wrong with it."""

    method: str
    problems: tuple[str, ...]


class FakeSlackApi:
    """The fake server. ``start()``/``stop()`` or ``with FakeSlackApi() as api: ...``."""

    def __init__(self, *, team_id: str = "T0VERWIJS", bot_user_id: str = "U0BOT") -> None:
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._calls: list[Call] = []
        self._invalid: list[InvalidPayload] = []
        self._users: dict[str, _User] = {}
        self._workspaces = _Workspaces()  # a distributed app's workspaces (oauth.v2.access)
        self._scripts: dict[str, _Script] = {}
        self._ts_counter = itertools.count(1)
        self._view_counter = itertools.count(1)
        self._ts_base = int(time.time())
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeSlackApi:
        if self._thread is not None:
            raise RuntimeError("FakeSlackApi is already running")
        started = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._start_site())
            except BaseException as exc:  # reported to the starting thread
                errors.append(exc)
                started.set()
                loop.close()
                return
            started.set()
            loop.run_forever()
            loop.run_until_complete(self._stop_site())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-slack-api", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("FakeSlackApi did not start within 10 s")
        if errors:
            self._thread = None
            raise RuntimeError("FakeSlackApi could not start") from errors[0]
        return self

    def stop(self) -> None:
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> FakeSlackApi:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL ending in ``/``: slack_sdk requests ``base_url + method``."""
        if self._port is None:
            raise RuntimeError("FakeSlackApi is not running")
        return f"http://127.0.0.1:{self._port}/api/"

    def response_url(self, name: str = "hook") -> str:
        """A URL that stands in for a ``response_url`` Slack puts in payloads."""
        if self._port is None:
            raise RuntimeError("FakeSlackApi is not running")
        return f"http://127.0.0.1:{self._port}/response/{name}"

    # -- test set-up ---------------------------------------------------------------------------

    def add_user(
        self, user_id: str, email: str, *, deleted: bool = False, name: str = "Slack Gebruiker"
    ) -> None:
        with self._lock:
            self._users[user_id] = _User(user_id, email, deleted, name)

    def rate_limit(
        self, method: str, times: int, retry_after: int = 1, *, token: str | None = None
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with HTTP 429 and ``Retry-After``;
        with ``token``, only the calls made with that token (Slack limits each workspace on
        its own): the others are answered as usual."""
        with self._lock:
            script = self._scripts.setdefault(_script_key(method, token), _Script())
            script.rate_limited.extend([retry_after] * times)

    def fail(self, method: str, error: str = "channel_not_found", times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with ``{"ok": false, "error": ...}``."""
        with self._lock:
            self._scripts.setdefault(method, _Script()).failures.extend([error] * times)

    def delay(self, method: str, seconds: float, times: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` only after ``seconds`` (a slow Slack);
        other calls are answered meanwhile."""
        with self._lock:
            self._scripts.setdefault(method, _Script()).delays.extend([seconds] * times)

    # -- inspection ----------------------------------------------------------------------------

    @property
    def invalid(self) -> list[InvalidPayload]:
        """Every message or view that Slack would have refused, oldest first."""
        with self._lock:
            return list(self._invalid)

    def take_invalid(self) -> list[InvalidPayload]:
        """:attr:`invalid`, forgotten (for a test that sends an invalid payload on purpose)."""
        with self._lock:
            taken, self._invalid = self._invalid, []
        return taken

    @property
    def calls(self) -> list[Call]:
        """A snapshot of every call so far (including refused ones), oldest first."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str, *, succeeded: bool | None = None) -> list[Call]:
        """Calls of one method; ``succeeded=True`` keeps only those answered ``ok``."""
        return [
            call
            for call in self.calls
            if call.method == method and (succeeded is None or call.ok == succeeded)
        ]

    def clear(self) -> None:
        with self._lock:
            self._calls.clear()

    def wait_for(
        self, method: str, count: int = 1, *, timeout: float = 5.0, succeeded: bool | None = True
    ) -> list[Call]:
        """Block until ``count`` calls of ``method`` arrived (for synchronous tests)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [
                    c
                    for c in self._calls
                    if c.method == method and (succeeded is None or c.ok == succeeded)
                ]
                remaining = deadline - time.monotonic()
                if len(found) >= count or remaining <= 0:
                    break
                self._changed.wait(remaining)
        if len(found) < count:
            raise AssertionError(f"{len(found)} of {count} {method} calls after {timeout} s")
        return found

    async def wait_for_async(
        self, method: str, count: int = 1, *, timeout: float = 5.0, succeeded: bool | None = True
    ) -> list[Call]:
        """The same as :meth:`wait_for` without blocking the test's event loop."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.calls_to(method, succeeded=succeeded)
            if len(found) >= count:
                return found
            if time.monotonic() >= deadline:
                raise AssertionError(f"{len(found)} of {count} {method} calls after {timeout} s")
            await asyncio.sleep(0.02)

    # -- the server ----------------------------------------------------------------------------

    async def _start_site(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_route("*", "/response/{name:.*}", self._handle_response_url)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        sockets = getattr(site._server, "sockets", None)
        assert sockets, "the fake Slack API has no listening socket"
        self._port = int(sockets[0].getsockname()[1])

    async def _stop_site(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        self._port = None

    def _record(self, call: Call) -> None:
        with self._changed:
            self._calls.append(call)
            self._changed.notify_all()

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        args = await _decode_arguments(request)
        refused = self._refusal("response_url", args)
        if refused is not None:
            # Slack answers a refused response_url payload with HTTP 400 and the error.
            self._record(Call("response_url", args, 400, refused, None))
            return web.json_response(refused, status=400)
        response = {"ok": True}
        self._record(Call("response_url", args, 200, response, None))
        return web.json_response(response)

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args = await _decode_arguments(request)
        token = _bearer_token(request) or _text(args.get("token"))

        if method == "oauth.v2.access":  # the app's client id and secret, not a token
            answer = self._oauth_v2_access(args, request.headers.get("Authorization", ""))
            return self._answer(method, args, None, answer)
        if not token:
            return self._answer(method, args, None, {"ok": False, "error": "not_authed"})
        with self._lock:
            own = self._scripts.get(_script_key(method, token))
            limited = own if own and own.rate_limited else self._scripts.get(method)
            retry_after = limited.rate_limited.pop(0) if limited and limited.rate_limited else None
            script = self._scripts.get(method)
            delay = script.delays.pop(0) if script and script.delays else 0.0
            error = (
                script.failures.pop(0)
                if retry_after is None and script and script.failures
                else None
            )
        if delay:
            await asyncio.sleep(delay)
        if retry_after is not None:
            body = {"ok": False, "error": "ratelimited"}
            self._record(Call(method, args, 429, body, token))
            return web.json_response(body, status=429, headers={"Retry-After": str(retry_after)})
        if error is not None:
            return self._answer(method, args, token, {"ok": False, "error": error})
        handler = self._handlers().get(method)
        if handler is None:
            return self._answer(method, args, token, {"ok": False, "error": "unknown_method"})
        refused = self._refusal(method, args)
        if refused is not None:
            return self._answer(method, args, token, refused)
        in_workspace = self._in_workspace(method, args, token)
        answer = in_workspace if in_workspace is not None else handler(args)
        return self._answer(method, args, token, answer)

    def _refusal(self, method: str, args: dict[str, Any]) -> dict[str, Any] | None:
        """Slack's answer to a message or view it would refuse (kept in :attr:`invalid`)."""
        problems = block_kit.problems(method, args)
        if not problems:
            return None
        with self._lock:
            self._invalid.append(InvalidPayload(method, tuple(problems)))
        too_long = all(problem.startswith("text has") for problem in problems)
        return {
            "ok": False,
            "error": "msg_too_long" if too_long else "invalid_blocks",
            "errors": problems,
        }

    def _answer(
        self, method: str, args: dict[str, Any], token: str | None, body: dict[str, Any]
    ) -> web.Response:
        self._record(Call(method, args, 200, body, token))
        return web.json_response(body)

    # -- method implementations ----------------------------------------------------------------

    def _handlers(self) -> dict[str, Callable[[dict[str, Any]], dict[str, Any]]]:
        return {
            "auth.test": self._auth_test,
            "users.info": self._users_info,
            "users.lookupByEmail": self._users_lookup_by_email,
            "views.open": self._view,
            "views.update": self._view,
            "views.push": self._view,
            "views.publish": self._view,
            "chat.postMessage": self._post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._post_ephemeral,
            "conversations.open": self._conversations_open,
        }

    def _next_ts(self) -> str:
        return f"{self._ts_base}.{next(self._ts_counter):06d}"

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://verwijsindex-test.slack.com/",
            "team": "Verwijsindex test",
            "user": "verwijsindex",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": "B0BOT",
        }

    def _user_body(self, user: _User) -> dict[str, Any]:
        return {
            "id": user.user_id,
            "team_id": self.team_id,
            "name": user.email.split("@")[0],
            "real_name": user.name,
            "deleted": user.deleted,
            "is_bot": False,
            "profile": {"email": user.email, "real_name": user.name, "display_name": user.name},
        }

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            user = self._users.get(_text(args.get("user")) or "")
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": self._user_body(user)}

    def _users_lookup_by_email(self, args: dict[str, Any]) -> dict[str, Any]:
        email = (_text(args.get("email")) or "").lower()
        with self._lock:
            user = next((u for u in self._users.values() if u.email.lower() == email), None)
        if user is None:
            return {"ok": False, "error": "users_not_found"}
        return {"ok": True, "user": self._user_body(user)}

    def _view(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view")
        if not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        view_id = _text(args.get("view_id")) or f"V{next(self._view_counter):08d}"
        return {"ok": True, "view": {**view, "id": view_id, "team_id": self.team_id}}

    def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = _text(args.get("channel"))
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("text") and not args.get("blocks"):
            return {"ok": False, "error": "no_text"}
        # Slack answers a DM posted to a user id with the DM channel's id.
        answered = f"D{channel}" if channel.startswith(("U", "W")) else channel
        ts = self._next_ts()
        message = {"type": "message", "text": args.get("text", ""), "ts": ts}
        if "blocks" in args:
            message["blocks"] = args["blocks"]
        if _text(args.get("thread_ts")):  # a reply in a thread (recorded in the call's args)
            message["thread_ts"] = _text(args.get("thread_ts"))
        return {"ok": True, "channel": answered, "ts": ts, "message": message}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel, ts = _text(args.get("channel")), _text(args.get("ts"))
        if not channel or not ts:
            return {"ok": False, "error": "message_not_found"}
        return {"ok": True, "channel": channel, "ts": ts, "text": args.get("text", "")}

    def _post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        if not _text(args.get("channel")) or not _text(args.get("user")):
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "message_ts": self._next_ts()}

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        users = _text(args.get("users")) or ""
        first = users.split(",")[0].strip()
        if not first:
            return {"ok": False, "error": "users_not_found"}
        return {"ok": True, "channel": {"id": f"D{first}"}}

    # -- several workspaces: a distributed app installed through OAuth -------------------------
    # Each workspace has its own bot token, users and team id; a call made with a workspace's
    # token answers auth.test, users.info and users.lookupByEmail for that workspace only, and
    # after revoke_workspace() its token is refused (token_revoked). Other tokens see the one
    # default workspace above, as before.

    def oauth_client(self, client_id: str, client_secret: str) -> None:
        """The app credentials oauth.v2.access accepts (HTTP Basic, or form fields)."""
        with self._lock:
            self._workspaces.client = (client_id, client_secret)

    def add_workspace(
        self, team_id: str, *, name: str, enterprise_id: str | None = None
    ) -> FakeWorkspace:
        workspace = FakeWorkspace(
            team_id=team_id,
            name=name,
            enterprise_id=enterprise_id,
            bot_token=f"xoxb-{team_id.lower()}-{next(self._workspaces.serial)}",
            bot_user_id=f"U0BOT{team_id[-4:]}",
            bot_id=f"B0BOT{team_id[-4:]}",
        )
        with self._lock:
            self._workspaces.by_token[workspace.bot_token] = workspace
        return workspace

    def authorize_code(self, workspace: FakeWorkspace, installer: str) -> str:
        """What Slack hands the redirect after a user allowed the install: a one-time code."""
        code = f"code-{workspace.team_id}-{next(self._workspaces.serial)}"
        with self._lock:
            self._workspaces.codes[code] = (workspace, installer)
        return code

    def add_workspace_user(
        self, workspace: FakeWorkspace, user_id: str, email: str, *, email_hidden: bool = False
    ) -> None:
        """A member of the workspace, or (``email_hidden``) a Slack Connect guest from another
        organisation whose address Slack does not show."""
        workspace.users[user_id] = (email, email_hidden)

    def revoke_workspace(self, workspace: FakeWorkspace) -> None:
        with self._lock:
            self._workspaces.revoked.add(workspace.bot_token)

    def _oauth_v2_access(self, args: dict[str, Any], authorization: str) -> dict[str, Any]:
        credentials = (_text(args.get("client_id")), _text(args.get("client_secret")))
        if authorization.lower().startswith("basic "):
            decoded = base64.b64decode(authorization[6:]).decode()
            client_id, _, secret = decoded.partition(":")
            credentials = (client_id, secret)
        with self._lock:
            if self._workspaces.client is None or credentials != self._workspaces.client:
                return {"ok": False, "error": "invalid_client_id"}
            found = self._workspaces.codes.pop(_text(args.get("code")) or "", None)
        if found is None:
            return {"ok": False, "error": "invalid_code"}
        workspace, installer = found
        return {
            "ok": True,
            "app_id": "A0VERWIJS",
            "authed_user": {"id": installer},
            "scope": _text(args.get("scope")) or "commands,chat:write,users:read,users:read.email",
            "token_type": "bot",
            "access_token": workspace.bot_token,
            "bot_user_id": workspace.bot_user_id,
            "team": {"id": workspace.team_id, "name": workspace.name},
            "enterprise": (
                {"id": workspace.enterprise_id, "name": "Grid"} if workspace.enterprise_id else None
            ),
            "is_enterprise_install": False,
        }

    def _in_workspace(
        self, method: str, args: dict[str, Any], token: str | None
    ) -> dict[str, Any] | None:
        """The answer of a call made with a workspace's token, or None for the default one."""
        with self._lock:
            workspace = self._workspaces.by_token.get(token or "")
            revoked = token in self._workspaces.revoked
        if workspace is None:
            return None
        if revoked:
            return {"ok": False, "error": "token_revoked"}
        if method == "auth.test":
            return {
                "ok": True,
                "url": f"https://{workspace.team_id.lower()}.slack.com/",
                "team": workspace.name,
                "user": "verwijsindex",
                "team_id": workspace.team_id,
                "user_id": workspace.bot_user_id,
                "bot_id": workspace.bot_id,
                **({"enterprise_id": workspace.enterprise_id} if workspace.enterprise_id else {}),
            }
        if method == "users.info":
            user_id = _text(args.get("user")) or ""
            if user_id not in workspace.users:
                return {"ok": False, "error": "user_not_found"}
            return {"ok": True, "user": workspace.user_body(user_id)}
        if method == "users.lookupByEmail":
            email = (_text(args.get("email")) or "").lower()
            for user_id, (address, hidden) in workspace.users.items():
                if address.lower() == email and not hidden:
                    return {"ok": True, "user": workspace.user_body(user_id)}
            return {"ok": False, "error": "users_not_found"}
        return None


@dataclass
class FakeWorkspace:
    """One workspace the app can be installed into."""

    team_id: str
    name: str
    enterprise_id: str | None
    bot_token: str
    bot_user_id: str
    bot_id: str
    users: dict[str, tuple[str, bool]] = field(default_factory=dict)  # id → (email, hidden)

    def user_body(self, user_id: str) -> dict[str, Any]:
        email, hidden = self.users[user_id]
        profile: dict[str, Any] = {"real_name": email.split("@")[0]}
        if not hidden:
            profile["email"] = email
        return {
            "id": user_id,
            "team_id": self.team_id,
            "name": email.split("@")[0],
            "deleted": False,
            "is_bot": False,
            "profile": profile,
        }


@dataclass
class _Workspaces:
    by_token: dict[str, FakeWorkspace] = field(default_factory=dict)
    codes: dict[str, tuple[FakeWorkspace, str]] = field(default_factory=dict)
    revoked: set[str] = field(default_factory=set)
    client: tuple[str, str] | None = None
    serial: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


async def _decode_arguments(request: web.Request) -> dict[str, Any]:
    """Query string, then form or JSON body, with JSON-string arguments parsed."""
    args: dict[str, Any] = dict(request.query)
    raw = await request.read()
    if raw:
        if request.content_type == "application/json":
            decoded = json.loads(raw)
            if isinstance(decoded, dict):
                args.update(decoded)
        else:
            args.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    for name in _JSON_ARGUMENTS:
        value = args.get(name)
        if isinstance(value, str) and value[:1] in ("[", "{"):
            with contextlib.suppress(json.JSONDecodeError):
                args[name] = json.loads(value)
    return args


def _script_key(method: str, token: str | None) -> str:
    """A method's script, or (with ``token``) its script for the calls with that token."""
    return method if token is None else f"{method} {token}"


def _bearer_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        token = header[7:].strip()
        return token or None
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
