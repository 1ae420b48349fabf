"""Alerts never leak their webhook's token."""

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

from arke_dr_pipeline.defs.alerts import alert_line, send_alert


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


def test_the_alert_carries_the_failed_steps_line_not_the_runs_wrapper(tmp_path):
    import dagster as dg

    from arke_dr_pipeline.defs.automation import dr_failure_alert
    from arke_dr_pipeline.defs.resources import AlertResource
    from arke_dr_pipeline_tests.conftest import make_settings
    from arke_dr_pipeline_tests.defs.instance import free_port
    from arke_dr_pipeline_tests.defs.test_definitions import run_backup

    received = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    instance = dg.DagsterInstance.ephemeral()
    settings = make_settings(f"http://127.0.0.1:{free_port()}/api/v0", tmp_path)
    try:
        result = run_backup(settings, instance)
        assert not result.success
        run = instance.get_run_by_id(result.run_id)
        (failure,) = [e.dagster_event for e in instance.all_logs(result.run_id,
                                                                 of_type=dg.DagsterEventType.RUN_FAILURE)]
        context = dg.build_run_status_sensor_context(
            sensor_name="dr_failure_alert", dagster_instance=instance, dagster_run=run,
            dagster_event=failure).for_run_failure()
        dr_failure_alert(context, alerts=AlertResource(webhook_url=f"http://127.0.0.1:{server.server_address[1]}/h"))
    finally:
        server.shutdown()
    (posted,) = received
    assert "event_chain_head: files/stat /arke" in posted["text"] and "unreachable" in posted["text"]
    assert "Steps failed" not in posted["text"]
