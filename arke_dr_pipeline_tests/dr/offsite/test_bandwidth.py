"""ARKE_OFFSITE_MBPS: every byte an offsite copy moves, up or down, goes under one limit.

The clock is injected, so nothing here waits or depends on how fast the machine is: a transfer
under the limit must have slept, in total, at least as long as its bytes take at the rate."""

import threading

import pytest

from arke_dr_pipeline.dr.offsite.copy import OffsiteTarget, S3Config, upload_backup
from arke_dr_pipeline.dr.offsite.reread import verify_copy
from arke_dr_pipeline.dr.offsite.throttle import Throttle
from arke_dr_pipeline.dr.restore.fetch import discard, fetch
from arke_dr_pipeline.errors import BadInput
from arke_dr_pipeline_tests.dr.offsite.test_offsite import cli

RATE = 1e6


class Clock:
    """Time that moves only when someone sleeps."""

    def __init__(self):
        self.now = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        with self._lock:
            self.now += seconds


def limited(s3, clock: Clock) -> S3Config:
    return S3Config.from_env(s3.env(), throttle=Throttle(RATE, clock=clock, sleep=clock.sleep))


def test_the_limit_holds_over_many_reports_and_idle_time_banks_nothing():
    clock = Clock()
    throttle = Throttle(RATE, clock=clock, sleep=clock.sleep)
    for _ in range(100):
        throttle.spend(10_000)
    throttle.spend(-5_000)  # a retried part rewinds: nothing is given back
    assert throttle.spent == 1_000_000 and clock.now == pytest.approx(1.0)
    clock.now += 60  # an idle minute is no licence for a burst
    throttle.spend(500_000)
    assert clock.now == pytest.approx(61.5)


def test_an_upload_its_re_read_and_a_download_all_go_under_the_limit(s3, bucket, local_backup, tmp_path):
    car = local_backup.stat().st_size
    inventory = next(local_backup.parent.glob("*.inventory.tsv")).stat().st_size
    clock = Clock()
    s3_limited = limited(s3, clock)
    upload_backup(s3_limited, OffsiteTarget(bucket, "slow"), local_backup)
    up = s3_limited.throttle.spent
    assert 2 * car + inventory <= up < 2 * car + inventory + 65_536  # CAR, inventory, re-read, sidecar
    assert clock.now >= up / RATE * 0.999

    clock = Clock()
    s3_limited = limited(s3, clock)
    url = f"s3://{bucket}/slow/{local_backup.name}"
    assert verify_copy(s3_limited, url)["verified"]
    reread = s3_limited.throttle.spent
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    staged = fetch(s3_limited, url, elsewhere)
    assert staged.read_bytes() == local_backup.read_bytes()
    assert s3_limited.throttle.spent >= reread + car >= 2 * car
    assert clock.now >= s3_limited.throttle.spent / RATE * 0.999
    discard(staged)


@pytest.mark.parametrize("value", ["fast", "0", "-3", "inf"])
def test_a_bad_limit_is_one_line_and_exit_2(s3, bucket, value):
    with pytest.raises(BadInput, match="ARKE_OFFSITE_MBPS"):
        S3Config.from_env({**s3.env(), "ARKE_OFFSITE_MBPS": value})
    out = cli({**s3.env(), "ARKE_OFFSITE_MBPS": value}, "offsite", "list", f"s3://{bucket}/p")
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and "ARKE_OFFSITE_MBPS" in out.stderr
