"""Alerts for failed runs: one line, optionally posted to a webhook."""

from __future__ import annotations

import httpx


def alert_line(job: str, run_id: str, message: str) -> str:
    return " ".join(f"ARKE DR ALERT: {job} run {run_id} failed: {message}".split())[:500]


def send_alert(line: str, url: str | None, *, timeout: float = 10.0) -> str | None:
    """Post `line` as `{"text": line}`; None on success, else a loggable reason.

    The reason never contains the URL: webhook URLs carry their token.
    """
    if not url:
        return None
    try:
        httpx.post(url, json={"text": line}, timeout=timeout).raise_for_status()
    except httpx.HTTPStatusError as exc:
        return f"alert webhook answered HTTP {exc.response.status_code}"
    except httpx.HTTPError as exc:
        return f"alert webhook failed: {type(exc).__name__}"
    return None
