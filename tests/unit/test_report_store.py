"""ReportStore: a report is written when what it says changed, known from its metadata alone."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import kubernetes

from distroguard.audit.policyreports import content
from distroguard.operator.audit.objectwriter import Resource
from distroguard.operator.audit.reportstore import CONTENT_ANNOTATION, ReportStore, fingerprint


@dataclass
class Raw:
    data: bytes


class FakeCustomObjects:
    """The calls ReportStore makes of `CustomObjectsApi` and of its `ObjectWriter`, on a dict; every write
    counted."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], dict[str, Any]] = {}
        self.version = 0
        self.writes: list[tuple[str, str]] = []
        self.listed_whole = False

    def _store(self, body: dict[str, Any], key: tuple[str, str]) -> Raw:
        self.version += 1
        stored = json.loads(json.dumps(body))
        stored["metadata"]["resourceVersion"] = str(self.version)
        self.objects[key] = stored
        return Raw(json.dumps(stored).encode())

    def list_cluster_custom_object(self, *args: Any, **kwargs: Any) -> Raw:
        headers = kwargs.get("_headers") or {}
        metadata_only = "PartialObjectMetadataList" in headers.get("Accept", "")
        self.listed_whole |= not metadata_only
        items = [
            {"metadata": o["metadata"]} if metadata_only else o
            for (ns, _), o in self.objects.items()
            if ns  # namespaced: the PolicyReports
        ]
        return Raw(json.dumps({"items": items, "metadata": {}}).encode())

    def create(self, resource: Resource, body: Any) -> bytes:
        self.writes.append(("create", body["metadata"]["name"]))
        return self._store(body, (resource.namespace or "", body["metadata"]["name"])).data

    def replace(self, resource: Resource, name: str, body: Any) -> bytes:
        self.writes.append(("replace", name))
        key = (resource.namespace or "", name)
        if resource.namespace is not None:
            assert body["metadata"]["resourceVersion"] == self.objects[key]["metadata"]["resourceVersion"]
        return self._store(body, key).data

    def delete_namespaced_custom_object(
        self, group: str, version: str, ns: str, plural: str, name: str
    ) -> None:
        self.writes.append(("delete", name))
        del self.objects[ns, name]

    def get_cluster_custom_object(self, group: str, version: str, plural: str, name: str, **_: Any) -> Raw:
        if ("", name) not in self.objects:
            raise kubernetes.client.ApiException(status=404)
        return Raw(json.dumps(self.objects["", name]).encode())


def report(name: str, result: str, seconds: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": "wgpolicyk8s.io/v1alpha2",
        "kind": "PolicyReport",
        "metadata": {
            "name": name,
            "namespace": "shop",
            "labels": {"app.kubernetes.io/managed-by": "distroguard"},
        },
        "scope": {"kind": "Deployment", "name": name, "namespace": "shop"},
        "summary": {"pass": int(result == "pass"), "fail": int(result == "fail")},
        "results": [{"policy": "p", "rule": "r", "result": result, "timestamp": {"seconds": seconds}}],
    }


def store_of(fake: FakeCustomObjects) -> ReportStore:
    store = ReportStore(kubernetes.client.ApiClient())
    store._custom = fake
    store._writer = fake  # type: ignore[assignment]
    return store


def test_the_fingerprint_is_of_what_a_report_says_not_when() -> None:
    assert fingerprint(report("web", "pass", seconds=1)) == fingerprint(report("web", "pass", seconds=99))
    assert fingerprint(report("web", "pass")) != fingerprint(report("web", "fail"))


def test_the_fingerprint_is_the_sha256_of_the_compact_sorted_json_stored_reports_carry() -> None:
    said = report("wéb", "pass")
    said["results"][0]["message"] = 'é \u2028 \x00\x1f "quoted" \\ / \t\n 😀'
    said["scope"]["uid"] = None
    compact = json.dumps(content(said), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert fingerprint(said) == hashlib.sha256(compact.encode()).hexdigest()


def test_only_changed_reports_are_written_and_the_stored_ones_are_never_read_whole() -> None:
    fake = FakeCustomObjects()
    store = store_of(fake)
    first = store.sync((report(n, "pass") for n in ("a", "b", "c")), None)
    assert (first.written, fake.writes) == (3, [("create", "a"), ("create", "b"), ("create", "c")])
    stamped = fake.objects["shop", "a"]["metadata"]["annotations"][CONTENT_ANNOTATION]
    assert stamped == fingerprint(report("a", "pass"))

    fake.writes.clear()
    again = store.sync((report(n, "pass", seconds=2) for n in ("a", "b", "c")), None)
    assert (again.written, again.unchanged, fake.writes) == (0, 3, [])

    changed = store.sync([report("a", "pass"), report("b", "fail", seconds=3)], None)
    assert (changed.written, changed.deleted) == (1, 1)
    assert fake.writes == [("replace", "b"), ("delete", "c")]
    assert not fake.listed_whole


def test_a_report_changed_by_someone_else_or_without_the_annotation_is_written_again() -> None:
    fake = FakeCustomObjects()
    store = store_of(fake)
    store.sync([report("a", "pass"), report("b", "pass")], None)
    fake._store(json.loads(json.dumps(fake.objects["shop", "a"])), ("shop", "a"))  # edited: a new version
    del fake.objects["shop", "b"]["metadata"]["annotations"]  # written by an older distroguard
    fake.writes.clear()
    store.sync([report("a", "pass"), report("b", "pass")], None)
    assert sorted(fake.writes) == [("replace", "a"), ("replace", "b")]

    restarted = store_of(fake)  # a new process trusts the annotation it finds
    fake.writes.clear()
    assert restarted.sync([report("a", "pass"), report("b", "pass")], None).written == 0
    assert fake.writes == []
