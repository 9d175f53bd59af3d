"""ObjectWriter: a compact body through the client's own pool, with its credentials and its errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import kubernetes
import orjson
import pytest

from distroguard.operator.audit.objectwriter import ObjectWriter, Resource


@dataclass
class Answer:
    status: int
    data: bytes
    reason: str = ""
    headers: dict[str, str] = field(default_factory=dict)


class Pool:
    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.sent: list[tuple[str, str, bytes, dict[str, str]]] = []

    def request(self, method: str, url: str, *, body: bytes, headers: dict[str, str], **_: Any) -> Answer:
        self.sent.append((method, url, body, headers))
        return self.answer


def writer_with(answer: Answer, token: str | None = None) -> tuple[ObjectWriter, Pool]:
    configuration = kubernetes.client.Configuration()
    configuration.host = "https://api.example:6443"
    if token is not None:
        configuration.api_key = {"authorization": token}
        configuration.api_key_prefix = {"authorization": "Bearer"}
    api = kubernetes.client.ApiClient(configuration)
    pool = Pool(answer)
    api.rest_client.pool_manager = pool
    return ObjectWriter(api), pool


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
