"""Admin sign-in: right password passes, wrong ones are throttled across sessions."""

from __future__ import annotations

import pytest

from skin_model import auth


def test_the_right_password_passes_and_a_wrong_one_is_refused():
    auth.check("s3cret", "s3cret")
    with pytest.raises(auth.AuthError, match="wrong password"):
        auth.check("guess", "s3cret")


def test_without_a_configured_password_admin_actions_are_disabled():
    with pytest.raises(auth.AuthError, match="SKIN_ADMIN_PASSWORD"):
        auth.check("anything", None)


def test_repeated_failures_lock_out_even_the_right_password(monkeypatch):
    for _ in range(auth.MAX_FAILURES):
        with pytest.raises(auth.AuthError, match="wrong password"):
            auth.check("guess", "s3cret")
    with pytest.raises(auth.AuthError, match="too many failed sign-ins"):
        auth.check("s3cret", "s3cret")
    now = auth.time.time()
    monkeypatch.setattr(auth.time, "time", lambda: now + auth.LOCKOUT_S + 1)
    auth.check("s3cret", "s3cret")  # the lockout ends


def test_the_password_is_never_written_to_the_state_folder(skin_home):
    with pytest.raises(auth.AuthError):
        auth.check("guess-123", "s3cret-456")
    written = "".join(p.read_text() for p in skin_home.rglob("*") if p.is_file())
    assert "guess-123" not in written and "s3cret-456" not in written


def test_a_sign_in_lasts_the_idle_limit_and_no_longer(monkeypatch):
    monkeypatch.delenv("SKIN_ADMIN_SESSION_MINUTES", raising=False)
    assert auth.session_active(1000.0, now=1000.0 + 29 * 60)
    assert not auth.session_active(1000.0, now=1000.0 + 30 * 60)
    assert not auth.session_active(None)
    assert not auth.session_active(1000.0, now=900.0)  # a clock that went backwards does not extend it
    monkeypatch.setenv("SKIN_ADMIN_SESSION_MINUTES", "2")
    assert not auth.session_active(1000.0, now=1000.0 + 121)


@pytest.mark.parametrize("value", ["0", "-5", "soon", "nan", "inf"])
def test_a_bad_idle_limit_is_refused_with_one_line(monkeypatch, value):
    monkeypatch.setenv("SKIN_ADMIN_SESSION_MINUTES", value)
    with pytest.raises(auth.AuthError, match="SKIN_ADMIN_SESSION_MINUTES must be a positive number"):
        auth.session_minutes()
