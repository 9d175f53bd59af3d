"""`operator.webhook.controllers`: the images of a pod controller's template, read in a worker thread through
the `kubernetes` client (its read calls stood in for here), cached by (namespace, kind, name, uid), bounded
by the request's budget."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import kubernetes
import pytest

from distroguard.admission.controlled import Controller
from distroguard.model.workloads import BY_KIND, OWNER_KINDS
from distroguard.operator.webhook.controllers import ControllerTemplates, read_call, template_images
from support.reviews import container, pod_spec, workload

RS = Controller(BY_KIND["ReplicaSet"], "shop", "web-7d9", "uid-1")


def stored(kind: str, uid: str = "uid-1", **sections: list[dict[str, Any]]) -> dict[str, Any]:
    """An object of `kind` as the API server returns it: with its uid."""
    obj = workload(kind, pod_spec(container("app", "reg/app:1"), **sections), name="web-7d9")
    obj["metadata"]["uid"] = uid
    return obj


@pytest.fixture
def api() -> Iterator[Any]:
    client = kubernetes.client.ApiClient()
    yield client
    client.close()


def test_every_owner_kind_is_read_with_its_own_client_call(api: Any) -> None:
    calls = {kind.kind: read_call(api, kind) for kind in OWNER_KINDS}
    named = {k: (type(c.__self__).__name__, c.__name__) for k, c in calls.items()}
    assert named["ReplicaSet"] == ("AppsV1Api", "read_namespaced_replica_set")
    assert named["StatefulSet"] == ("AppsV1Api", "read_namespaced_stateful_set")
    assert named["DaemonSet"] == ("AppsV1Api", "read_namespaced_daemon_set")
    assert named["Job"] == ("BatchV1Api", "read_namespaced_job")
    assert named["ReplicationController"] == ("CoreV1Api", "read_namespaced_replication_controller")
    assert named["CronJob"] == ("BatchV1Api", "read_namespaced_cron_job")


def test_a_template_gives_its_images_by_container_name_when_the_uid_matches() -> None:
    init = [container("migrate", "reg/migrate:2")]
    assert template_images(stored("ReplicaSet", initContainers=init), BY_KIND["ReplicaSet"], "uid-1") == {
        "app": "reg/app:1",
        "migrate": "reg/migrate:2",
    }
    assert template_images(stored("CronJob"), BY_KIND["CronJob"], "uid-1") == {"app": "reg/app:1"}
    # Made again under the same name: another object, not the pod's owner.
    assert template_images(stored("ReplicaSet", uid="uid-2"), BY_KIND["ReplicaSet"], "uid-1") is None
    broken = stored("ReplicaSet")
    broken["spec"]["template"]["spec"]["containers"] = "junk"
    assert template_images(broken, BY_KIND["ReplicaSet"], "uid-1") is None
    assert template_images({"metadata": None}, BY_KIND["ReplicaSet"], "uid-1") is None


class Response:
    def __init__(self, obj: dict[str, Any]) -> None:
        self.data = json.dumps(obj).encode()


class Reads:
    """Stands in for a read call: answers `answer()` (an object, or an exception to raise), counting."""

    def __init__(self, answer: Callable[[], dict[str, Any] | Exception]) -> None:
        self.answer = answer
        self.calls: list[tuple[str, str]] = []

    def __call__(self, name: str, namespace: str, **options: Any) -> Response:
        assert options["_preload_content"] is False
        assert options["_request_timeout"] > 0
        self.calls.append((namespace, name))
        found = self.answer()
        if isinstance(found, Exception):
            raise found
        return Response(found)


def templates(api: Any, reads: Reads) -> ControllerTemplates:
    made = ControllerTemplates(api, ttl=600)
    made._reads["ReplicaSet"] = (BY_KIND["ReplicaSet"], reads)
    return made


async def test_an_owner_is_read_once_and_answered_from_the_cache(api: Any) -> None:
    reads = Reads(lambda: stored("ReplicaSet"))
    made = templates(api, reads)
    assert await made.images(RS, budget=5) == {"app": "reg/app:1"}
    # Cached: answered even with no budget left.
    assert await made.images(RS, budget=0) == {"app": "reg/app:1"}
    assert reads.calls == [("shop", "web-7d9")]
    # Another uid is another key: read, and not the owner.
    assert await made.images(Controller(RS.kind, "shop", "web-7d9", "uid-2"), budget=5) is None
    assert len(reads.calls) == 2


async def test_an_owner_that_does_not_exist_confirms_nothing(api: Any) -> None:
    reads = Reads(lambda: kubernetes.client.ApiException(status=404, reason="Not Found"))
    made = templates(api, reads)
    assert await made.images(RS, budget=5) is None
    assert await made.images(RS, budget=5) is None
    assert len(reads.calls) == 1  # a uid is never reused: the answer is kept


async def test_a_failed_read_confirms_nothing_and_is_tried_again(api: Any) -> None:
    failures = [kubernetes.client.ApiException(status=403, reason="Forbidden"), OSError("connection reset")]
    reads = Reads(lambda: failures.pop(0) if failures else stored("ReplicaSet"))
    made = templates(api, reads)
    assert await made.images(RS, budget=5) is None
    assert await made.images(RS, budget=5) is None
    assert await made.images(RS, budget=5) == {"app": "reg/app:1"}
    assert len(reads.calls) == 3


async def test_a_read_past_the_budget_confirms_nothing_and_goes_on_for_the_retry(api: Any) -> None:
    release = threading.Event()

    def slow() -> dict[str, Any]:
        release.wait(30)
        return stored("ReplicaSet")

    reads = Reads(slow)
    made = templates(api, reads)
    try:
        assert await made.images(RS, budget=0.05) is None
        retry = asyncio.ensure_future(made.images(RS, budget=30))
        await asyncio.sleep(0)
        release.set()
        assert await retry == {"app": "reg/app:1"}
        assert len(reads.calls) == 1  # the retry joined the read under way
    finally:
        release.set()
        await made.cancel()


async def test_a_kind_with_no_read_call_confirms_nothing(api: Any) -> None:
    made = ControllerTemplates(api, ttl=600)
    made._reads.clear()
    assert await made.images(RS, budget=5) is None
