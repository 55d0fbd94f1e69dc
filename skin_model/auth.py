"""Admin password check: constant-time, throttled per client, never logged.

The throttle lives on disk, shared by every session and process. Failures are
counted per client (a salted hash of what the page passes: the browser session
and its address, so no address is stored): after ``MAX_FAILURES`` wrong
passwords that client is refused for ``LOCKOUT_S`` seconds, and nobody else
is, behind a reverse proxy too, where every browser has the proxy's address.
A global ceiling is the backstop against guessing from many clients, or from
new sessions (a reload is one): after ``GLOBAL_MAX_FAILURES`` failures within
``GLOBAL_WINDOW_S`` every sign-in waits for the window to end (the message
says how long); an operator lifts it at once with ``python -m skin_model auth
reset`` (``reset``). One client alone stays below that ceiling (at most 5
failures a minute is 75 a window).
A sign-in lasts ``SKIN_ADMIN_SESSION_MINUTES`` (default 30) without activity.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import time
from contextlib import contextmanager
from pathlib import Path

from skin_model.config import skin_home
from skin_model.errors import SkinModelError
from skin_model.registry import file_lock, write_json

MAX_FAILURES = 5
LOCKOUT_S = 60
GLOBAL_MAX_FAILURES = 100
GLOBAL_WINDOW_S = 15 * 60
SESSION_MINUTES = 30.0
RESET_COMMAND = "python -m skin_model auth reset"


class AuthError(SkinModelError):
    """Sign-in refused."""


def _auth_dir() -> Path:
    return skin_home() / "auth"


@contextmanager
def _locked_state():
    """The throttle state, read and written under an exclusive lock (several sessions sign in at once)."""
    with file_lock(_auth_dir() / "lock"):
        try:
            state = json.loads((_auth_dir() / "failures.json").read_text())
        except (OSError, ValueError):
            state = {}
        state.setdefault("clients", {})
        state.setdefault("global", {"count": 0, "since": 0.0})
        before = json.dumps(state, sort_keys=True)
        yield state
        if json.dumps(state, sort_keys=True) != before:
            write_json(_auth_dir() / "failures.json", state)


def _salt() -> bytes:
    """A random per-install salt, so the stored client keys cannot be reversed into addresses."""
    path = _auth_dir() / "salt"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".salt-{os.getpid()}-{time.time_ns()}")
        tmp.write_text(os.urandom(16).hex())
        try:
            os.link(tmp, path)  # never replaces: every session agrees on the first salt, never sees a partial one
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip().encode()


def client_key(client: str) -> str:
    return hmac.new(_salt(), client.encode(), hashlib.sha256).hexdigest()[:24]


def check(given: str, expected: str | None, *, client: str) -> None:
    """Pass silently for the right password; AuthError with one line otherwise.

    ``client`` identifies who is signing in (the page passes its browser session and address).
    """
    if not expected:
        raise AuthError("admin actions are disabled: set SKIN_ADMIN_PASSWORD to enable them")
    key = client_key(client)
    now = time.time()
    with _locked_state() as state:
        mine = state["clients"].get(key, {"count": 0, "last": 0.0})
        wait = LOCKOUT_S - (now - mine["last"])
        if mine["count"] >= MAX_FAILURES and wait > 0:
            raise AuthError(f"too many failed sign-ins; try again in {int(wait) + 1} s")
        everyone = state["global"]
        if now - everyone["since"] >= GLOBAL_WINDOW_S:
            everyone.update(count=0, since=now)
        if everyone["count"] >= GLOBAL_MAX_FAILURES:
            wait = GLOBAL_WINDOW_S - (now - everyone["since"])
            until = time.strftime("%H:%M UTC", time.gmtime(everyone["since"] + GLOBAL_WINDOW_S))
            raise AuthError(
                f"sign-in is paused for everyone after {everyone['count']} failed attempts in "
                f"{GLOBAL_WINDOW_S // 60} minutes, for {_duration(wait)} more (until {until}); the operator can lift "
                f"it at once with `{RESET_COMMAND}`"
            )
        if hmac.compare_digest(given.encode(), expected.encode()):
            state["clients"].pop(key, None)
            return
        count = 1 if mine["count"] >= MAX_FAILURES else mine["count"] + 1
        state["clients"] = {  # forget clients idle long past their lockout, so the file stays small
            k: v for k, v in state["clients"].items() if now - v["last"] < GLOBAL_WINDOW_S
        } | {key: {"count": count, "last": now}}
        everyone["count"] += 1
    raise AuthError("wrong password")


def reset() -> dict:
    """Lift every sign-in throttle now (the operator's ``auth reset``): what it forgot, as counts."""
    with _locked_state() as state:
        lifted = {"failures_in_window": state["global"]["count"], "clients": len(state["clients"])}
        state["clients"], state["global"] = {}, {"count": 0, "since": 0.0}
    return lifted


def _duration(seconds: float) -> str:
    """A wait as people read it: ``14 min 0 s``, ``42 s``."""
    whole = int(seconds + 0.999)
    return f"{whole // 60} min {whole % 60} s" if whole >= 60 else f"{whole} s"


def password_from_env() -> str | None:
    return os.environ.get("SKIN_ADMIN_PASSWORD") or None


def session_minutes() -> float:
    """Minutes an admin sign-in lasts without activity: ``SKIN_ADMIN_SESSION_MINUTES``, default 30."""
    raw = os.environ.get("SKIN_ADMIN_SESSION_MINUTES", "").strip()
    if not raw:
        return SESSION_MINUTES
    try:
        minutes = float(raw)
    except ValueError:
        minutes = float("nan")
    if not 0 < minutes < float("inf"):
        raise AuthError(f"SKIN_ADMIN_SESSION_MINUTES must be a positive number of minutes; received {raw!r}")
    return minutes


def session_active(last_active: float | None, now: float | None = None) -> bool:
    """True while a sign-in whose last activity was at ``last_active`` (epoch seconds) has not expired."""
    if last_active is None:
        return False
    idle = (time.time() if now is None else now) - last_active
    return 0 <= idle < session_minutes() * 60  # a clock that went backwards expires it too
