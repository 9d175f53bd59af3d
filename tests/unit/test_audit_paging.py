"""Lists of the Kubernetes API, page by page, and what a failed list says."""

from __future__ import annotations

import json
import threading
from types import SimpleNamespace
from typing import Any

import kubernetes
import pytest

from distroguard.audit.cluster import PAGE_SIZE, ClusterError, _read, paged


def pages(*contents: tuple[list[str], str | None]) -> Any:
    asked: list[dict[str, Any]] = []

    def call(*args: Any, **kwargs: Any) -> Any:
        asked.append({"args": args, **kwargs})
        names, token = contents[len(asked) - 1]
        page = {"items": [{"metadata": {"name": n}} for n in names], "metadata": {"continue": token}}
        return SimpleNamespace(data=json.dumps(page).encode())

    call.asked = asked  # type: ignore[attr-defined]
    return call


def test_every_page_is_read_and_the_token_passed_on() -> None:
    call = pages((["a", "b"], "t1"), (["c"], None))
    names = [item["metadata"]["name"] for item in paged(call, "group", label_selector="x=y")]
    assert names == ["a", "b", "c"]
    assert call.asked == [
        {"args": ("group",), "limit": PAGE_SIZE, "_preload_content": False, "label_selector": "x=y"},
        {
            "args": ("group",),
            "limit": PAGE_SIZE,
            "_preload_content": False,
            "_continue": "t1",
            "label_selector": "x=y",
        },
    ]


def test_a_refused_or_broken_list_names_what_was_listed() -> None:
    def refused(**_: Any) -> Any:
        raise kubernetes.client.ApiException(status=403, reason="Forbidden")

    def broken(**_: Any) -> Any:
        raise ConnectionRefusedError("connection refused")

    with pytest.raises(ClusterError, match="cannot list pods: 403 Forbidden"):
        list(_read("pods", paged(refused)))
    with pytest.raises(ClusterError, match="cannot list DistroPolicies: connection refused"):
        list(_read("DistroPolicies", paged(broken)))


def test_the_next_page_is_asked_for_while_the_caller_reads_this_one() -> None:
    asked_second = threading.Event()
    first = pages((["a", "b"], "t1"), (["c"], None))

    def call(*args: Any, **kwargs: Any) -> Any:
        answer = first(*args, **kwargs)
        if kwargs.get("_continue") == "t1":
            asked_second.set()
        return answer

    items = paged(call)
    assert next(items)["metadata"]["name"] == "a"
    assert asked_second.wait(30), "the second page was not asked for while the first was being read"
    assert [item["metadata"]["name"] for item in items] == ["b", "c"]
    assert len(first.asked) == 2
