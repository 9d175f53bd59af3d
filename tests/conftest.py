"""Fixtures shared by all tests live in `tests/support/`; each module is registered here as a plugin."""

import pytest

pytest_plugins: list[str] = [
    "support.kube",
    "support.node",
    "support.registry_server",
    "support.proxy",
    "support.scratch",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that run the Go tools go last: `scripts/test` builds those tools while the rest run
    (`support.gotools`)."""
    items.sort(key=lambda item: item.get_closest_marker("go_tools") is not None)


@pytest.fixture(autouse=True)
def _own_base_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's CLI runs remember base images in a file of their own, never the machine's cache (an image
    another test resolved would otherwise become this test's base)."""
    monkeypatch.setenv("DISTROGUARD_BASES_CACHE", str(tmp_path_factory.mktemp("bases") / "bases.json"))
