"""Paths stay in the backups folder; alerts never leak their webhook's token."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from arke_dr_pipeline.dr.alerts import alert_line, send_alert
from arke_dr_pipeline.dr.paths import PathRefused, backup_path


@pytest.fixture
def backups(tmp_path):
    folder = tmp_path / "backups"
    folder.mkdir()
    (folder / "arke-1-x.car").write_bytes(b"car")
    (tmp_path / "outside.car").write_bytes(b"car")
    (folder / "link-out.car").symlink_to(tmp_path / "outside.car")
    (folder / "link-in.car").symlink_to(folder / "arke-1-x.car")
    return folder


def test_paths_inside_are_accepted(backups):
    assert backup_path(backups, "arke-1-x.car") == (backups / "arke-1-x.car").resolve()
    assert backup_path(backups, str(backups / "arke-1-x.car")).name == "arke-1-x.car"
    assert backup_path(backups, "link-in.car").name == "arke-1-x.car"


@pytest.mark.parametrize("path", ["../outside.car", "/etc/hostname", "link-out.car", "sub/../../outside.car", "."])
def test_paths_outside_are_refused(backups, path):
    with pytest.raises(PathRefused):
        backup_path(backups, path)


def test_alerts_post_one_line_and_never_leak_the_token():
    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200 if self.path.endswith("/ok") else 403)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/hooks/SECRET-TOKEN"
    try:
        line = alert_line("backup_job", "r1", "car_file failed:\n  disk full")
        assert "\n" not in line and line.startswith("ARKE DR ALERT: backup_job run r1 failed")
        assert send_alert(line, base + "/ok") is None and received == [{"text": line}]
        denied = send_alert(line, base + "/no")
        assert denied == "alert webhook answered HTTP 403"
    finally:
        server.shutdown()
    closed = send_alert(line, "http://127.0.0.1:9/hooks/SECRET-TOKEN")
    assert "SECRET" not in closed and "127.0.0.1" not in closed
    assert send_alert(line, None) is None


@pytest.mark.parametrize("path, says", [
    ("arke\0.car", "contains a NUL byte"),
    ("x" * 10_000, "File name too long"),
    ("sub", "is not a regular file"),
])
def test_odd_paths_are_refused_in_one_line(backups, path, says):
    (backups / "sub").mkdir()
    with pytest.raises(PathRefused, match=says) as err:
        backup_path(backups, path)
    assert "\n" not in str(err.value) and len(str(err.value)) < 400
