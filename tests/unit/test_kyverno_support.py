"""The parts of the Kyverno test support that decide a verdict without Kyverno: reading its connections out
of an strace log, and pointing the example policy's API calls somewhere else."""

from __future__ import annotations

import pytest

from support.kyverno import Connection, parse_connects
from support.kyverno_policy import IN_TEST_POLICY, denial_text, facts_urls, localized, rule_keys, services

TRACE = """\
25670 connect(3, {sa_family=AF_INET, sin_port=htons(6443), sin_addr=inet_addr("127.0.0.1")}, 16) = -1 EINPROGRESS (Operation now in progress)
25671 connect(4, {sa_family=AF_INET6, sin6_port=htons(9443), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::1", &sin6_addr), sin6_scope_id=0}, 28) = 0
25672 connect(5, {sa_family=AF_UNIX, sun_path="/var/run/nscd/socket"}, 110) = -1 ENOENT (No such file or directory)
25673 connect(6, {sa_family=AF_INET, sin_port=htons(443), sin_addr=inet_addr("142.250.1.1")}, 16 <unfinished ...>
25674 connect(7, {sa_family=AF_INET6, sin6_port=htons(53), sin6_flowinfo=htonl(0), inet_pton(AF_INET6, "::ffff:127.0.0.53", &sin6_addr), sin6_scope_id=0}, 28) = 0
"""  # noqa: E501 (strace lines as strace writes them)


def test_every_ip_connect_is_read_with_its_address_and_port() -> None:
    assert parse_connects(TRACE) == [
        Connection("AF_INET", "127.0.0.1", 6443),
        Connection("AF_INET6", "::1", 9443),
        Connection("AF_INET", "142.250.1.1", 443),
        Connection("AF_INET6", "::ffff:127.0.0.53", 53),
    ]


def test_loopback_includes_ipv4_mapped_loopback_and_nothing_else() -> None:
    assert [c.loopback for c in parse_connects(TRACE)] == [True, True, False, True]


def test_localized_points_every_api_call_at_the_given_server_keeping_path_and_query() -> None:
    policy = localized(IN_TEST_POLICY, "https://127.0.0.1:8443", "PEM", "apps")
    [service] = services(policy)
    assert service["url"] == "https://127.0.0.1:8443/v1/facts?image={{ element.image }}"
    assert service["caBundle"] == "PEM"
    assert policy["spec"]["rules"][0]["match"]["any"][0]["resources"]["namespaces"] == ["apps"]
    assert policy["metadata"]["name"] != IN_TEST_POLICY["metadata"]["name"]
    assert (
        IN_TEST_POLICY["spec"]["rules"][0]["validate"]["foreach"][0]["context"][0]["apiCall"]["service"][
            "caBundle"
        ]
        == ""
    ), "the original is left as it was"


def test_facts_urls_fill_in_the_image() -> None:
    assert facts_urls(IN_TEST_POLICY, "r.example/a:1") == [
        "https://distroguard.distroguard.svc/v1/facts?image=r.example/a:1"
    ]


def test_rule_keys_and_denial_text_name_the_rule_that_reads_the_libc_family() -> None:
    assert rule_keys(IN_TEST_POLICY) == {"no-musl": {"facts.libc.family"}}
    assert denial_text(IN_TEST_POLICY) == IN_TEST_POLICY["spec"]["rules"][0]["validate"]["message"]
    with pytest.raises(ValueError, match="no rule"):
        denial_text(IN_TEST_POLICY, "facts.lifecycle.eol")
