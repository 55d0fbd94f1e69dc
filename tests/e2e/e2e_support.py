"""Helpers for the browser tests: ports, generated images, waiting for Streamlit."""

from __future__ import annotations

import socket

import numpy as np

IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
PASSWORD = "e2e-secret"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lesion(seed: int, size: int = 96) -> np.ndarray:
    """A synthetic brown blob on skin tone: an image the tests own (never patient data)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    cy, cx = rng.uniform(0.35, 0.65, 2) * size
    r = rng.uniform(0.15, 0.3) * size
    inside = ((yy - cy) ** 2 + (xx - cx) ** 2) < r**2
    base = np.array([225, 180, 160]) + rng.normal(0, 6, (size, size, 3))
    spot = np.array([110 + 10 * (seed % 9), 60, 40]) + rng.normal(0, 10, (size, size, 3))
    return np.clip(np.where(inside[..., None], spot, base), 0, 255).astype(np.uint8)


def open_page(page, url: str) -> None:
    page.goto(url)
    wait_idle(page)


def wait_idle(page) -> None:
    page.wait_for_timeout(300)
    page.wait_for_selector(IDLE, timeout=90_000)
