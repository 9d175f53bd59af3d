"""The `runtimes` scan mode through a real registry: fast mode stops at the layers that decide OS and libc;
a policy that judges runtimes reads on, up to a byte bound, for a runtime the config does not announce
(`apt-get install python3` in a layer above the base)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from distroguard.model import ImageFacts, ScanMode
from distroguard.registry.client import RegistryClient
from distroguard.resolver import Resolver, ResolverSettings
from support.distros import DEBIAN_12_ROOT, ELF, database, dpkg
from support.go_programs import build_go_program
from support.images import BuiltImage, ImageBuilder, push
from support.registry_server import RegistryServer

# What `apt-get install python3.11-minimal` adds: the interpreter, its standard library, and dpkg's record.
APT_PYTHON_LAYER = {
    "/usr/bin/python3.11": ELF,
    "/usr/lib/python3.11/os.py": b"# the standard library\n",
    "/var/lib/dpkg/status": database(
        dpkg("base-files", "12.4+deb12u5"),
        dpkg("libc6", "2.36-9+deb12u4"),
        dpkg("zlib1g", "1:1.2.13.dfsg-1"),
        dpkg("python3.11-minimal", "3.11.2-6+deb12u2"),
    ),
}
APP_LAYER = {"/srv/app/main.py": b"print('hello')\n" * 2000}


def apt_python_image() -> BuiltImage:
    return ImageBuilder().layer(DEBIAN_12_ROOT).layer(APT_PYTHON_LAYER).build()


@pytest.fixture
async def client() -> AsyncIterator[RegistryClient]:
    async with RegistryClient() as client:
        yield client


async def _resolve(
    client: RegistryClient, ref: str, mode: ScanMode, settings: ResolverSettings | None = None
) -> ImageFacts:
    resolver = Resolver(client, settings)
    try:
        return await resolver.resolve(ref, mode=mode)
    finally:
        await resolver.drain()


def _note(facts: ImageFacts) -> str:
    return next(e.detail for e in facts.evidence if e.fact == "scan")


async def test_fast_mode_misses_an_apt_installed_python_and_runtimes_mode_finds_it(
    registry: RegistryServer, repo: str, client: RegistryClient
) -> None:
    image = apt_python_image()
    await push(registry.url, repo, "apt", image)
    ref = f"{registry.address}/{repo}:apt"
    fast = await _resolve(client, ref, "fast")
    assert fast.runtimes == ()
    assert "read 1 of 2 layers" in _note(fast)
    found = await _resolve(client, ref, "runtimes")
    assert [(r.name, r.version) for r in found.runtimes] == [("python", "3.11.2")]
    evidence = next(e for e in found.evidence if e.fact == "runtime.python")
    assert (evidence.source, evidence.path, evidence.layer) == (
        "package-db",
        "/var/lib/dpkg/status",
        image.layers[1].digest,
    )
    assert found.bytes_fetched - fast.bytes_fetched == image.layers[1].size
    assert "read 2 of 2 layers" in _note(found)
    assert (found.os, found.libc) == (fast.os, fast.libc)


async def test_a_runtime_the_config_announces_costs_no_extra_layer(
    registry: RegistryServer, repo: str, client: RegistryClient
) -> None:
    image = ImageBuilder().layer(DEBIAN_12_ROOT).layer(APT_PYTHON_LAYER).env("PYTHON_VERSION=3.12.8").build()
    await push(registry.url, repo, "env", image)
    facts = await _resolve(client, f"{registry.address}/{repo}:env", "runtimes")
    assert [(r.name, r.version) for r in facts.runtimes] == [("python", "3.12.8")]
    assert facts.bytes_fetched == len(image.manifest) + len(image.config) + image.layers[0].size
    assert "the config announces the runtime" in _note(facts)


async def test_the_search_stops_at_max_runtime_bytes(
    registry: RegistryServer, repo: str, client: RegistryClient
) -> None:
    image = ImageBuilder().layer(DEBIAN_12_ROOT).layer(APP_LAYER).layer(APT_PYTHON_LAYER).build()
    await push(registry.url, repo, "bounded", image)
    ref = f"{registry.address}/{repo}:bounded"
    bound = image.layers[1].size + image.layers[2].size - 1  # the app layer fits, the python layer not
    facts = await _resolve(client, ref, "runtimes", ResolverSettings(max_runtime_bytes=bound))
    assert facts.runtimes == ()
    assert "--max-runtime-bytes" in _note(facts)
    assert (
        facts.bytes_fetched
        == len(image.manifest) + len(image.config) + image.layers[0].size + image.layers[1].size
    )
    unbounded = await _resolve(client, ref, "runtimes")
    assert [r.name for r in unbounded.runtimes] == ["python"]


async def test_a_base_seen_without_a_runtime_does_not_answer_for_an_image_built_on_it(
    registry: RegistryServer, repo: str, client: RegistryClient
) -> None:
    """The base-layer tier: in runtimes mode a prefix answers only when it showed a runtime, or is the
    whole image."""
    base_only = ImageBuilder().layer(DEBIAN_12_ROOT).build()
    with_python = apt_python_image()
    with_app = ImageBuilder().layer(DEBIAN_12_ROOT).layer(APT_PYTHON_LAYER).layer(APP_LAYER).build()
    for tag, image in (("base", base_only), ("python", with_python), ("app", with_app)):
        await push(registry.url, repo, tag, image)
    resolver = Resolver(client)
    try:
        base = await resolver.resolve(f"{registry.address}/{repo}:base", mode="runtimes")
        assert base.runtimes == ()
        python = await resolver.resolve(f"{registry.address}/{repo}:python", mode="runtimes")
        assert [r.name for r in python.runtimes] == ["python"]
        assert python.bytes_fetched > len(with_python.manifest) + len(with_python.config)  # it read layers
        app = await resolver.resolve(f"{registry.address}/{repo}:app", mode="runtimes")
        assert [r.name for r in app.runtimes] == ["python"]
        assert app.bytes_fetched == len(with_app.manifest) + len(
            with_app.config
        )  # the python prefix answered
    finally:
        await resolver.drain()


@pytest.fixture(scope="module")
def go_program(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, str]:
    """A real Go program built here, and the toolchain's version (`1.26.x`)."""
    return build_go_program(tmp_path_factory.mktemp("server"), "server")


@pytest.mark.parametrize(
    ("path", "config"),
    [
        ("/server", {"Entrypoint": ["/server"]}),
        ("/srv/bin/server", {"Cmd": ["bin/server", "--port=8080"], "WorkingDir": "/srv"}),
        ("/opt/tools/server", {"Entrypoint": ["server"], "Env": ["PATH=/opt/tools:/usr/bin"]}),
    ],
)
async def test_a_static_go_image_is_judged_by_its_programs_build_information(
    registry: RegistryServer,
    repo: str,
    client: RegistryClient,
    go_program: tuple[bytes, str],
    path: str,
    config: dict[str, object],
) -> None:
    """A scratch image with one Go program where the config says: no OS, no libc, and Go, with its version
    from the program's own build information (fast mode: nothing decides an OS, so every layer is read)."""
    binary, version = go_program
    container = {"Env": [], "Labels": None, **config}
    image = ImageBuilder().layer({path: binary}).config_fields(config=container).build()
    await push(registry.url, repo, "go", image)
    facts = await _resolve(client, f"{registry.address}/{repo}:go", "fast")
    assert (facts.os, facts.libc.family) == (None, "none")
    assert [(r.name, r.version) for r in facts.runtimes] == [("go", version)]
    evidence = next(e for e in facts.evidence if e.fact == "runtime.go")
    assert (evidence.path, evidence.layer) == (path, image.layers[0].digest)
    assert evidence.detail == f"Go build information of the image's program: go{version}"
