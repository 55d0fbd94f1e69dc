"""Admin password check: constant-time, throttled across sessions, never logged.

The throttle lives on disk so opening a new browser session does not reset
it: after ``MAX_FAILURES`` wrong passwords, sign-in is refused for
``LOCKOUT_S`` seconds. A sign-in lasts ``SKIN_ADMIN_SESSION_MINUTES``
(default 30) without activity.
"""

from __future__ import annotations

import hmac
import os
import time

from skin_model.config import skin_home
from skin_model.errors import SkinModelError
from skin_model.registry import write_json

MAX_FAILURES = 5
LOCKOUT_S = 60
SESSION_MINUTES = 30.0


class AuthError(SkinModelError):
    """Sign-in refused."""


def _state_path():
    return skin_home() / "auth" / "failures.json"


def _failures() -> dict:
    import json

    try:
        return json.loads(_state_path().read_text())
    except (OSError, ValueError):
        return {"count": 0, "last": 0.0}


def check(given: str, expected: str | None) -> None:
    """Pass silently for the right password; AuthError with one line otherwise."""
    if not expected:
        raise AuthError("admin actions are disabled: set SKIN_ADMIN_PASSWORD to enable them")
    state = _failures()
    wait = LOCKOUT_S - (time.time() - state["last"])
    if state["count"] >= MAX_FAILURES and wait > 0:
        raise AuthError(f"too many failed sign-ins; try again in {int(wait) + 1} s")
    if hmac.compare_digest(given.encode(), expected.encode()):
        if state["count"]:
            write_json(_state_path(), {"count": 0, "last": 0.0})
        return
    count = 1 if state["count"] >= MAX_FAILURES else state["count"] + 1
    write_json(_state_path(), {"count": count, "last": time.time()})
    raise AuthError("wrong password")


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
