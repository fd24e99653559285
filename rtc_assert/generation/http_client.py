"""The HTTP client both server backends share: retries, backoff and adaptive concurrency.

Requests run on up to ``max_in_flight`` threads behind an adaptive limit, as TCP's congestion
window: it starts at ``concurrency`` and grows by one with each success (doubling every round
trip) until the first 429 or 503; from then on it grows by one after as many successes in a row
as the limit, and shrinks by 0.8x on each 429 or 503. Connections are kept alive, as many as
``max_in_flight``, so no request waits on a new connection. Connection
errors, timeouts, 429 and 5xx answers are retried with exponential backoff (or the server's
``Retry-After``), at most ``max_retries`` times; other 4xx answers fail at once with the
server's message. The API key comes from an environment variable and is removed from every
message, as are credentials written into the URL.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, Field

from rtc_assert.errors import GenerationError, ServerGenerationError, redact
from rtc_assert.generation.requests import Generation

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_RETRY_AFTER_S = 120.0
"""The longest ``Retry-After`` honoured; a longer one is cut to this."""


class ClientOptions(BaseModel):
    """How a server backend talks to its server (shared by ``openai`` and ``openai-chat``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key_env: str | None = None
    """Name of the environment variable that holds the API key, if any."""
    concurrency: int = Field(default=32, ge=1)
    """Requests in flight at the start; the limit adapts between 1 and ``max_in_flight``."""
    max_in_flight: int = Field(default=64, ge=1)
    """The most requests in flight (about replicas x ``--max-num-seqs`` for a cluster)."""
    timeout_s: float = Field(default=300.0, gt=0)
    """Seconds to wait for one answer."""
    max_retries: int = Field(default=4, ge=0)
    """Retries of one request after a transient failure."""
    backoff_s: float = Field(default=1.0, ge=0)
    """First retry delay; it doubles with each retry (``Retry-After`` wins when sent)."""


class _Transient(Exception):
    """A failure worth retrying, with the server's requested delay if it gave one."""

    def __init__(self, message: str, retry_after: float | None = None, overload: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.overload = overload


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)


class _Limit:
    """The adaptive in-flight limit: slow start, then additive increase, multiplicative decrease."""

    def __init__(self, start: int, most: int) -> None:
        self.most = most
        self.limit = min(start, most)
        self.in_flight = 0
        self.streak = 0
        self.slow_start = True
        """Until the first overload, every success adds one (the limit doubles per round)."""
        self.condition = threading.Condition()

    def __enter__(self) -> None:
        with self.condition:
            self.condition.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1

    def __exit__(self, *exc: object) -> None:
        with self.condition:
            self.in_flight -= 1
            self.condition.notify_all()

    def succeeded(self) -> None:
        with self.condition:
            self.streak += 1
            if (self.slow_start or self.streak >= self.limit) and self.limit < self.most:
                self.limit += 1
                self.streak = 0
                self.condition.notify_all()

    def overloaded(self) -> None:
        with self.condition:
            self.limit = max(1, int(self.limit * 0.8))
            self.streak = 0
            self.slow_start = False


class ServerClient:
    """JSON POSTs to one server, retried and throttled; errors name ``server`` and the URL."""

    def __init__(self, server: str, options: ClientOptions) -> None:
        self.server = server
        self.options = options
        headers = {}
        self.secrets: tuple[str, ...] = ()
        if options.api_key_env is not None:
            key = os.environ.get(options.api_key_env)
            if not key:
                raise GenerationError(
                    f"{server}: environment variable {options.api_key_env} (api_key_env) is "
                    "not set: export the API key under that name"
                )
            headers["Authorization"] = f"Bearer {key}"
            self.secrets = (key,)
        pool = httpx.Limits(
            max_connections=options.max_in_flight, max_keepalive_connections=options.max_in_flight
        )
        self.client = httpx.Client(headers=headers, timeout=options.timeout_s, limits=pool)
        self.limit = _Limit(options.concurrency, options.max_in_flight)

    def redact(self, text: str) -> str:
        """``text`` without the API key or URL credentials."""
        return redact(text, self.secrets)

    def close(self) -> None:
        self.client.close()

    def post(self, url: str, payload: dict[str, Any], what: str, hint: str) -> dict[str, Any]:
        """POST ``payload`` to ``url`` with retries; ``what`` names the request in errors,
        ``hint`` says what to check when the server rejects it (HTTP 4xx)."""
        attempt = 0
        while True:
            try:
                with self.limit:
                    body = self._post_once(url, payload, hint)
                self.limit.succeeded()
                return body
            except _Transient as error:
                if error.overload:
                    self.limit.overloaded()
                if attempt == self.options.max_retries:
                    raise GenerationError(
                        self.redact(
                            f"{self.server} {url} failed on {what} after {attempt + 1} "
                            f"attempts: {error}; check that the server is up and answers, or "
                            "raise timeout_s / max_retries"
                        )
                    ) from None
                delay = error.retry_after
                if delay is None:
                    delay = self.options.backoff_s * 2**attempt
                logger.warning(
                    "%s: %s; retrying in %.1f s", self.server, self.redact(str(error)), delay
                )
                time.sleep(delay)
                attempt += 1

    def _post_once(self, url: str, payload: dict[str, Any], hint: str) -> dict[str, Any]:
        try:
            response = self.client.post(url, json=payload)
        except httpx.TimeoutException:
            raise _Transient(f"no answer within {self.options.timeout_s:g} s") from None
        except httpx.TransportError as error:
            raise _Transient(f"cannot reach the server ({type(error).__name__})") from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise _Transient(
                f"HTTP {status}: {response.text[:300]}",
                retry_after=_retry_after(response.headers.get("Retry-After")),
                overload=status in (429, 503),
            )
        if status >= 400:
            raise GenerationError(
                self.redact(
                    f"{self.server} {url} rejected the request with HTTP {status}: "
                    f"{response.text[:500]} ({hint})"
                )
            )
        try:
            body = response.json()
        except ValueError:
            raise GenerationError(
                self.redact(
                    f"{self.server} {url} answered HTTP {status} with a body that is not JSON: "
                    f"{response.text[:200]!r}; is base_url the server's API root?"
                )
            ) from None
        if not isinstance(body, dict):
            raise GenerationError(
                f"{self.server} {url} answered with JSON that is not an object: {body!r:.200}"
            )
        return body

    def map(self, items: Sequence[T], call: Callable[[T], Generation]) -> list[Generation]:
        """``call`` on every item concurrently, in order; on failure raise
        `ServerGenerationError` with the generations that completed."""
        results: dict[int, Generation] = {}
        failure: BaseException | None = None
        with ThreadPoolExecutor(max_workers=self.options.max_in_flight) as pool:
            futures = {pool.submit(call, item): index for index, item in enumerate(items)}
            for future in as_completed(futures):
                if future.cancelled():
                    continue
                error = future.exception()
                if error is None:
                    results[futures[future]] = future.result()
                elif failure is None:
                    failure = error
                    for pending in futures:
                        pending.cancel()
        if failure is not None:
            completed = [results[i] for i in sorted(results)]
            if isinstance(failure, GenerationError):
                raise ServerGenerationError(str(failure), completed) from None
            raise failure
        return [results[i] for i in range(len(items))]
