"""A bandwidth limit for offsite copies (ARKE_OFFSITE_MBPS), as a wrapper of the S3 client.

The host's uplink is shared with the Arke API it protects: a nightly upload of a full CAR must
not starve the API's own traffic. Wrapping the client, as restic's limiter wraps its backend,
puts every upload, re-read and download under the limit without each caller remembering to.
"""

from __future__ import annotations

import threading
import time

from ...errors import BadInput


class Throttle:
    """Bytes per second, averaged: each transfer reports what it moved and sleeps until the
    total is within the rate. Threads share one reservation, so parallel parts of a multipart
    upload add up to the limit, not four times it."""

    def __init__(self, bytes_per_second: float, *, clock=time.monotonic, sleep=time.sleep):
        if not bytes_per_second > 0:
            raise BadInput(f"a bandwidth limit must be above zero, not {bytes_per_second!r}")
        self.rate = float(bytes_per_second)
        self.spent = 0
        self._clock, self._sleep = clock, sleep
        self._due = None
        self._lock = threading.Lock()

    @classmethod
    def from_env(cls, env) -> Throttle | None:
        text = (env.get("ARKE_OFFSITE_MBPS") or "").strip()
        if not text:
            return None
        try:
            mbps = float(text)
        except ValueError:
            raise BadInput(f"ARKE_OFFSITE_MBPS must be megabytes per second, not {text!r}") from None
        if not 0 < mbps < float("inf"):
            raise BadInput(f"ARKE_OFFSITE_MBPS must be above zero, not {text!r}")
        return cls(mbps * 1e6)

    def spend(self, n: int) -> None:
        if n <= 0:  # s3transfer reports a retried part's rewind as a negative amount
            return
        with self._lock:
            now = self._clock()
            self._due = max(self._due if self._due is not None else now, now) + n / self.rate
            self.spent += n
            wait = self._due - now
        if wait > 0:
            self._sleep(wait)


class _LimitedBody:
    """A streamed object body whose chunks pass through the throttle as they are read."""

    def __init__(self, body, throttle: Throttle):
        self._body, self._throttle = body, throttle

    def read(self, amt=None):
        data = self._body.read(amt)
        self._throttle.spend(len(data))
        return data

    def iter_chunks(self, chunk_size=1 << 20):
        for chunk in self._body.iter_chunks(chunk_size):
            self._throttle.spend(len(chunk))
            yield chunk

    def close(self):
        self._body.close()


class LimitedClient:
    """A boto3 S3 client with object bytes, both ways, under one throttle; every other call as is."""

    def __init__(self, client, throttle: Throttle):
        self._client, self.throttle = client, throttle

    def __getattr__(self, name):
        return getattr(self._client, name)

    def upload_file(self, filename, bucket, key, *, Callback=None, **kwargs):
        def moved(n):
            self.throttle.spend(n)
            if Callback is not None:
                Callback(n)

        return self._client.upload_file(filename, bucket, key, Callback=moved, **kwargs)

    def put_object(self, **kwargs):
        body = kwargs.get("Body")
        if isinstance(body, bytes | bytearray):
            self.throttle.spend(len(body))
        return self._client.put_object(**kwargs)

    def get_object(self, **kwargs):
        answer = self._client.get_object(**kwargs)
        return {**answer, "Body": _LimitedBody(answer["Body"], self.throttle)}
