"""Admin sign-in: right password passes; wrong ones are throttled per client, with a global ceiling."""

from __future__ import annotations

import logging

import pytest

from skin_model import auth

ADMIN, ATTACKER = "10.0.0.5", "203.0.113.9"


def fail(client: str, times: int = 1, password: str = "guess") -> None:
    for _ in range(times):
        with pytest.raises(auth.AuthError, match="wrong password"):
            auth.check(password, "s3cret", client=client)


@pytest.fixture
def clock(monkeypatch):
    """``clock[0]`` is what time.time() returns inside auth."""
    now = [1_000_000.0]
    monkeypatch.setattr(auth.time, "time", lambda: now[0])
    return now


def test_the_right_password_passes_and_a_wrong_one_is_refused():
    auth.check("s3cret", "s3cret", client=ADMIN)
    fail(ADMIN)


def test_without_a_configured_password_admin_actions_are_disabled():
    with pytest.raises(auth.AuthError, match="SKIN_ADMIN_PASSWORD"):
        auth.check("anything", None, client=ADMIN)


def test_repeated_failures_lock_out_that_client_even_with_the_right_password(clock):
    fail(ATTACKER, auth.MAX_FAILURES)
    with pytest.raises(auth.AuthError, match="too many failed sign-ins"):
        auth.check("s3cret", "s3cret", client=ATTACKER)
    clock[0] += auth.LOCKOUT_S + 1
    auth.check("s3cret", "s3cret", client=ATTACKER)  # the lockout ends


def test_one_clients_failures_do_not_lock_out_another_client(clock):
    fail(ATTACKER, auth.MAX_FAILURES)
    with pytest.raises(auth.AuthError, match="too many failed sign-ins"):
        auth.check("guess", "s3cret", client=ATTACKER)
    auth.check("s3cret", "s3cret", client=ADMIN)
    fail(ADMIN, auth.MAX_FAILURES - 1)  # the admin has their own full allowance
    auth.check("s3cret", "s3cret", client=ADMIN)


def test_one_client_guessing_at_full_speed_never_trips_the_global_ceiling(clock):
    end = clock[0] + 2 * auth.GLOBAL_WINDOW_S
    while clock[0] < end:
        fail(ATTACKER, auth.MAX_FAILURES)
        clock[0] += auth.LOCKOUT_S + 0.01
    auth.check("s3cret", "s3cret", client=ADMIN)


def test_guessing_from_many_addresses_hits_the_global_ceiling_for_a_window(clock):
    for n in range(auth.GLOBAL_MAX_FAILURES):
        fail(f"198.51.100.{n}")
    with pytest.raises(auth.AuthError, match="sign-in is paused"):
        auth.check("s3cret", "s3cret", client=ADMIN)
    clock[0] += auth.GLOBAL_WINDOW_S
    auth.check("s3cret", "s3cret", client=ADMIN)


def test_neither_the_password_nor_the_address_is_written_to_disk_or_logs(skin_home, caplog):
    caplog.set_level(logging.DEBUG)
    fail(ATTACKER, auth.MAX_FAILURES, password="guess-123")
    auth.check("s3cret-456", "s3cret-456", client=ADMIN)
    written = "".join(p.read_text() for p in skin_home.rglob("*") if p.is_file())
    assert (skin_home / "auth" / "failures.json").exists()  # the throttle did write
    for secret in ("guess-123", "s3cret-456", ATTACKER, ADMIN):
        assert secret not in written and secret not in caplog.text


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


def test_the_global_pause_says_how_long_and_an_operator_can_lift_it(clock, capsys):
    from skin_model.cli import main

    fail(ADMIN, auth.MAX_FAILURES)  # a typo or five: this client is locked out for a minute
    for n in range(auth.GLOBAL_MAX_FAILURES - auth.MAX_FAILURES):
        fail(f"198.51.100.{n}")  # a script from fresh sessions fills the global ceiling
    clock[0] += 60
    with pytest.raises(auth.AuthError, match=r"paused .* for 14 min 0 s .*python -m skin_model auth reset"):
        auth.check("s3cret", "s3cret", client=ADMIN)

    assert main(["auth", "reset"]) == 0
    assert "lifted" in capsys.readouterr().out
    auth.check("s3cret", "s3cret", client=ADMIN)  # at once, not after the window
