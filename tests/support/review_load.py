"""A client that keeps asking the API server to create a workload distroguard must refuse, and counts
how each request was answered: the measure of "no review refused or lost" while replicas come and go.

With the chart's `failurePolicy: Ignore`, a review that finds no replica, or a replica that dies
mid-answer, is admitted unchecked: so a request the webhook should have refused and that was admitted
is a lost review, and any other answer than the expected denial is counted apart, with its message.

    with ReviewLoad(plane, namespace="apps", image=alpine, refusal="musl is not allowed") as load:
        ...                           # roll, delete, upgrade
    assert load.answers == {"refused": load.sent}, load.unexpected

The requests are server-side dry runs (`dryRun=All`): admission runs in full (the webhooks declare
`sideEffects: None`) and nothing is stored, so the client can send thousands.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from support.kube import ControlPlane
from support.manifests import deployment

REQUEST_TIMEOUT_SECONDS = 35.0
"""Above the webhook's timeoutSeconds (10) and the API server's own request timeout."""


def admin_context(plane: ControlPlane) -> ssl.SSLContext:
    """TLS to the API server as its admin (client certificate)."""
    context = plane.ssl_context()
    context.load_cert_chain(str(plane.admin.cert), str(plane.admin.key))
    return context


@dataclass(frozen=True)
class Answer:
    outcome: str
    """refused (with the expected message), admitted, or `http-CODE` / the error's type."""
    message: str
    seconds: float


def dry_run_create(plane: ControlPlane, context: ssl.SSLContext, manifest: dict[str, Any]) -> Answer:
    """POST `manifest` (a Deployment) with `dryRun=All`; how it was answered."""
    namespace = manifest["metadata"]["namespace"]
    request = urllib.request.Request(
        f"{plane.server}/apis/apps/v1/namespaces/{namespace}/deployments?dryRun=All",
        data=json.dumps(manifest).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, context=context, timeout=REQUEST_TIMEOUT_SECONDS) as response:
            response.read()
            return Answer("admitted", "", time.monotonic() - started)
    except urllib.error.HTTPError as e:
        try:
            message = str(json.loads(e.read()).get("message", ""))
        except ValueError:
            message = ""
        return Answer(f"http-{e.code}", message, time.monotonic() - started)
    except OSError as e:
        return Answer(type(e).__name__, str(e), time.monotonic() - started)


@dataclass
class ReviewLoad:
    """Sends dry-run creates of `image` in `namespace` one after the other, from a thread, until closed."""

    plane: ControlPlane
    namespace: str
    image: str
    refusal: str
    """Text the expected denial contains."""
    answers: Counter[str] = field(default_factory=Counter)
    unexpected: list[tuple[str, Answer]] = field(default_factory=list)
    """(wall-clock time, answer) of every answer other than the expected refusal."""
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def sent(self) -> int:
        return sum(self.answers.values())

    def __enter__(self) -> ReviewLoad:
        context = admin_context(self.plane)
        manifest = deployment(self.namespace, "review-load", self.image)

        def loop() -> None:
            while not self._stop.is_set():
                answer = dry_run_create(self.plane, context, manifest)
                if answer.outcome == "http-403" and self.refusal in answer.message:
                    answer = Answer("refused", answer.message, answer.seconds)
                self.answers[answer.outcome] += 1
                if answer.outcome != "refused":
                    self.unexpected.append((time.strftime("%H:%M:%S"), answer))

        self._thread = threading.Thread(target=loop, name="review-load", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(REQUEST_TIMEOUT_SECONDS + 5)
