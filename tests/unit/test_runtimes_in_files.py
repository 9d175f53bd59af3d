"""Runtimes found in an image's files when its config's Env names none: package entries, libraries, the
standard library, release files and the build information of a real Go binary."""

from __future__ import annotations

import pytest
from scan_trees import image

from distroguard.model import Runtime
from distroguard.registry.manifest import parse_config
from distroguard.scan.image import program_paths
from distroguard.scan.runtimes import detect_runtimes
from distroguard.scan.tree import FileTree
from support.go_programs import build_go_program
from support.images import Symlink


def runtimes(files: dict[str, bytes | Symlink]) -> dict[str, tuple[str, str, str | None, str]]:
    """name -> (version, evidence source, path, detail), from a tree built through the capture rules."""
    tree: FileTree = image(files)
    found, evidence = detect_runtimes((), tree)
    return {
        runtime.name: (runtime.version, item.source, item.path, item.detail)
        for runtime, item in zip(found, evidence, strict=True)
    }


def dpkg(*packages: tuple[str, str]) -> bytes:
    stanzas = [
        f"Package: {name}\nStatus: install ok installed\nArchitecture: amd64\nVersion: {version}\n"
        f"Description: {name}\n continuation line\n"
        for name, version in packages
    ]
    return "\n".join(stanzas).encode()


def test_python_installed_from_the_distribution_gives_its_patch_version() -> None:
    found = runtimes(
        {
            "/var/lib/dpkg/status": dpkg(
                ("libc6", "2.36-9+deb12u4"), ("python3.11-minimal", "3.11.2-6+deb12u2")
            ),
            "/usr/bin/python3.11": b"\x7fELF",
            "/usr/lib/python3.11/os.py": b"# os",
        }
    )
    assert found["python"] == (
        "3.11.2",
        "package-db",
        "/var/lib/dpkg/status",
        "dpkg: python3.11-minimal 3.11.2-6+deb12u2",
    )


def test_python_built_into_usr_local_wins_over_a_distribution_python() -> None:
    """As PATH does: the official images' /usr/local/bin/python3.12 runs, not Debian's 3.11."""
    found = runtimes(
        {
            "/var/lib/dpkg/status": dpkg(("python3.11-minimal", "3.11.2-6")),
            "/usr/bin/python3.11": b"\x7fELF",
            "/usr/local/bin/python3.12": b"\x7fELF",
        }
    )
    assert found["python"][:3] == ("3.12", "file", "/usr/local/bin/python3.12")


def test_python_from_apk_and_rpm_entries() -> None:
    apk = b"P:musl\nV:1.2.4-r2\n\nP:python3\nV:3.11.8-r0\n\nP:busybox\nV:1.36.1-r15\n"
    assert runtimes({"/lib/apk/db/installed": apk})["python"][:2] == ("3.11.8", "package-db")


def test_python_from_libpython_then_from_the_standard_library() -> None:
    lib = runtimes({"/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0": b"\x7fELF"})
    assert lib["python"] == (
        "3.11",
        "file",
        "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0",
        "libpython3.11.so.1.0",
    )
    stdlib = runtimes(
        {"/usr/local/lib/python3.12/os.py": b"# os", "/usr/local/lib/python3.12/json/os.py": b""}
    )
    assert stdlib["python"][:3] == ("3.12", "file", "/usr/local/lib/python3.12/os.py")


def test_nodejs_from_the_package_then_the_binary_then_the_header() -> None:
    packaged = runtimes({"/var/lib/dpkg/status": dpkg(("nodejs", "18.19.0+dfsg-6~deb12u2"))})
    assert packaged["nodejs"][:2] == ("18.19.0", "package-db")
    # An official build (the node images, distroless nodejs): its release URL is compiled in.
    binary = (
        b"\x7fELF" + bytes(5000) + b"https://nodejs.org/download/release/v20.11.1/node-v20.11.1.tar.gz\x00"
    )
    assert runtimes({"/nodejs/bin/node": binary})["nodejs"][:3] == ("20.11.1", "file", "/nodejs/bin/node")
    header = b"#define NODE_MAJOR_VERSION 22\n#define NODE_MINOR_VERSION 11\n#define NODE_PATCH_VERSION 0\n"
    assert runtimes({"/usr/local/include/node/node_version.h": header})["nodejs"][0] == "22.11.0"


def test_java_from_the_release_file_then_the_packages() -> None:
    # The shape of Eclipse Temurin's /opt/java/openjdk/release.
    release = b'IMPLEMENTOR="Eclipse Adoptium"\nJAVA_RUNTIME_VERSION="21.0.5+11-LTS"\nJAVA_VERSION="21.0.5"\n'
    assert runtimes({"/opt/java/openjdk/release": release})["java"][:3] == (
        "21.0.5",
        "file",
        "/opt/java/openjdk/release",
    )
    debian = runtimes({"/usr/lib/jvm/java-17-openjdk-amd64/release": b'JAVA_VERSION="17.0.13"\n'})
    assert debian["java"][0] == "17.0.13"
    packaged = runtimes({"/var/lib/dpkg/status": dpkg(("openjdk-17-jre-headless", "17.0.13+11-2~deb12u1"))})
    assert packaged["java"][:2] == ("17.0.13", "package-db")
    java_8 = runtimes({"/var/lib/dpkg/status": dpkg(("openjdk-8-jre-headless", "8u422-b05-1"))})
    assert java_8["java"][0] == "8.0.422"


def test_ruby_php_and_dotnet_from_packages_and_paths() -> None:
    found = runtimes(
        {
            "/var/lib/dpkg/status": dpkg(("ruby3.1", "3.1.2-7+deb12u1"), ("php8.2-cli", "8.2.26-1~deb12u1")),
            "/usr/share/dotnet/shared/Microsoft.NETCore.App/8.0.11/Microsoft.NETCore.App.deps.json": b"{}",
        }
    )
    assert {name: value[0] for name, value in found.items()} == {
        "ruby": "3.1.2",
        "php": "8.2.26",
        "dotnet": "8.0.11",
    }


def test_env_still_wins_over_files() -> None:
    tree = image({"/var/lib/dpkg/status": dpkg(("python3.11-minimal", "3.11.2-6"))})
    found, evidence = detect_runtimes(("PYTHON_VERSION=3.12.7",), tree)
    assert found == [Runtime(name="python", version="3.12.7")]
    assert evidence[0].source == "config"


@pytest.fixture(scope="module")
def go_binary(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, str]:
    """A real Go program built here, and the toolchain's version (`1.26.x`)."""
    return build_go_program(tmp_path_factory.mktemp("hello"), "hello")


def test_a_static_go_image_has_the_go_runtime_it_was_built_with(go_binary: tuple[bytes, str]) -> None:
    binary, version = go_binary
    found = runtimes({"/ko-app/hello": binary})
    assert found["go"] == ("".join(version), "file", "/ko-app/hello", f"Go build information: go{version}")


def test_go_build_information_is_found_across_chunk_borders_and_not_in_other_binaries(
    go_binary: tuple[bytes, str],
) -> None:
    binary, version = go_binary
    assert runtimes({"/usr/local/bin/app": binary})["go"][0] == version
    assert "go" not in runtimes({"/usr/local/bin/app": b"\x7fELF" + bytes(100_000)})


@pytest.mark.parametrize(
    ("entrypoint", "cmd", "env", "workdir", "paths"),
    [
        (["/server"], [], [], "", ("/server",)),
        ([], ["./bin/app", "-v"], [], "/srv", ("/srv/bin/app",)),
        (["app"], [], ["PATH=/opt/x:/usr/bin"], "", ("/opt/x/app", "/usr/bin/app")),
        (["/bin/sh", "-c", "exec /server"], [], [], "", ()),
        ([], [], [], "", ()),
        (["/usr/local/bin/../lib/../bin/tool"], [], [], "", ("/usr/local/bin/tool",)),
    ],
)
def test_where_the_images_program_may_be(
    entrypoint: list[str], cmd: list[str], env: list[str], workdir: str, paths: tuple[str, ...]
) -> None:
    assert program_paths(entrypoint, cmd, env, workdir) == paths


def test_a_malformed_entrypoint_is_no_error_of_the_config() -> None:
    config = parse_config(b'{"config": {"Entrypoint": "/server", "Cmd": [1, 2], "WorkingDir": 5}}')
    assert (config.entrypoint, config.cmd, config.working_dir) == ((), (), "")


def test_ruby_and_php_built_from_source_are_found_in_their_own_files() -> None:
    """The ruby and php images build into /usr/local (and announce it in Env, which wins when present)."""
    rbconfig = b'module RbConfig\n  CONFIG = {}\n  CONFIG["RUBY_PROGRAM_VERSION"] = "3.3.6"\nend\n'
    header = b'#define PHP_MAJOR_VERSION 8\n#define PHP_VERSION "8.3.14"\n#define PHP_VERSION_ID 80314\n'
    found = runtimes(
        {
            "/usr/local/lib/ruby/3.3.0/x86_64-linux/rbconfig.rb": rbconfig,
            "/usr/local/include/php/main/php_version.h": header,
        }
    )
    assert found["ruby"] == (
        "3.3.6",
        "file",
        "/usr/local/lib/ruby/3.3.0/x86_64-linux/rbconfig.rb",
        "rbconfig.rb: RUBY_PROGRAM_VERSION 3.3.6",
    )
    assert found["php"][:3] == ("8.3.14", "file", "/usr/local/include/php/main/php_version.h")
    debian = runtimes(
        {"/usr/lib/x86_64-linux-gnu/ruby/3.1.0/rbconfig.rb": rbconfig.replace(b"3.3.6", b"3.1.2")}
    )
    assert debian["ruby"][0] == "3.1.2"
    assert "ruby" not in runtimes({"/opt/app/vendor/ruby/3.3.0/rbconfig.rb": rbconfig})
