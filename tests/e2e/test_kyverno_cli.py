"""Kyverno's own CLI checks distroguard's example ClusterPolicy: `kyverno test` (v1.19.1, built from its Go
module by `scripts/testenv build --kyverno`) loads it, validates it, and runs it on a musl Pod and a glibc
Pod, its API calls answered by the CLI's `apiCallResponses` mocks with the documents distroguard's facts API
serves (`model.factsdoc.served_document`: `inspect --output json`'s, plus `lifecycle`, judged on a fixed day
with the bundled EOL data). No cluster, no network.
"""

from __future__ import annotations

import subprocess
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import yaml

from distroguard.eol import EolCatalog, bundled_snapshot
from distroguard.model import ImageFacts, Libc, OSRelease
from distroguard.model.factsdoc import served_document
from support import kyverno
from support.kyverno_policy import LIBC_FAMILY, example_policy, facts_urls, rule_keys

pytestmark = [pytest.mark.e2e, pytest.mark.go_tools]

EOL = "facts.lifecycle.eol"
MUSL_IMAGE = "registry.example/shop/alpine-app:1"
GLIBC_IMAGE = "registry.example/shop/debian-app:1"

ALPINE = ImageFacts(
    reference=MUSL_IMAGE,
    digest="sha256:" + "a" * 64,
    os=OSRelease(id="alpine", version_id="3.20.3", pretty_name="Alpine Linux v3.20"),
    libc=Libc(family="musl", version="1.2.5"),
)
DEBIAN = ImageFacts(
    reference=GLIBC_IMAGE,
    digest="sha256:" + "d" * 64,
    os=OSRelease(
        id="debian", version_id="12", codename="bookworm", pretty_name="Debian GNU/Linux 12 (bookworm)"
    ),
    libc=Libc(family="glibc", version="2.36"),
)

TRUE_ANSWERS = {MUSL_IMAGE: ALPINE, GLIBC_IMAGE: DEBIAN}
JUDGED_ON = date(2026, 6, 1)
"""Alpine 3.20 is past its end of life then (2026-04-01), Debian 12 is not: the EOL rule decides too."""


def document(facts: ImageFacts) -> dict[str, Any]:
    return served_document(facts, EolCatalog(bundled_snapshot()), JUDGED_ON)


def pod(name: str, image: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"containers": [{"name": "app", "image": image}]},
    }


def expected(rule: str, keys: set[str], document: dict[str, Any]) -> str:
    """What `kyverno test` must report for a rule whose deny conditions read `keys`, on a Pod whose image's
    facts are `document`: decided here from the document, the way the rule means it."""
    if LIBC_FAMILY in keys:
        return "fail" if document["libc"]["family"] == "musl" else "pass"
    if EOL in keys:
        return "fail" if document["lifecycle"]["eol"] is True else "pass"
    pytest.fail(f"rule {rule} reads {sorted(keys)}: say here what it decides", pytrace=False)


def write_test(directory: Path, answers: dict[str, ImageFacts], truth: dict[str, ImageFacts]) -> None:
    """A `kyverno test` directory: the example policy, a musl and a glibc Pod, the facts each image's API
    call is answered with (`answers`, by image), and the results expected from the facts in `truth`."""
    policy = example_policy()
    (directory / "policy.yaml").write_text(yaml.safe_dump(policy))
    pods = {"musl-app": MUSL_IMAGE, "glibc-app": GLIBC_IMAGE}
    (directory / "resources.yaml").write_text(yaml.safe_dump_all([pod(n, i) for n, i in pods.items()]))
    mocks = [
        {"url": url, "method": "GET", "response": {"statusCode": 200, "body": document(answer)}}
        for image, answer in answers.items()
        for url in sorted(set(facts_urls(policy, image)))  # the rules ask the same URL: one mock each
    ]
    documents = {image: document(facts) for image, facts in truth.items()}
    results = [
        {
            "policy": policy["metadata"]["name"],
            "rule": rule,
            "kind": "Pod",
            "resources": [name],
            "result": expected(rule, keys, documents[image]),
        }
        for rule, keys in rule_keys(policy).items()
        for name, image in pods.items()
    ]
    test = {
        "apiVersion": "cli.kyverno.io/v1alpha1",
        "kind": "Test",
        "metadata": {"name": "distroguard-example-policy"},
        "policies": ["policy.yaml"],
        "resources": ["resources.yaml"],
        "apiCallResponses": mocks,
        "results": results,
    }
    (directory / "kyverno-test.yaml").write_text(yaml.safe_dump(test))


def kyverno_test(directory: Path) -> subprocess.CompletedProcess[str]:
    try:
        binaries = kyverno.KyvernoBinaries.locate()
    except kyverno.KyvernoError as e:
        pytest.fail(str(e), pytrace=False)
    return subprocess.run(
        [str(binaries.cli), "test", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(directory)},
    )


def test_kyverno_test_accepts_the_example_policy(tmp_path: Path) -> None:
    write_test(tmp_path, TRUE_ANSWERS, TRUE_ANSWERS)
    done = kyverno_test(tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "0 tests failed" in output, output


def test_kyverno_test_fails_when_the_facts_say_otherwise(tmp_path: Path) -> None:
    """The same expectations with the answers swapped: Kyverno admits the musl Pod and denies the glibc one,
    so the check above is decided by the facts documents, not by the policy alone."""
    write_test(tmp_path, {MUSL_IMAGE: DEBIAN, GLIBC_IMAGE: ALPINE}, TRUE_ANSWERS)
    done = kyverno_test(tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "tests failed" in output, output
