"""Small runnable images made of real Debian packages, for pods on the test node.

    image = busybox_image()          # Debian 12: base-files, libc6, busybox-static (/bin/sh, wget, nc...)
    await push(f"http://{node.registry}", "debian/busybox", "12", image)

The packages come from Debian's archive through `support.debian_packages` (cached after the first
download); nothing is compiled or invented here: the program that runs is Debian's BusyBox.
"""

from __future__ import annotations

import functools

from support.debian_packages import dpkg_status, fetch_packages, read_deb, rootfs_tar
from support.images import BuiltImage, ImageBuilder

BOOKWORM_PACKAGES = ("base-files", "libc6", "busybox-static")
BUSYBOX_APPLETS = ("sh", "cat", "echo", "sleep", "wget", "nc", "ls", "env", "id", "grep")


@functools.cache
def busybox_image(suite: str = "bookworm") -> BuiltImage:
    """Debian (12 by default) with BusyBox as /bin/busybox and its applets linked in /bin."""
    debs = fetch_packages(suite, BOOKWORM_PACKAGES)
    packages = [read_deb(debs[name]) for name in BOOKWORM_PACKAGES]
    tar = rootfs_tar(
        packages,
        extra={"var/lib/dpkg/status": dpkg_status(packages)},
        symlinks={f"usr/local/bin/{applet}": "/bin/busybox" for applet in BUSYBOX_APPLETS},
    )
    return (
        ImageBuilder()
        .raw_layer(tar, "gzip", created_by=f"debian:{suite} (base-files, libc6, busybox-static)")
        .env("PATH=/usr/local/bin:/usr/bin:/bin")
        .config_fields(config={"Env": ["PATH=/usr/local/bin:/usr/bin:/bin"], "Cmd": ["sh"]})
        .build()
    )
