"""The operator names itself without a login name: the image's user (65532) has no passwd entry."""

from __future__ import annotations

import os
import pwd
import socket

import pytest
from kopf._core.engines import peering

from distroguard.operator.process import own_identity


@pytest.fixture
def nameless_user(monkeypatch: pytest.MonkeyPatch) -> None:
    """As in the image: no login-name variables, and the UID is in no passwd file."""
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME", "POD_ID"):
        monkeypatch.delenv(name, raising=False)

    def no_entry(uid: int) -> pwd.struct_passwd:
        raise KeyError(f"getpwuid(): uid not found: {uid}")

    monkeypatch.setattr(pwd, "getpwuid", no_entry)


@pytest.mark.usefixtures("nameless_user")
def test_kopfs_own_guess_dies_for_a_nameless_user() -> None:
    # Why the operator names itself: kopf's guess needs a login name (Python 3.13 raises OSError,
    # earlier versions pwd's KeyError).
    with pytest.raises((OSError, KeyError)):
        peering.detect_own_id(manual=False)


@pytest.mark.usefixtures("nameless_user")
def test_the_identity_is_the_host_name_and_pid() -> None:
    assert own_identity() == f"{socket.gethostname()}/{os.getpid()}"


@pytest.mark.usefixtures("nameless_user")
def test_kopf_takes_it_as_pod_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POD_ID", own_identity())
    assert peering.detect_own_id(manual=False) == own_identity()
