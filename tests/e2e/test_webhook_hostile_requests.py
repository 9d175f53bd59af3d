"""Hostile and malformed requests sent straight to the webhook server of a real `distroguard run --dev`
process (against the test control plane), over HTTPS, the way a broken or hostile client could.

Every answer must be an HTTP 4xx refusal or a well-formed AdmissionReview: never a 5xx page, never
"allowed" for garbage, the request's uid echoed whenever it could be read. The server must keep answering
valid reviews while clients trickle or stall, must close them in bounded time, must refuse TLS 1.0/1.1, and
no path a client sends may reach the file system.

Figures (time to answer, time until a stalled connection is closed, the server's peak memory) are printed
with `-s`: `pytest -s -q tests/e2e/test_webhook_hostile_requests.py`.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
import time
import uuid
import warnings
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from distroguard.admission.review import MAX_BODY_BYTES
from distroguard.admission.workloads import MAX_CONTAINERS
from distroguard.errors import InvalidReview
from distroguard.operator.webhook.server import READ_TIMEOUT_SECONDS
from support.kube import ControlPlane, free_port
from support.operator_process import OperatorProcess
from support.reviews import container, pod_spec, review, workload
from support.scratch import Scratch
from support.webhook_client import (
    Reply,
    WebhookEndpoint,
    chunk,
    chunked_head,
    read_reply,
    refused,
    request_bytes,
    well_formed,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TOO_LONG_IMAGE = "x" * 5000
"""Refused by distroguard alone (no registry is asked): a cheap, certain denial."""
UNREACHABLE_IMAGE = "127.0.0.1:9/hostile/app:1"
"""On 127.0.0.1's discard port, where nothing listens: its lookup fails and the review is allowed (no policy
covers the namespaces used here)."""
ANSWER_GUARD_SECONDS = 10.0
"""A hang guard, not a timing assertion: a valid review unanswered this long means the server is stuck."""
CLOSE_GUARD_SECONDS = 3 * READ_TIMEOUT_SECONDS + 30
"""How long a stalled connection may stay open before the test calls it a hang: header and body bounds,
aiohttp's lingering read of an unread body (10 s), with room to spare on a loaded machine."""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Served:
    endpoint: WebhookEndpoint
    process: OperatorProcess
    namespace: str
    """Exists, has no policy: a valid review in it is answered without any registry's help."""
    image: str
    """An image on 127.0.0.1 where nothing listens: its lookup fails at once and nothing leaves the host."""

    def pod_review(self, uid: str, *images: str) -> dict[str, Any]:
        pod = workload("Pod", pod_spec(*(container(f"c{i}", image) for i, image in enumerate(images))))
        pod["metadata"]["namespace"] = self.namespace
        return review(pod, uid=uid, namespace=self.namespace)

    def memory_kb(self, field: str = "VmRSS") -> int | None:
        """The server process's resident memory (`VmRSS`) or its peak so far (`VmHWM`), when readable."""
        assert self.process.popen is not None
        try:
            status = Path(f"/proc/{self.process.popen.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        return None

    def peak_rss_kb(self) -> int | None:
        return self.memory_kb("VmHWM")

    @contextlib.contextmanager
    def rss_sampled(self, every: float = 0.005) -> Iterator[list[int]]:
        """The server's RSS in kB, sampled in a thread while the block runs (the process's own peak,
        VmHWM, may date from an earlier test)."""
        samples: list[int] = []
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                if (value := self.memory_kb()) is not None:
                    samples.append(value)
                time.sleep(every)

        thread = threading.Thread(target=sample, daemon=True)
        thread.start()
        try:
            yield samples
        finally:
            done.set()
            thread.join()


@pytest.fixture(scope="module")
def served(kube: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    scratch = Scratch(kube)
    own = scratch.namespace("distroguard")
    log = tmp_path_factory.mktemp("distroguard") / "run.log"
    process = OperatorProcess(kube, unique("distroguard-hostile"), own, log, ["--metrics-port", "0"])
    try:
        process.start()
        process.wait_registered()
        configuration = kube.kubectl_json("get", "validatingwebhookconfiguration", process.webhook_name)
        ns = scratch.namespace("hostile")
        yield Served(
            WebhookEndpoint.from_configuration(configuration), process, ns, f"127.0.0.1:{free_port()}/app:1"
        )
    finally:
        code = process.stop()
        print(process.log_text()[-4000:])
        scratch.close()
    assert code == 0, "distroguard run did not stop cleanly on SIGTERM"


def post_json(served: Served, webhook: str, document: Any, timeout: float = ANSWER_GUARD_SECONDS) -> Reply:
    return served.endpoint.post(webhook, json.dumps(document).encode(), timeout=timeout)


def assert_serving(served: Served) -> None:
    """A valid review is answered, correctly: a certain denial (an image name too long to be one) and an
    admission (an image whose lookup fails, in a namespace no policy covers)."""
    uid = str(uuid.uuid4())
    started = time.monotonic()
    denied = well_formed(post_json(served, "pods", served.pod_review(uid, TOO_LONG_IMAGE)))
    assert denied is not None
    assert denied["uid"] == uid, denied
    assert denied["allowed"] is False
    assert "longer than 4096 characters" in denied["status"]["message"]
    print(f"  valid review answered in {time.monotonic() - started:.3f} s")
    uid = str(uuid.uuid4())
    allowed = well_formed(post_json(served, "pods", served.pod_review(uid, served.image), timeout=30))
    assert allowed is not None
    assert allowed["uid"] == uid, allowed
    assert allowed["allowed"] is True, allowed
    assert served.process.alive()


# --------------------------------------------------------------------------------------- the corpus

UID = "0c6e6f1e-hostile-uid"


def _valid(**request: Any) -> dict[str, Any]:
    document = review(
        workload("Pod", pod_spec(container("app", TOO_LONG_IMAGE))), uid=UID, namespace="default"
    )
    document["request"].update(request)
    return document


def _without(path: str) -> dict[str, Any]:
    document = _valid()
    *parents, last = path.split(".")
    node = document
    for key in parents:
        node = node[key]
    del node[last]
    return document


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _with_raw(field: str, raw: bytes) -> bytes:
    """A valid review with `"<field>": <raw>` added to its request, `raw` given as bytes."""
    text = json.dumps(_valid()).encode()
    return text.replace(b'"request": {', b'"request": {"' + field.encode() + b'": ' + raw + b", ", 1)


def _configmap_review() -> dict[str, Any]:
    return review(workload("ConfigMap", {}), uid=UID)


# (id, webhook path, body, Content-Type, what the refusal must say, the uid it must echo)
CORPUS: list[tuple[str, str, bytes, str | None, str, str]] = [
    (
        "invalid-json",
        "pods",
        b'{"apiVersion": "admission.k8s.io/v1", "kind": ',
        "application/json",
        "not valid JSON",
        "",
    ),
    ("truncated", "pods", json.dumps(_valid()).encode()[:-7], "application/json", "not valid JSON", ""),
    ("array", "pods", b"[1, 2, 3]", "application/json", "expected a JSON object, got an array", ""),
    ("string", "pods", b'"AdmissionReview"', "application/json", "expected a JSON object, got a string", ""),
    ("null", "pods", b"null", "application/json", "expected a JSON object, got null", ""),
    ("number", "pods", b"42", "application/json", "expected a JSON object, got a number", ""),
    (
        "review-encoded-twice",  # a JSON string holding a review is a string, not a review
        "pods",
        json.dumps(json.dumps(_valid())).encode(),
        "application/json",
        "expected a JSON object, got a string",
        "",
    ),
    (
        "wrong-api-version",
        "pods",
        json.dumps({**_valid(), "apiVersion": "admission.k8s.io/v1beta1"}).encode(),
        "application/json",
        "expected apiVersion admission.k8s.io/v1",
        UID,
    ),
    (
        "wrong-kind",
        "pods",
        json.dumps({**_valid(), "kind": "Pod"}).encode(),
        "application/json",
        "kind AdmissionReview",
        UID,
    ),
    (
        "no-request",
        "pods",
        json.dumps(_without("request")).encode(),
        "application/json",
        "'request' is missing",
        "",
    ),
    (
        "request-not-object",
        "pods",
        json.dumps({**_valid(), "request": [UID]}).encode(),
        "application/json",
        "'request' is missing or not an object",
        "",
    ),
    (
        "no-uid",
        "pods",
        json.dumps(_without("request.uid")).encode(),
        "application/json",
        "'request.uid' is missing",
        "",
    ),
    (
        "empty-uid",
        "pods",
        json.dumps(_valid(uid="")).encode(),
        "application/json",
        "'request.uid' is missing or empty",
        "",
    ),
    (
        "no-object",
        "pods",
        json.dumps(_without("request.object")).encode(),
        "application/json",
        "'request.object' is missing",
        UID,
    ),
    (
        "object-not-object",
        "pods",
        json.dumps(_valid(object="a pod")).encode(),
        "application/json",
        "'request.object' must be an object, got a string",
        UID,
    ),
    (
        "no-operation",
        "pods",
        json.dumps(_without("request.operation")).encode(),
        "application/json",
        "'request.operation'",
        UID,
    ),
    (
        "bad-operation",
        "pods",
        json.dumps(_valid(operation="EXPLODE")).encode(),
        "application/json",
        "'request.operation' is 'EXPLODE'",
        UID,
    ),
    (
        "resource-group-mismatch",  # kind Pod, resource batch/pods: kopf found no handler, a 500 of ours
        "pods",
        json.dumps(_valid(resource={"group": "batch", "version": "v1", "resource": "pods"})).encode(),
        "application/json",
        "does not check pods at the path /pods",
        UID,
    ),
    (
        "no-user-info",  # kopf refuses it: an error of ours (500) before, the client's now (400)
        "pods",
        json.dumps(_without("request.userInfo")).encode(),
        "application/json",
        "user info is missing",
        UID,
    ),
    (
        "sub-resource-a-list",  # was taken for absent here, while kopf found no handler for it: a 500
        "pods",
        json.dumps(_valid(subResource=[])).encode(),
        "application/json",
        "'request.subResource' must be a string, got an array",
        UID,
    ),
    (
        "namespace-a-number",
        "pods",
        json.dumps(_valid(namespace=7)).encode(),
        "application/json",
        "'request.namespace' must be a string, got a number",
        UID,
    ),
    (
        "user-info-a-string",
        "pods",
        json.dumps(_valid(userInfo="admin")).encode(),
        "application/json",
        "user info is missing",
        UID,
    ),
    (
        "no-resource-version",  # kopf needs it to find the handler (a KeyError, a 500, before)
        "pods",
        json.dumps(_valid(resource={"group": "", "resource": "pods"})).encode(),
        "application/json",
        "longer than 4096 characters",
        UID,
    ),
    (
        "operation-a-list",  # was a TypeError (unhashable) and a 500 page
        "pods",
        json.dumps(_valid(operation=[])).encode(),
        "application/json",
        "'request.operation' is []",
        UID,
    ),
    (
        "operation-an-object",
        "pods",
        json.dumps(_valid(operation={"CREATE": True})).encode(),
        "application/json",
        "'request.operation' is {'CREATE': True}",
        UID,
    ),
    (
        "no-resource",
        "pods",
        json.dumps(_without("request.resource")).encode(),
        "application/json",
        "'request.resource.resource' is missing",
        UID,
    ),
    (
        "no-request-kind",
        "pods",
        json.dumps(_without("request.kind")).encode(),
        "application/json",
        "'request.kind'",
        UID,
    ),
    (
        "object-of-unexpected-kind",
        "pods",
        json.dumps(
            _valid(object={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {}})
        ).encode(),
        "application/json",
        "cannot check this object",
        UID,
    ),
    (
        "configmap-on-pods-path",
        "pods",
        json.dumps(_configmap_review()).encode(),
        "application/json",
        "does not check configmaps at the path /pods",
        UID,
    ),
    (
        "pod-on-deployments-path",
        "deployments",
        json.dumps(_valid()).encode(),
        "application/json",
        "does not check pods at the path /deployments",
        UID,
    ),
    (
        "unknown-path",
        "configmaps",
        json.dumps(_valid()).encode(),
        "application/json",
        "does not check pods at the path /configmaps",
        UID,
    ),
    (
        "sub-path",
        "pods/extra",
        json.dumps(_valid()).encode(),
        "application/json",
        "at the path /pods/extra",
        UID,
    ),
    ("root-path", "", json.dumps(_valid()).encode(), "application/json", "at the path /", UID),
    ("huge-integer", "pods", _with_raw("huge", b"9" * 100_000), "application/json", "not valid JSON", ""),
    (
        "uid-a-huge-number",
        "pods",
        json.dumps(_valid()).encode().replace(f'"{UID}"'.encode(), b"1e999999"),
        "application/json",
        "'request.uid' is missing or empty",
        "",
    ),
    ("deep-nesting", "pods", _nested(100_000), "application/json", "not valid JSON", ""),
    (
        "deep-nesting-inside",
        "pods",
        _with_raw("options", _nested(100_000)),
        "application/json",
        "not valid JSON",
        "",
    ),
    ("invalid-utf8", "pods", b'{"apiVersion": "\xff\xfe\xfd"}', "application/json", "not valid UTF-8", ""),
    (
        "invalid-utf8-inside",
        "pods",
        json.dumps(_valid()).encode().replace(b'"app"', b'"\xc3\x28"'),
        "application/json",
        "not valid UTF-8",
        "",
    ),
    ("empty-body", "pods", b"", "application/json", "the body is empty", ""),
    (
        "wrong-content-type",
        "pods",
        b"name=value&other=1",
        "application/x-www-form-urlencoded",
        "not valid JSON",
        "",
    ),
    ("no-content-type", "pods", b"<AdmissionReview/>", None, "not valid JSON", ""),
]


@pytest.mark.parametrize(
    ("webhook", "body", "content_type", "naming", "uid"),
    [pytest.param(*case[1:], id=case[0]) for case in CORPUS],
)
def test_a_malformed_review_is_refused_saying_what_is_wrong(
    served: Served, webhook: str, body: bytes, content_type: str | None, naming: str, uid: str
) -> None:
    reply = served.endpoint.post(webhook, body, content_type=content_type, timeout=ANSWER_GUARD_SECONDS)
    refused(reply, naming=naming, uid=uid)


@pytest.mark.parametrize(
    ("content_type", "document"),
    [
        ("text/plain", lambda s: s.pod_review(UID, TOO_LONG_IMAGE)),
        (None, lambda s: s.pod_review(UID, TOO_LONG_IMAGE)),
        (
            "application/json",
            lambda s: {**s.pod_review(UID, TOO_LONG_IMAGE), "extra": [1e308, -1e308, 1e999]},
        ),
    ],
    ids=["text-plain", "no-content-type", "huge-floats-beside"],
)
def test_a_valid_review_with_odd_trimmings_is_answered_as_any_other(
    served: Served, content_type: str | None, document: Callable[[Served], dict[str, Any]]
) -> None:
    body = json.dumps(document(served)).encode()
    answer = well_formed(served.endpoint.post("pods", body, content_type=content_type))
    assert answer is not None
    assert answer["uid"] == UID
    assert answer["allowed"] is False
    assert "longer than 4096 characters" in answer["status"]["message"]


@pytest.mark.parametrize("depth", [200, 900])
def test_deep_but_parseable_nesting_beside_a_review_is_answered(served: Served, depth: int) -> None:
    """Nesting Python's parser accepts must not blow the stack further on (kopf sees the review too)."""
    body = _with_raw("options", _nested(depth))
    answer = well_formed(served.endpoint.post("pods", body, timeout=ANSWER_GUARD_SECONDS))
    assert answer is not None
    assert answer["uid"] == UID, answer
    assert answer["allowed"] is False


@pytest.mark.parametrize(
    ("pieces", "naming"),
    [
        pytest.param(
            lambda p: [chunked_head("POST", p) + b'5\r\n{"a":\r\nzz\r\n'], "chunk size", id="bad-chunk-size"
        ),
        pytest.param(
            lambda p: [
                request_bytes("POST", p, b"this is not gzip", extra_headers=[("Content-Encoding", "gzip")])
            ],
            "could not be read",
            id="not-gzip",
        ),
        pytest.param(
            lambda p: [
                request_bytes("POST", p, b"not zstd either", extra_headers=[("Content-Encoding", "zstd")])
            ],
            "could not be read",
            id="not-zstd",
        ),
        pytest.param(
            lambda p: [request_bytes("POST", p, b"{}", extra_headers=[("Content-Encoding", "x-unknown")])],
            "expected apiVersion",
            id="unknown-encoding-passed-through",
        ),
        pytest.param(
            lambda p: [request_bytes("POST", p, b"{}", content_length=-1)],
            "content-length",
            id="negative-length",
        ),
        pytest.param(
            lambda p: [
                b"POST " + p.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            ],
            "can't be present with Content-Length",
            id="length-and-chunked",
        ),
        pytest.param(
            lambda p: [b"POST " + p.encode() + b" HTTP/1.1\r\nHost: x\r\nBroken header line\r\n\r\n"],
            "invalid header",
            id="bad-header",
        ),
        pytest.param(
            lambda p: [b"GET " + p.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n"], "method not allowed", id="get"
        ),
        # Inside the TLS connection, bytes that begin like a TLS record: aiohttp names them.
        pytest.param(
            lambda p: [b"\x16\x03\x01garbage that is not HTTP\r\n\r\n"], "HTTPS traffic", id="not-http"
        ),
    ],
)
def test_a_broken_http_request_is_refused_not_a_server_error(
    served: Served, pieces: Callable[[str], list[bytes]], naming: str
) -> None:
    reply = served.endpoint.exchange(pieces(served.endpoint.path("pods")), timeout=ANSWER_GUARD_SECONDS)
    refused(reply, naming=naming)


def test_a_chunk_framing_error_after_the_headers_is_answered_within_the_read_timeout(served: Served) -> None:
    """Headers first, a broken chunk later: aiohttp queues its 400 behind the request in progress and never
    fails that request's body, so only distroguard's read timeout ends the wait (without it: for ever)."""
    head = chunked_head("POST", served.endpoint.path("pods"))
    started = time.monotonic()
    reply = served.endpoint.exchange(
        [head, b'5\r\n{"a":\r\nzz\r\n'], timeout=READ_TIMEOUT_SECONDS + 30, pause=0.5
    )
    refused(reply, naming=f"did not arrive within {READ_TIMEOUT_SECONDS:g} s")
    print(f"  chunk framing error after the headers: refused after {time.monotonic() - started:.1f} s")


# ------------------------------------------------------------------------------------ property-based

_JSON_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
_UNSAFE_KEYS = {
    "containers",
    "initContainers",
    "ephemeralContainers",
    "template",
    "jobTemplate",
    "spec",
    "image",
}
"""Never generated as keys: every image the server sees comes from the base review (nothing on 127.0.0.1
is listening for it), never from a random string naming a registry elsewhere."""
_KEYS = st.text(max_size=12).filter(lambda k: k not in _UNSAFE_KEYS)
_JSON = st.recursive(
    _JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS, inner, max_size=4),
    max_leaves=12,
)
_FIELDS = ["apiVersion", "kind", "request"]
_REQUEST_FIELDS = [
    "uid",
    "kind",
    "resource",
    "subResource",
    "operation",
    "namespace",
    "name",
    "userInfo",
    "object",
    "oldObject",
    "dryRun",
    "options",
    "requestKind",
    "requestResource",
]
_REPLACEMENTS = {
    "apiVersion": st.sampled_from(["admission.k8s.io/v1", "admission.k8s.io/v1beta1", "v1", ""]) | _JSON,
    "kind": st.sampled_from(["AdmissionReview", "AdmissionResponse", "Pod", ""]) | _JSON,
    "uid": st.text(max_size=40) | _JSON,
    "operation": st.sampled_from(["CREATE", "UPDATE", "DELETE", "CONNECT", "create", ""]) | _JSON,
    "resource": st.fixed_dictionaries(
        {
            "group": st.sampled_from(["", "apps", "batch"]),
            "version": st.just("v1"),
            "resource": st.sampled_from(["pods", "deployments", "jobs", "configmaps", ""]),
        }
    )
    | _JSON,
    "kind.kind": st.sampled_from(["Pod", "Deployment", "ConfigMap", ""]) | _JSON,
    "subResource": st.sampled_from(["status", "ephemeralcontainers", "scale", ""]) | _JSON,
    "namespace": st.sampled_from(["default", "kube-system", ""]) | _JSON,
}


@st.composite
def mutated_reviews(draw: st.DrawFn) -> tuple[str, bytes]:
    """(webhook path, body): a valid Pod review, then a few random edits; sometimes cut short or spoiled."""
    image = draw(st.sampled_from([TOO_LONG_IMAGE, UNREACHABLE_IMAGE]))
    document: dict[str, Any] = review(
        workload("Pod", pod_spec(container("app", image))),
        uid=draw(st.text(min_size=1, max_size=40)),
        namespace="default",
        operation=draw(st.sampled_from(["CREATE", "UPDATE"])),
        old=workload("Pod", pod_spec(container("app", image))),
    )
    for _ in range(draw(st.integers(0, 4))):
        request = document.get("request")
        edit = draw(st.sampled_from(["top", "request", "replace-known", "drop"]))
        if edit == "top":
            document[draw(st.sampled_from(_FIELDS))] = draw(_JSON)
        elif edit == "drop":
            document.pop(draw(st.sampled_from(_FIELDS)), None)
        elif isinstance(request, dict) and edit == "request":
            key = draw(st.sampled_from(_REQUEST_FIELDS))
            if draw(st.booleans()):
                request.pop(key, None)
            else:
                request[key] = draw(_JSON)
        elif isinstance(request, dict):
            key = draw(st.sampled_from(sorted(_REPLACEMENTS)))
            value = draw(_REPLACEMENTS[key])
            if key == "kind.kind" and isinstance(request.get("kind"), dict):
                request["kind"]["kind"] = value
            elif key != "kind.kind":
                request[key] = value
    body = json.dumps(document).encode()
    spoil = draw(st.sampled_from(["none"] * 6 + ["truncate", "bytes", "flip"]))
    if spoil == "truncate":
        body = body[: draw(st.integers(0, len(body)))]
    elif spoil == "bytes":
        body = draw(st.binary(max_size=200))
    elif spoil == "flip":
        at = draw(st.integers(0, len(body) - 1))
        body = body[:at] + bytes([draw(st.integers(0, 255))]) + body[at + 1 :]
    path = draw(st.sampled_from(["pods", "pods", "pods", "deployments", "ephemeralcontainers", "nope", ""]))
    return path, body


def _readable_uid(body: bytes) -> str | None:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        return None
    request = document.get("request") if isinstance(document, dict) else None
    uid = request.get("uid") if isinstance(request, dict) else None
    return uid if isinstance(uid, str) and uid else None


def _decodable(body: bytes) -> bool:
    from distroguard.admission import decode_review

    try:
        decode_review(body)
    except InvalidReview:
        return False
    return True


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=mutated_reviews())
def test_any_mutated_review_gets_a_well_formed_answer_with_its_uid(
    served: Served, case: tuple[str, bytes]
) -> None:
    path, body = case
    reply = served.endpoint.post(path, body, timeout=ANSWER_GUARD_SECONDS)
    answer = well_formed(reply)
    if answer is None:  # an HTTP 4xx: only for what is not HTTP-valid, which these bodies all are
        pytest.fail(f"HTTP {reply.status} for a well-framed request: {reply.text()[:300]}")
    event("allowed" if answer["allowed"] else f"refused with code {answer['status']['code']}")
    assert answer["allowed"] or answer["status"]["code"] != 500, f"an error of ours: {answer}"
    uid = _readable_uid(body)
    assert answer["uid"] == (uid or ""), (answer, body[:300])
    if answer["allowed"]:
        assert _decodable(body), f"allowed a review that does not decode: {body[:300]!r}"


# ----------------------------------------------------------------------------------- size and count


def test_a_body_over_the_limit_is_refused_from_its_content_length_before_it_is_read(served: Served) -> None:
    """Content-Length says the body is over the limit; only a few bytes of invalid JSON follow. The answer
    names the limit (not the JSON): it came from the header alone, without waiting for the body."""
    head = request_bytes(
        "POST", served.endpoint.path("pods"), b"{not json", content_length=MAX_BODY_BYTES + 1
    )
    started = time.monotonic()
    reply = served.endpoint.exchange([head], timeout=ANSWER_GUARD_SECONDS)
    said = refused(reply, naming=f"larger than {MAX_BODY_BYTES} bytes")
    assert "json" not in said.lower()
    print(f"  over-limit Content-Length refused in {time.monotonic() - started:.3f} s")


def test_a_chunked_body_over_the_limit_is_refused(served: Served) -> None:
    megabyte = b"x" * (1024 * 1024)
    pieces = [chunked_head("POST", served.endpoint.path("pods")), chunk(b'{"pad": "')]
    pieces += [chunk(megabyte)] * (MAX_BODY_BYTES // len(megabyte) + 2)
    pieces += [chunk(b'"}'), b"0\r\n\r\n"]
    reply = served.endpoint.exchange(pieces, timeout=30)
    refused(reply, naming=f"larger than {MAX_BODY_BYTES} bytes")


def _gzip_of_zeros(mebibytes: int) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # wbits 31: the gzip format
    zeros = b"\0" * (1024 * 1024)
    return b"".join([*(compressor.compress(zeros) for _ in range(mebibytes)), compressor.flush()])


BOMB_RSS_GROWTH_KB = 128 * 1024
"""How much the server's peak RSS may grow while refusing the 256 MiB bomb: generous beside the body limit,
half of what the inflated bomb would take."""


def test_a_gzip_bomb_body_is_refused_at_the_limit(served: Served) -> None:
    """256 MiB of zeros in 255 KB of gzip, sent as the body (aiohttp inflates a request body it is told is
    compressed): refused once the inflated body passes the limit."""
    bomb = _gzip_of_zeros(256)
    head = request_bytes(
        "POST",
        served.endpoint.path("pods"),
        b"",
        content_length=len(bomb),
        extra_headers=[("Content-Encoding", "gzip")],
    )
    before = served.memory_kb()
    assert before is not None, "the server's memory cannot be read"
    with served.rss_sampled() as samples:
        reply = served.endpoint.exchange([head, bomb], timeout=30)
    refused(reply, naming=f"larger than {MAX_BODY_BYTES} bytes")
    assert samples, "the server's memory was never sampled"
    print(
        f"  gzip bomb ({len(bomb)} bytes -> 256 MiB): "
        f"server RSS {before} kB before, at most {max(samples)} kB while refusing it"
    )
    # Inflating the bomb whole would add 256 MiB; reading stops at the body limit, a few MiB.
    assert max(samples) - before < BOMB_RSS_GROWTH_KB, (before, max(samples))
    assert_serving(served)


def test_a_pod_with_ten_thousand_containers_is_answered_and_the_server_keeps_serving(served: Served) -> None:
    images = [f"{served.image}-{i % 100}" for i in range(10_000)]
    document = served.pod_review(UID, *images)
    body = json.dumps(document).encode()
    started = time.monotonic()
    answer = well_formed(served.endpoint.post("pods", body, timeout=30))
    elapsed = time.monotonic() - started
    assert answer is not None
    assert answer["uid"] == UID
    assert answer["allowed"] is False, answer
    assert f"at most {MAX_CONTAINERS}" in answer["status"]["message"]
    print(f"  10,000 containers ({len(body)} bytes) answered in {elapsed:.3f} s")
    assert_serving(served)


# --------------------------------------------------------------------------------- slow and stalled


def _slow_clients(served: Served, count: int) -> list[ssl.SSLSocket]:
    """`count` connections that stop part-way: some after a few header bytes, some after all the headers
    with a body that never comes, some after a body cut short of its Content-Length."""
    path = served.endpoint.path("pods")
    full = request_bytes("POST", path, json.dumps(served.pod_review(UID, TOO_LONG_IMAGE)).encode())
    partial = [
        full[:7],  # "POST /p"
        full[: full.index(b"\r\n\r\n")],  # all headers but the blank line
        full[: full.index(b"\r\n\r\n") + 4],  # headers; no body at all
        full[:-20],  # the body cut short
    ]
    sockets = []
    for i in range(count):
        sock = served.endpoint.connect(timeout=CLOSE_GUARD_SECONDS)
        sock.sendall(partial[i % len(partial)])
        sockets.append(sock)
    return sockets


def _trickle(sockets: list[ssl.SSLSocket], stop: threading.Event) -> None:
    """Keep the header-phase clients alive the slowloris way: one more header byte now and then."""
    while not stop.wait(0.5):
        for sock in sockets[::4]:
            with contextlib.suppress(OSError):
                sock.sendall(b"X")


def _closed_after(sock: socket.socket, started: float) -> tuple[float, bytes]:
    """Wait until the server closes `sock` (reading whatever it answers first): (seconds, what it sent)."""
    received = b""
    while True:
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
            break
        except TimeoutError:
            pytest.fail(f"a stalled connection was still open after {CLOSE_GUARD_SECONDS:.0f} s")
        if not data:
            break
        received += data
    return time.monotonic() - started, received


def test_slow_and_stalled_clients_neither_block_valid_reviews_nor_stay_connected(served: Served) -> None:
    started = time.monotonic()
    sockets = _slow_clients(served, 50)
    idle = [
        socket.create_connection((served.endpoint.host, served.endpoint.port), timeout=CLOSE_GUARD_SECONDS)
        for _ in range(5)
    ]
    stop = threading.Event()
    trickler = threading.Thread(target=_trickle, args=(sockets, stop), daemon=True)
    trickler.start()
    try:
        time.sleep(1.0)
        for _ in range(5):
            assert_serving(served)  # answered while 50 clients hang (and 5 never even start TLS)
        stop.set()
        trickler.join()
        closed = [_closed_after(sock, started) for sock in sockets]
        never_tls = [_closed_after(raw, started)[0] for raw in idle]
    finally:
        stop.set()
        for sock in sockets:
            sock.close()
        for raw in idle:
            raw.close()
    worst = max(seconds for seconds, _ in closed)
    bodies = [data for _, data in closed if data]
    print(
        f"  50 slow clients all closed by the server, the last after {worst:.1f} s; "
        f"{len(bodies)} were answered first"
    )
    print(f"  5 clients that never began TLS closed after at most {max(never_tls):.1f} s")
    for data in bodies:  # whatever a stalled client was told is a refusal, never an admission
        assert b'"allowed": true' not in data
        assert not data.startswith((b"HTTP/1.1 5", b"HTTP/1.0 5"))
    assert served.process.alive()
    assert_serving(served)


# ------------------------------------------------------------------------------------------- TLS


def _handshake(served: Served, context: ssl.SSLContext, port: int | None = None) -> str | None:
    """The TLS version agreed, or None when the handshake is refused."""
    with socket.create_connection((served.endpoint.host, port or served.endpoint.port), timeout=10) as raw:
        try:
            with context.wrap_socket(raw, server_hostname=served.endpoint.host) as tls:
                return tls.version()
        except (ssl.SSLError, ConnectionResetError):
            return None


#: How a refused handshake ends for the client: the TLS alert `protocol_version` (70), or, because asyncio's
#: TLS layer closes a connection whose handshake failed without sending the alert OpenSSL queued, an EOF
#: in the middle of the handshake. Never a plain reset, never another alert.
HANDSHAKE_REFUSED = {"TLSV1_ALERT_PROTOCOL_VERSION", "UNEXPECTED_EOF_WHILE_READING"}


def _refusal(served: Served, context: ssl.SSLContext) -> ssl.SSLError:
    """The error of a handshake the server refuses (an AssertionError if it completes or just resets)."""
    address = (served.endpoint.host, served.endpoint.port)
    with socket.create_connection(address, timeout=10) as raw, pytest.raises(ssl.SSLError) as caught:
        context.wrap_socket(raw, server_hostname=served.endpoint.host)
    return caught.value


def _legacy_client(
    served: Served, version: ssl.TLSVersion, maximum: ssl.TLSVersion | None = None
) -> ssl.SSLContext:
    """A client that offers `version` (up to `maximum`, by default only `version`), OpenSSL's security
    level lowered so that it may."""
    with warnings.catch_warnings():  # Python deprecates asking for TLS 1.0 and 1.1: that is the point
        warnings.simplefilter("ignore", DeprecationWarning)
        context = served.endpoint.context(minimum=version, maximum=maximum or version)
    context.set_ciphers("ALL:@SECLEVEL=0")
    return context


@pytest.fixture(scope="module")
def legacy_tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    """A control: a plain Python TLS server on 127.0.0.1 that does accept TLS 1.0 and 1.1, so that a refusal
    by distroguard is not merely our client failing to speak the old versions."""
    from support.tls import make_pki

    pki = make_pki(tmp_path_factory.mktemp("legacy-tls"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = ssl.TLSVersion.TLSv1
    context.set_ciphers("ALL:@SECLEVEL=0")
    context.load_cert_chain(str(pki.cert_pem), str(pki.key_pem))
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    done = threading.Event()

    def accept() -> None:
        while not done.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.settimeout(5)
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (ssl.SSLError, OSError):
                conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], pki.ca_pem
    finally:
        done.set()
        thread.join()
        listener.close()


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1], ids=["tls1.0", "tls1.1"])
def test_tls_1_0_and_1_1_are_refused(
    served: Served, legacy_tls_server: tuple[int, Path], version: ssl.TLSVersion
) -> None:
    port, ca = legacy_tls_server
    control = _legacy_client(served, version)
    control.load_verify_locations(cafile=str(ca))
    assert _handshake(served, control, port) is not None, f"the test's client cannot speak {version.name}"
    refusal = _refusal(served, _legacy_client(served, version))
    assert refusal.reason in HANDSHAKE_REFUSED, refusal
    # The same client (ciphers, trust, name), allowed TLS 1.2 as well, is served: the version it offered,
    # and nothing else about it, is what was refused.
    wider = _legacy_client(served, version, maximum=ssl.TLSVersion.TLSv1_2)
    assert _handshake(served, wider) == "TLSv1.2"


@pytest.mark.parametrize(
    ("version", "name"),
    [(ssl.TLSVersion.TLSv1_2, "TLSv1.2"), (ssl.TLSVersion.TLSv1_3, "TLSv1.3")],
    ids=["tls1.2", "tls1.3"],
)
def test_tls_1_2_and_1_3_are_accepted(served: Served, version: ssl.TLSVersion, name: str) -> None:
    context = served.endpoint.context(minimum=version, maximum=version)
    assert _handshake(served, context) == name
    with served.endpoint.connect(context=context) as sock:
        sock.sendall(request_bytes("POST", served.endpoint.path("pods"), b"[]"))
        refused(read_reply(sock), naming="expected a JSON object")


# ---------------------------------------------------------------------------------- the file system


@pytest.mark.parametrize(
    "path",
    [
        "/../../etc/passwd",
        "/pods/../../../etc/passwd",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/..%2f..%2f..%2fetc%2fpasswd",
        "//etc/passwd",
        "/etc/passwd",
        "/proc/self/environ",
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_no_client_path_reaches_the_file_system(served: Served, path: str, method: str) -> None:
    body = json.dumps(_valid()).encode() if method == "POST" else b""
    reply = served.endpoint.exchange([request_bytes(method, path, body)], timeout=ANSWER_GUARD_SECONDS)
    assert b"root:" not in reply.body, reply.body[:300]
    assert b"PATH=" not in reply.body, reply.body[:300]
    answer = well_formed(reply)
    if answer is None:
        assert reply.status in (400, 404, 405), reply
    else:
        assert answer["allowed"] is False
        assert "does not check" in answer["status"]["message"]


# ------------------------------------------------------------------------------------------- last


def test_zz_after_all_of_it_the_server_still_answers_correctly(served: Served) -> None:
    assert_serving(served)
    print(f"  server peak RSS over the whole module: {served.peak_rss_kb()} kB")
