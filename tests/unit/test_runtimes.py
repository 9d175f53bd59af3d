"""`detect_runtimes`: language runtimes from the config's Env and from cheap file names."""

from __future__ import annotations

import pytest
from scan_trees import Link, image

from distroguard.model import Runtime
from distroguard.scan.runtimes import detect_runtimes

ELF = b"\x7fELF"


@pytest.mark.parametrize(
    ("env", "runtime"),
    [
        ("PYTHON_VERSION=3.12.4", Runtime(name="python", version="3.12.4")),
        ("PYTHON_VERSION=3.13.0rc1", Runtime(name="python", version="3.13.0rc1")),
        ("NODE_VERSION=20.15.1", Runtime(name="nodejs", version="20.15.1")),
        ("NODE_VERSION=v22.4.0", Runtime(name="nodejs", version="22.4.0")),
        ("JAVA_VERSION=jdk-21.0.5+11", Runtime(name="java", version="21.0.5")),
        ("JAVA_VERSION=21.0.5+11", Runtime(name="java", version="21.0.5")),
        ("JAVA_VERSION=jdk-17.0.13+11", Runtime(name="java", version="17.0.13")),
        ("JAVA_VERSION=jdk8u422-b05", Runtime(name="java", version="8.0.422")),
        ("JAVA_VERSION=8u342", Runtime(name="java", version="8.0.342")),
        ("JAVA_VERSION=11.0.16", Runtime(name="java", version="11.0.16")),
        ("GOLANG_VERSION=1.22.5", Runtime(name="go", version="1.22.5")),
        ("GO_VERSION=1.23.0", Runtime(name="go", version="1.23.0")),
        ("RUBY_VERSION=3.3.4", Runtime(name="ruby", version="3.3.4")),
        ("PHP_VERSION=8.3.9", Runtime(name="php", version="8.3.9")),
        ("RUST_VERSION=1.80.0", Runtime(name="rust", version="1.80.0")),
        ("DOTNET_VERSION=8.0.8", Runtime(name="dotnet", version="8.0.8")),
        ("OTP_VERSION=27.0.1", Runtime(name="erlang", version="27.0.1")),
        ("ELIXIR_VERSION=v1.17.2", Runtime(name="elixir", version="1.17.2")),
    ],
)
def test_env(env: str, runtime: Runtime) -> None:
    runtimes, evidence = detect_runtimes([env], None)
    assert runtimes == [runtime]
    key = env.partition("=")[0]
    assert len(evidence) == 1
    assert evidence[0].fact == f"runtime.{runtime.name}"
    assert evidence[0].source == "config"
    assert evidence[0].path == f"Env:{key}"
    assert evidence[0].detail == env


@pytest.mark.parametrize(
    "env",
    [
        "PATH=/usr/local/bin:/usr/bin",
        "PYTHON_VERSION",
        "PYTHON_VERSION=",
        "PYTHON_VERSION=latest",
        "JAVA_VERSION=openjdk",
        "JAVA_HOME=/opt/java/openjdk",
        "YARN_VERSION=1.22.19",
        "PYTHON_SHA256=24887b92e2afd4a2ac602419ad4b596372f67ac9b077190f459aba390faf5550",
        "NODE_VERSION=not a version",
    ],
)
def test_env_entries_that_are_not_runtimes(env: str) -> None:
    assert detect_runtimes([env], None) == ([], [])


def test_several_runtimes_are_sorted_by_name() -> None:
    env = ["NODE_VERSION=20.15.1", "PATH=/usr/bin", "PYTHON_VERSION=3.12.4", "GOLANG_VERSION=1.22"]
    runtimes, evidence = detect_runtimes(env, None)
    assert [r.name for r in runtimes] == ["go", "nodejs", "python"]
    assert [e.fact for e in evidence] == ["runtime.go", "runtime.nodejs", "runtime.python"]


def test_a_later_definition_of_a_variable_wins() -> None:
    runtimes, _ = detect_runtimes(["PYTHON_VERSION=3.11.9", "PYTHON_VERSION=3.12.4"], None)
    assert runtimes == [Runtime(name="python", version="3.12.4")]


def test_one_runtime_per_name() -> None:
    runtimes, evidence = detect_runtimes(["GO_VERSION=1.21.0", "GOLANG_VERSION=1.22.5"], None)
    assert runtimes == [Runtime(name="go", version="1.22.5")]
    assert [e.path for e in evidence] == ["Env:GOLANG_VERSION"]


# -- files ----------------------------------------------------------------------------------------


def test_python_binary_in_usr_local_bin_wins_over_the_distribution_python() -> None:
    tree = image(
        {
            "/usr/local/bin/python3.12": ELF,
            "/usr/local/bin/python3": Link("python3.12"),
            "/usr/bin/python3.11": ELF,
        }
    )
    runtimes, evidence = detect_runtimes([], tree)
    assert runtimes == [Runtime(name="python", version="3.12")]
    assert evidence[0].source == "file"
    assert evidence[0].path == "/usr/local/bin/python3.12"


def test_the_newest_python_in_a_directory() -> None:
    tree = image({"/usr/bin/python3.10": ELF, "/usr/bin/python3.12": ELF, "/usr/bin/python2.7": ELF})
    runtimes, _ = detect_runtimes([], tree)
    assert runtimes == [Runtime(name="python", version="3.12")]


def test_python_through_a_merged_usr() -> None:
    tree = image({"/bin": Link("usr/bin"), "/usr/bin/python3.11": ELF})
    runtimes, _ = detect_runtimes([], tree)
    assert runtimes == [Runtime(name="python", version="3.11")]


def test_a_dangling_python_link_is_not_python() -> None:
    tree = image({"/usr/bin/python3.12": Link("/opt/missing/python3.12")})
    assert detect_runtimes([], tree) == ([], [])


def test_env_wins_over_files() -> None:
    tree = image({"/usr/local/bin/python3.12": ELF})
    runtimes, evidence = detect_runtimes(["PYTHON_VERSION=3.12.4", "NODE_VERSION=20.1.0"], tree)
    assert runtimes == [
        Runtime(name="nodejs", version="20.1.0"),
        Runtime(name="python", version="3.12.4"),
    ]
    assert {e.source for e in evidence} == {"config"}


def test_files_fill_what_env_does_not_name() -> None:
    tree = image({"/usr/bin/python3.11": ELF})
    runtimes, evidence = detect_runtimes(["NODE_VERSION=20.1.0"], tree)
    assert runtimes == [
        Runtime(name="nodejs", version="20.1.0"),
        Runtime(name="python", version="3.11"),
    ]
    assert [e.source for e in evidence] == ["config", "file"]


def test_node_is_not_looked_for_in_files() -> None:
    tree = image({"/usr/local/bin/node": ELF, "/usr/local/bin/nodejs": ELF})
    assert detect_runtimes([], tree) == ([], [])


def test_nothing() -> None:
    assert detect_runtimes([], None) == ([], [])
    assert detect_runtimes([], image({})) == ([], [])
