"""The UI as an operator uses it, in a real headless Chromium against the
webserver and daemon of `make ui`: "Materialize all" clicked while a
`backup_job` runs waits its turn, and both runs end well. The same test
takes the screenshots the README shows (set ARKE_SCREENSHOTS=docs to
refresh them)."""

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException
from selenium.webdriver.common.by import By

from arke_dr_pipeline_tests.defs.instance import ROOT, seeded_instance


def _browser() -> webdriver.Chrome:
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        subprocess.run([str(ROOT / "scripts" / "install-browser")], check=True, timeout=1200)
    opts = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1000"):
        opts.add_argument(arg)
    opts.binary_location = shutil.which("chromium")
    return webdriver.Chrome(options=opts, service=webdriver.ChromeService(shutil.which("chromedriver")))


def _click(driver, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for button in driver.find_elements(By.TAG_NAME, "button"):
            try:
                if button.text.strip() == text and button.is_enabled() and button.is_displayed():
                    button.click()
                    return
            except Exception:  # the page re-rendered under us: look again
                pass
        time.sleep(0.5)
    raise AssertionError(f"no button {text!r} on {driver.current_url}")


def _dismiss_welcome(driver) -> None:
    try:
        _click(driver, "Skip", timeout=10)
    except AssertionError:
        pass


@pytest.fixture
def ui(tmp_path, fresh_kubo):
    inst, settings = seeded_instance(tmp_path, fresh_kubo)
    driver = _browser()
    try:
        yield inst, driver, settings
    finally:
        driver.quit()
        inst.stop()


def test_materialize_all_clicked_during_a_backup_job_waits_and_both_succeed(ui, fresh_kubo, tmp_path):
    inst, driver, settings = ui
    location, repo = inst.repository
    group = f"{inst.url}/locations/{repo}@{location}/asset-groups/backup"
    fresh_kubo.pause()  # the backup_job hangs in its first step: it is running when the button is clicked
    try:
        backup = inst.launch("backup_job")
        inst.wait([backup], statuses=("STARTED",), timeout=180)
        driver.get(group)
        _dismiss_welcome(driver)
        _click(driver, "Materialize all")
        deadline = time.monotonic() + 60
        while not (clicked := [r for r, v in inst.runs().items() if v["job"] == "__ASSET_JOB"]):
            assert time.monotonic() < deadline, "clicking Materialize all launched no run"
            time.sleep(0.5)
        (clicked,) = clicked
        time.sleep(3)
        assert inst.runs()[clicked]["status"] == "QUEUED", "Materialize all did not wait for the backup_job"
    finally:
        fresh_kubo.resume()
    runs = inst.wait([backup, clicked], timeout=300)
    assert runs[backup]["status"] == runs[clicked]["status"] == "SUCCESS", runs
    assert runs[backup]["end"] <= runs[clicked]["start"]
    assert len(list(settings.backups_dir.glob("arke-*.car"))) == 1  # the second found nothing new
    engine = inst.engine_messages(clicked)
    assert any(m.startswith("Executing steps in process") for m in engine), engine  # the in-process executor

    shots = Path(os.environ["ARKE_SCREENSHOTS"]) if os.environ.get("ARKE_SCREENSHOTS") else tmp_path
    inst.launch("freshness_job")
    pages = {
        "asset-graph.png": group,
        "car-file-metadata.png": f"{inst.url}/assets/car_file?view=events",
        "freshness-checks.png": f"{inst.url}/assets/car_file?view=checks",
        "restore-launchpad.png": f"{inst.url}/locations/{repo}@{location}/jobs/restore_job/playground",
    }
    for name, url in pages.items():
        driver.get(url)
        _dismiss_welcome(driver)
        time.sleep(4)
        if name == "freshness-checks.png":
            driver.find_element(By.XPATH, "//*[text()='newest_backup_is_fresh']").click()
            time.sleep(2)
        driver.save_screenshot(str(shots / name))
        assert (shots / name).stat().st_size > 20_000, name
    driver.get(pages["restore-launchpad.png"])
    time.sleep(3)
    try:
        driver.find_element(By.XPATH, "//*[contains(text(), 'car_path')]")
    except NoSuchElementException:
        raise AssertionError("the restore Launchpad does not show car_path") from None

    fresh_kubo.stop()  # an outage: the freshness checks still say what they can; a failed step says its line
    failed = inst.launch("backup_job")
    checked = inst.launch("freshness_job")
    runs = inst.wait([failed, checked], timeout=300)
    assert runs[failed]["status"] == "FAILURE" and runs[checked]["status"] == "SUCCESS", runs
    driver.get(f"{inst.url}/runs/{failed}")
    _dismiss_welcome(driver)
    deadline = time.monotonic() + 60
    while "files/stat /arke" not in driver.find_element(By.TAG_NAME, "body").text:
        assert time.monotonic() < deadline, "the failed run's page never shows the step's line"
        time.sleep(1)
    body = driver.find_element(By.TAG_NAME, "body").text
    assert "unreachable" in body and "DagsterExecutionStepExecutionError" not in body

