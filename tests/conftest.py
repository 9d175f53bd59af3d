"""Fixtures shared by all tests live in `tests/support/`; each module is registered here as a plugin."""

pytest_plugins: list[str] = [
    "support.kube",
    "support.node",
    "support.registry_server",
    "support.proxy",
    "support.scratch",
]
