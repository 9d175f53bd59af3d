"""`distroguard inspect` as a pipeline runs it: registry, `oci:` and `docker-archive:` images."""

from __future__ import annotations

import asyncio
import base64
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from distroguard.cli.main import main
from support.distros import ALPINE_ROOT, debian_python_image
from support.images import BuiltImage, ImageBuilder, push, write_docker_archive, write_oci_layout
from support.registry_server import RegistryServer

pytestmark = pytest.mark.registry

FACT_KEYS = {
    "reference",
    "digest",
    "platform",
    "manifest_digest",
    "os",
    "libc",
    "runtimes",
    "evidence",
    "bytes_fetched",
    "image_size",
    "mode",
    "base",
    "chain",
}


def pushed(server: RegistryServer, repo: str, image: BuiltImage, tag: str = "1") -> str:
    asyncio.run(push(server.url, repo, tag, image, auth=server.push_auth))
    return f"{server.address}/{repo}:{tag}"


def inspect(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["inspect", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def test_json_for_one_image_has_the_documented_shape(registry: RegistryServer, repo: str) -> None:
    image = debian_python_image()
    ref = pushed(registry, repo, image)
    code, out, err = inspect(ref, "--output", "json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    assert set(data) == FACT_KEYS
    assert data["reference"] == ref
    assert data["digest"] == image.digest
    assert data["os"] == {
        "id": "debian",
        "version_id": "12",
        "codename": "bookworm",
        "pretty_name": None,
        "id_like": [],
    }
    assert data["libc"] == {"family": "glibc", "version": "2.36"}
    assert data["runtimes"] == [{"name": "python", "version": "3.12.8"}]
    assert data["mode"] == "fast"
    assert data["base"] is None  # nothing names or shows a base for it
    assert isinstance(data["chain"], str)
    assert len(data["chain"]) == 64
    assert data["bytes_fetched"] == len(image.manifest) + len(image.config) + image.layers[0].size
    assert data["image_size"] == len(image.config) + sum(layer.size for layer in image.layers)
    assert all({"fact", "source", "path", "layer", "detail"} <= set(e) for e in data["evidence"])


def test_several_images_give_a_list_and_failures_exit_2(registry: RegistryServer, repo: str) -> None:
    good = pushed(registry, repo, debian_python_image())
    alpine = pushed(registry, repo, ImageBuilder().layer(ALPINE_ROOT).build(), tag="alpine")
    missing = f"{registry.address}/{repo}:missing"
    code, out, err = inspect(good, alpine, missing, "-o", "json")
    assert code == 2
    data = json.loads(out)
    assert [item["libc"]["family"] for item in data] == ["glibc", "musl"]
    lines = err.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: {missing}: registry {registry.address}")


def test_table_output_for_people(registry: RegistryServer, repo: str) -> None:
    ref = pushed(registry, repo, debian_python_image())
    code, out, _ = inspect(ref, "--thorough")
    assert code == 0
    assert "glibc 2.36" in out
    assert "debian 12 (bookworm)" in out
    assert "thorough mode" in out
    assert "/var/lib/dpkg/status" in out


def test_private_registry_with_a_docker_config(
    basic_registry: RegistryServer, repo: str, tmp_path: Path
) -> None:
    ref = pushed(basic_registry, repo, debian_python_image())
    code, _, err = inspect(ref)
    assert code == 2
    assert basic_registry.address in err
    config = tmp_path / "config.json"
    token = base64.b64encode(f"{basic_registry.username}:{basic_registry.password}".encode()).decode()
    config.write_text(json.dumps({"auths": {basic_registry.address: {"auth": token}}}))
    code, out, err = inspect(ref, "--docker-config", str(config), "-o", "json")
    assert (code, err) == (0, "")
    assert json.loads(out)["libc"]["family"] == "glibc"


def test_local_images_before_they_are_pushed(tmp_path: Path) -> None:
    image = debian_python_image()
    layout = write_oci_layout(tmp_path / "layout", image, names=["dev"])
    archive = write_docker_archive(tmp_path / "image.tar", image, repo_tags=["app:dev"])
    code, out, err = inspect(f"oci:{layout}", f"oci:{layout}:dev", f"docker-archive:{archive}", "-o", "json")
    assert (code, err) == (0, "")
    results = json.loads(out)
    assert [(r["os"]["id"], r["libc"]["version"]) for r in results] == [("debian", "2.36")] * 3
    assert results[0]["digest"] == image.digest
    # Alone (the three above share one resolution): oci-layout, index.json, the manifest, the config
    # and the base layer, each read once.
    code, out, _ = inspect(f"oci:{layout}", "-o", "json")
    layout_files = sum((layout / name).stat().st_size for name in ("oci-layout", "index.json"))
    read_once = layout_files + len(image.manifest) + len(image.config) + image.layers[0].size
    assert (code, json.loads(out)["bytes_fetched"]) == (0, read_once)


def test_without_an_image_the_embedded_sample_is_inspected() -> None:
    code, out, err = inspect("-o", "json")
    assert code == 0
    assert "embedded sample image" in err
    data = json.loads(out)
    assert (data["os"]["id"], data["libc"]["family"], data["runtimes"][0]["name"]) == (
        "debian",
        "glibc",
        "python",
    )
    assert data["bytes_fetched"] < data["image_size"] / 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Python:3"], "repository name must be lowercase"),
        (["x", "--platform", "linux"], "expected os/architecture"),
        (["oci:/does/not/exist"], "/does/not/exist"),
    ],
)
def test_bad_input_is_named(args: list[str], message: str) -> None:
    code, _, err = inspect(*args)
    assert code == 2
    assert message in err
