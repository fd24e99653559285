"""The HTTP client both server backends share: retries, backoff and adaptive concurrency.

Requests are asyncio tasks on aiohttp, on an event loop the client runs in a thread of its
own: `ServerClient.map` hands them to that loop and waits, so it is called the same way from
plain code and from inside a running event loop (Jupyter, an async training loop), and returns
the results in request order. aiohttp's compiled HTTP parser and one loop for every request
in flight cost the client 0.10 to 0.17 ms of CPU a request, against 0.35 to 1.76 ms with
httpx and a thread per request and more with ``httpx.AsyncClient`` (benchmarks/client_cpu.py),
CPU that a server on the same machine waits for.

Requests in flight are held under an adaptive limit, as TCP's congestion window: it starts at
``concurrency`` and grows by one with each success (doubling every round trip) until the first
429 or 503; from then on it grows by one after as many successes in a row as the limit, and
shrinks by 0.8x on each 429 or 503. Connections are kept alive, as many as ``max_in_flight``,
so no request waits on a new connection. Connection errors, timeouts, 429 and 5xx answers are
retried with exponential backoff (or the server's ``Retry-After``), at most ``max_retries``
times; other 4xx answers fail at once with the server's message. After a request fails for
good, no other is sent or retried: those in flight finish, and what completed is kept on the
error. Ctrl-C (KeyboardInterrupt in the waiting thread) cancels every request at once. The API
key comes from an environment variable and is removed from every message, as are credentials
written into the URL.

As httpx did: proxies from ``HTTP_PROXY``, ``HTTPS_PROXY`` and ``ALL_PROXY`` unless
``NO_PROXY`` names the host, certificates from ``SSL_CERT_FILE`` or ``SSL_CERT_DIR`` else
certifi's, ``user:password@`` in the URL sent as basic auth (instead of the API key), and
redirects not followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
import logging
import os
import threading
import time
import urllib.request
import weakref
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from rtc_assert.errors import GenerationError, ServerGenerationError, redact
from rtc_assert.generation.requests import Generation

if TYPE_CHECKING:
    import aiohttp
    from yarl import URL

logger = logging.getLogger(__name__)

T = TypeVar("T")
MAX_RETRY_AFTER_S = 120.0
"""The longest ``Retry-After`` honoured; a longer one is cut to this."""
KEEPALIVE_S = 5.0
"""Seconds an idle connection is kept, as httpx kept them (aiohttp's default is 15): uvicorn,
under ``vllm serve`` and SGLang, closes one idle for 5 s, and a request sent on it as it
closes fails (and waits a backoff to be retried)."""
STOP_S = 10.0
"""The longest wait for cancelled requests to end (Ctrl-C) or for the loop to close."""


class ClientOptions(BaseModel):
    """How a server backend talks to its server (shared by ``openai`` and ``openai-chat``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key_env: str | None = None
    """Name of the environment variable that holds the API key, if any."""
    concurrency: int = Field(default=64, ge=1)
    """Requests in flight at the start; the limit adapts between 1 and ``max_in_flight``
    (starting lower costs a round trip at part width: slow start doubles it per round trip)."""
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


class _Abandoned(Exception):
    """A request not sent (or not retried) because another one of its `ServerClient.map`
    failed."""


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
    """The adaptive in-flight limit: slow start, then additive increase, multiplicative decrease.

    Used on the client's event loop only (it has no lock); waiters get their slots in order.
    """

    def __init__(self, start: int, most: int) -> None:
        self.most = most
        self.limit = min(start, most)
        self.in_flight = 0
        self.streak = 0
        self.slow_start = True
        """Until the first overload, every success adds one (the limit doubles per round)."""
        self.waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self) -> None:
        """Wait for a slot and take it."""
        if self.in_flight < self.limit and not self.waiters:
            self.in_flight += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self.waiters.append(waiter)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.cancelled():
                with contextlib.suppress(ValueError):
                    self.waiters.remove(waiter)
            else:  # granted as it was cancelled: hand the slot on
                self.release()
            raise

    def release(self) -> None:
        """Give a slot back."""
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self.waiters and self.in_flight < self.limit:
            waiter = self.waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    def succeeded(self) -> None:
        self.streak += 1
        if (self.slow_start or self.streak >= self.limit) and self.limit < self.most:
            self.limit += 1
            self.streak = 0
            self._wake()

    def overloaded(self) -> None:
        self.limit = max(1, int(self.limit * 0.8))
        self.streak = 0
        self.slow_start = False


@dataclass
class _Batch:
    """The requests of one `ServerClient.map`: whether one failed, which are being sent."""

    failed: bool = False
    sending: set[asyncio.Task[Any] | None] = field(default_factory=set)


_BATCH: contextvars.ContextVar[_Batch] = contextvars.ContextVar("rtc_assert_batch")
"""The batch of the `ServerClient.map` whose task is running (each task copies it)."""


@dataclass
class _Target:
    """One URL, ready to send to: its parsed form, headers and proxy, worked out once."""

    url: URL
    headers: dict[str, str] | None
    proxy: str | None
    ssl: Any
    """The certificates for an https URL (`_ssl_context`); True (unused) for http."""


@dataclass
class _Loop:
    """The client's event loop, the thread that runs it, and the session it holds."""

    loop: asyncio.AbstractEventLoop
    thread: threading.Thread
    session: aiohttp.ClientSession | None = None


def _run(loop: asyncio.AbstractEventLoop) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_forever()
    finally:
        loop.close()


def _shut_down(state: _Loop) -> None:
    """Close the session, stop the loop and end its thread (`ServerClient.close`, or when
    the client is collected or the interpreter exits)."""

    async def close() -> None:
        if state.session is not None:
            await state.session.close()

    loop, thread = state.loop, state.thread
    if not thread.is_alive() or loop.is_closed():
        return
    if threading.current_thread() is thread:  # collected on its own loop: close, then stop
        loop.create_task(close()).add_done_callback(lambda _: loop.stop())
        return
    with contextlib.suppress(Exception):
        asyncio.run_coroutine_threadsafe(close(), loop).result(timeout=STOP_S)
    with contextlib.suppress(RuntimeError):  # closed meanwhile
        loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=STOP_S)


def _ssl_context() -> Any:
    """Certificates as httpx takes them: ``SSL_CERT_FILE``, ``SSL_CERT_DIR``, else certifi's
    (made once per process and setting: loading certifi's costs 15 ms of CPU)."""
    return _ssl_context_for(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.lru_cache(maxsize=4)
def _ssl_context_for(cafile: str | None, capath: str | None) -> Any:
    import ssl

    if cafile:
        return ssl.create_default_context(cafile=cafile)
    if capath:
        return ssl.create_default_context(capath=capath)
    import certifi

    return ssl.create_default_context(cafile=certifi.where())


class ServerClient:
    """JSON POSTs to one server, retried and throttled; errors name ``server`` and the URL."""

    def __init__(self, server: str, options: ClientOptions) -> None:
        self.server = server
        self.options = options
        self.secrets: tuple[str, ...] = ()
        self.authorization: str | None = None
        if options.api_key_env is not None:
            key = os.environ.get(options.api_key_env)
            if not key:
                raise GenerationError(
                    f"{server}: environment variable {options.api_key_env} (api_key_env) is "
                    "not set: export the API key under that name"
                )
            self.authorization = f"Bearer {key}"
            self.secrets = (key,)
        self.limit = _Limit(options.concurrency, options.max_in_flight)
        self._targets: dict[str, _Target] = {}
        self._state: _Loop | None = None
        self._closer: weakref.finalize[Any, Any] | None = None
        self._starting = threading.Lock()

    def redact(self, text: str) -> str:
        """``text`` without the API key or URL credentials."""
        return redact(text, self.secrets)

    def close(self) -> None:
        """Close the connections and end the client's thread (a later `map` starts anew)."""
        if self._closer is not None:
            self._closer()
        self._state = self._closer = None

    def _loop(self) -> asyncio.AbstractEventLoop:
        """The client's event loop, started on first use."""
        with self._starting:
            if self._state is None or not self._state.thread.is_alive():
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=_run, args=(loop,), name=f"rtc-assert {self.server}", daemon=True
                )
                thread.start()
                self._state = _Loop(loop, thread)
                self._closer = weakref.finalize(self, _shut_down, self._state)
            return self._state.loop

    def _session(self) -> aiohttp.ClientSession:
        """The session (connection pool), made on the loop at its first request."""
        assert self._state is not None
        if self._state.session is None:
            import aiohttp

            timeout = self.options.timeout_s
            self._state.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self.options.max_in_flight,
                    limit_per_host=0,
                    keepalive_timeout=KEEPALIVE_S,
                ),
                timeout=aiohttp.ClientTimeout(
                    total=None, connect=timeout, sock_connect=timeout, sock_read=timeout
                ),
            )
        return self._state.session

    def _target(self, url: str) -> _Target:
        """``url`` parsed, with its headers and proxy (from the environment, as httpx's)."""
        target = self._targets.get(url)
        if target is None:
            from yarl import URL

            parsed = URL(url)
            headers = None
            if self.authorization is not None and not parsed.user:
                headers = {"Authorization": self.authorization}
            proxies = urllib.request.getproxies()
            proxy = proxies.get(parsed.scheme) or proxies.get("all")
            if proxy and parsed.host and urllib.request.proxy_bypass(parsed.host):
                proxy = None
            if proxy and "://" not in proxy:
                proxy = f"http://{proxy}"
            ssl = _ssl_context() if parsed.scheme == "https" else True
            target = self._targets[url] = _Target(parsed, headers, proxy or None, ssl)
        return target

    async def post(self, url: str, payload: dict[str, Any], what: str, hint: str) -> dict[str, Any]:
        """POST ``payload`` to ``url`` with retries (on the client's loop, within `map`);
        ``what`` names the request in errors, ``hint`` says what to check when the server
        rejects it (HTTP 4xx)."""
        batch = _BATCH.get(None) or _Batch()
        attempt = 0
        while True:
            try:
                async with _Slot(self.limit, batch):
                    body = await self._post_once(url, payload, hint)
                self.limit.succeeded()
                return body
            except _Transient as error:
                if error.overload:
                    self.limit.overloaded()
                if attempt == self.options.max_retries:
                    batch.failed = True
                    raise GenerationError(
                        self.redact(
                            f"{self.server} {url} failed on {what} after {attempt + 1} "
                            f"attempts: {error}; check that the server is up and answers, or "
                            "raise timeout_s / max_retries"
                        )
                    ) from None
                if batch.failed:
                    raise _Abandoned from None
                delay = error.retry_after
                if delay is None:
                    delay = self.options.backoff_s * 2**attempt
                logger.warning(
                    "%s: %s; retrying in %.1f s", self.server, self.redact(str(error)), delay
                )
                await asyncio.sleep(delay)
                attempt += 1

    async def _post_once(self, url: str, payload: dict[str, Any], hint: str) -> dict[str, Any]:
        import aiohttp

        target = self._target(url)
        try:
            async with self._session().post(
                target.url,
                json=payload,
                headers=target.headers,
                proxy=target.proxy,
                ssl=target.ssl,
                allow_redirects=False,
            ) as response:
                status, data = response.status, await response.read()
                charset = response.charset or "utf-8"
                retry_after = response.headers.get("Retry-After")
        except asyncio.TimeoutError:
            raise _Transient(f"no answer within {self.options.timeout_s:g} s") from None
        except aiohttp.ClientError as error:
            raise _Transient(f"cannot reach the server ({type(error).__name__})") from None

        def text(most: int) -> str:
            try:
                return data[: most * 4].decode(charset, errors="replace")[:most]
            except LookupError:  # an unknown charset
                return data[: most * 4].decode("utf-8", errors="replace")[:most]

        if status == 429 or status >= 500:
            raise _Transient(
                f"HTTP {status}: {text(300)}",
                retry_after=_retry_after(retry_after),
                overload=status in (429, 503),
            )
        if status >= 400:
            raise GenerationError(
                self.redact(
                    f"{self.server} {url} rejected the request with HTTP {status}: "
                    f"{text(500)} ({hint})"
                )
            )
        try:
            body = json.loads(data)
        except ValueError:
            raise GenerationError(
                self.redact(
                    f"{self.server} {url} answered HTTP {status} with a body that is not JSON: "
                    f"{text(200)!r}; is base_url the server's API root?"
                )
            ) from None
        if not isinstance(body, dict):
            raise GenerationError(
                f"{self.server} {url} answered with JSON that is not an object: {body!r:.200}"
            )
        return body

    def map(
        self, items: Sequence[T], call: Callable[[T], Awaitable[Generation]]
    ) -> list[Generation]:
        """``call`` on every item concurrently, in order; on failure raise
        `ServerGenerationError` with the generations that completed.

        ``call`` is a coroutine function, run on the client's loop (it awaits `post`); the
        caller's thread waits. Ctrl-C there cancels every request, then KeyboardInterrupt goes
        on.
        """
        if not items:
            return []
        loop = self._loop()
        if self._state is not None and threading.current_thread() is self._state.thread:
            raise RuntimeError("ServerClient.map called from its own event loop")
        outcome: Future[tuple[dict[int, Generation], BaseException | None]] = Future()
        ended = threading.Event()
        started: list[asyncio.Task[Any]] = []

        def start() -> None:
            task = loop.create_task(self._map(items, call))
            task.add_done_callback(functools.partial(_settle, outcome, ended))
            started.append(task)

        loop.call_soon_threadsafe(start)
        try:
            results, failure = outcome.result()
        except BaseException:
            if not outcome.done():  # Ctrl-C (or another exception raised in this thread)
                loop.call_soon_threadsafe(lambda: started[0].cancel())  # after start: in order
                ended.wait(timeout=STOP_S)
            raise
        if failure is not None:
            completed = [results[i] for i in sorted(results)]
            if isinstance(failure, GenerationError):
                raise ServerGenerationError(str(failure), completed) from None
            raise failure
        return [results[i] for i in range(len(items))]

    async def _map(
        self, items: Sequence[T], call: Callable[[T], Awaitable[Generation]]
    ) -> tuple[dict[int, Generation], BaseException | None]:
        """The results by index, and the first failure (None if every request succeeded)."""
        batch = _Batch()
        _BATCH.set(batch)  # for the tasks below, which copy this task's context
        results: dict[int, Generation] = {}
        failures: list[BaseException] = []
        tasks: list[asyncio.Task[Generation]] = []

        async def run(item: T) -> Generation:
            try:
                return await call(item)
            except _Abandoned:
                raise
            except Exception:
                batch.failed = True  # at once: a request woken by this one's slot is not sent
                raise

        def finished(index: int, task: asyncio.Task[Generation]) -> None:
            if task.cancelled():
                return
            error = task.exception()
            if error is None:
                results[index] = task.result()
            elif not isinstance(error, _Abandoned):
                failures.append(error)
                for other in tasks:  # those waiting for a slot or a retry are not sent
                    if not other.done() and other not in batch.sending:
                        other.cancel()

        try:
            for index, item in enumerate(items):
                task = asyncio.ensure_future(run(item))
                task.add_done_callback(functools.partial(finished, index))
                tasks.append(task)
            await asyncio.wait(tasks)
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=STOP_S)
            raise
        return results, failures[0] if failures else None


def _settle(outcome: Future[Any], ended: threading.Event, task: asyncio.Task[Any]) -> None:
    """Hand ``task``'s end to the thread waiting on ``outcome``, then set ``ended``."""
    if task.cancelled():
        outcome.cancel()
    elif task.exception() is not None:
        outcome.set_exception(task.exception())
    else:
        outcome.set_result(task.result())
    ended.set()


class _Slot:
    """A slot under the limit for one attempt of a request of ``batch``; a request whose
    batch has failed is not sent, and an error escaping the attempt fails the batch before the
    slot is handed on."""

    def __init__(self, limit: _Limit, batch: _Batch) -> None:
        self.limit, self.batch = limit, batch
        self.task: asyncio.Task[Any] | None = None

    async def __aenter__(self) -> None:
        await self.limit.acquire()
        if self.batch.failed:
            self.limit.release()
            raise _Abandoned
        self.task = asyncio.current_task()
        self.batch.sending.add(self.task)

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.batch.sending.discard(self.task)
        if error is not None and not isinstance(error, (_Transient, asyncio.CancelledError)):
            self.batch.failed = True
        self.limit.release()
