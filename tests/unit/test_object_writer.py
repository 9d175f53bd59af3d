"""ObjectWriter: a compact body through the client's own pool, with its credentials and its errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import kubernetes
import orjson
import pytest

from distroguard.operator.audit.objectwriter import MAX_RETRY_AFTER, RETRIES, ObjectWriter, Resource


@dataclass
class Answer:
    status: int
    data: bytes
    reason: str = ""
    headers: dict[str, str] = field(default_factory=dict)


class Pool:
    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.sent: list[tuple[str, str, bytes, dict[str, str]]] = []

    def request(self, method: str, url: str, *, body: bytes, headers: dict[str, str], **_: Any) -> Answer:
        self.sent.append((method, url, body, headers))
        return self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]


def writer_with(
    *answers: Answer, token: str | None = None, slept: list[float] | None = None
) -> tuple[ObjectWriter, Pool]:
    configuration = kubernetes.client.Configuration()
    configuration.host = "https://api.example:6443"
    if token is not None:
        configuration.api_key = {"authorization": token}
        configuration.api_key_prefix = {"authorization": "Bearer"}
    api = kubernetes.client.ApiClient(configuration)
    pool = Pool(*answers)
    api.rest_client.pool_manager = pool
    return ObjectWriter(api, sleep=(slept if slept is not None else []).append), pool


def test_a_create_posts_the_compact_body_to_the_collection_with_the_token() -> None:
    writer, pool = writer_with(Answer(201, b'{"metadata":{"resourceVersion":"7"}}'), token="secret-token")
    body = {"metadata": {"name": "r", "namespace": "shop"}, "results": [{"message": "é"}]}
    answer = writer.create(Resource("wgpolicyk8s.io", "v1alpha2", "policyreports", "shop"), body)
    assert orjson.loads(answer)["metadata"]["resourceVersion"] == "7"
    [(method, url, sent, headers)] = pool.sent
    assert (method, url) == (
        "POST",
        "https://api.example:6443/apis/wgpolicyk8s.io/v1alpha2/namespaces/shop/policyreports",
    )
    assert sent == orjson.dumps(body)
    assert b" " not in sent
    assert headers["authorization"] == "Bearer secret-token"
    assert headers["Content-Type"] == "application/json"


def test_a_replace_puts_to_the_object_of_a_cluster_scoped_kind() -> None:
    writer, pool = writer_with(Answer(200, b"{}"))
    writer.replace(Resource("distroguard.dev", "v1alpha1", "imagefacts"), "sha256-ab", {"spec": {}})
    [(method, url, _, headers)] = pool.sent
    assert (method, url) == (
        "PUT",
        "https://api.example:6443/apis/distroguard.dev/v1alpha1/imagefacts/sha256-ab",
    )
    assert "authorization" not in headers


@pytest.mark.parametrize("status", [404, 409, 500])
def test_a_refusal_is_the_clients_api_exception_with_its_status(status: int) -> None:
    writer, _ = writer_with(Answer(status, b'{"kind":"Status"}', reason="no"))
    with pytest.raises(kubernetes.client.ApiException) as raised:
        writer.create(Resource("distroguard.dev", "v1alpha1", "imagefacts"), {})
    assert raised.value.status == status


def test_a_write_queued_out_is_sent_again_after_the_servers_retry_after() -> None:
    slept: list[float] = []
    busy = Answer(429, b"{}", headers={"Retry-After": "3"})
    writer, pool = writer_with(busy, Answer(429, b"{}"), Answer(201, b"{}"), slept=slept)
    writer.create(Resource("distroguard.dev", "v1alpha1", "imagefacts"), {"spec": {"a": 1}})
    assert slept == [3.0, 1.0]
    assert len(pool.sent) == 3
    assert len({sent for _, _, sent, _ in pool.sent}) == 1  # the same body each time


def test_a_write_queued_out_every_time_fails_with_429() -> None:
    slept: list[float] = []
    writer, pool = writer_with(Answer(429, b"{}", headers={"Retry-After": "600"}), slept=slept)
    with pytest.raises(kubernetes.client.ApiException) as raised:
        writer.create(Resource("distroguard.dev", "v1alpha1", "imagefacts"), {})
    assert raised.value.status == 429
    assert slept == [MAX_RETRY_AFTER] * RETRIES
    assert len(pool.sent) == RETRIES + 1
