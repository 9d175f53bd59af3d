"""What a node of `support.node` changes on this machine, and how it is found and undone: the bridge and
the fence (firewall rules) around the pod network, kube-proxy's and the kubelet's KUBE-* chains, the
kubelet's cgroups, leftover processes, the machine-wide paths, and `residue`, the check that a machine
holds none of it.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from support import kube

BRIDGE = "dgtestenv0"
POD_CIDR = "10.200.0.0/24"
BRIDGE_IP = "10.200.0.1"
FENCE_COMMENT = "distroguard-testenv-fence"
NODE_BINARIES = ("kubelet", "kube-proxy", "kube-scheduler", "kube-controller-manager", "pause")

GLOBAL_PATHS = (
    Path("/var/lib/kubelet"),
    Path("/var/log/containers"),
    Path("/var/log/pods"),
    Path("/run/containerd"),
    Path("/run/netns"),
    Path("/var/lib/cni"),
    Path("/opt/containerd"),
    Path("/usr/libexec/kubernetes"),
)
"""Where the kubelet, containerd and the CNI plugins write whatever their configured roots say;
a node removes those it created."""

FENCE_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("FORWARD", ("-s", POD_CIDR, "!", "-d", POD_CIDR, "-j", "DROP")),
    ("FORWARD", ("-d", POD_CIDR, "!", "-s", POD_CIDR, "-j", "DROP")),
    ("INPUT", ("-s", POD_CIDR, "!", "-d", BRIDGE_IP, "-j", "DROP")),
)
"""(chain, rule) of the fence, each also marked `-m comment --comment FENCE_COMMENT`; first in
their chains, in this order."""


class NodeError(RuntimeError):
    """The node could not be built, started or stopped (the message says which and why)."""


# ----------------------------------------------------------------------------------------- commands


def run(
    argv: Sequence[str], *, check: bool = True, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise NodeError(
            f"{shlex.join(argv)} exited {done.returncode}: {(done.stderr or done.stdout).strip()}"
        )
    return done


def bridge_exists() -> bool:
    return Path(f"/sys/class/net/{BRIDGE}").exists()


def ip_forward() -> str:
    return Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()


# --------------------------------------------------------------------------------- network and fence


def _fence_spec(rule: Sequence[str]) -> list[str]:
    return [*rule, "-m", "comment", "--comment", FENCE_COMMENT]


def fence_up() -> None:
    """Put the fence rules first in their chains (again, if another rule was inserted above them)."""
    fence_down()
    for chain, rule in reversed(FENCE_RULES):
        run(["iptables", "-w", "-I", chain, "1", *_fence_spec(rule)])


def fence_down() -> None:
    for chain, rule in FENCE_RULES:
        for _ in range(100):
            if run(["iptables", "-w", "-D", chain, *_fence_spec(rule)], check=False).returncode != 0:
                break


def fence_rules(chain: str) -> list[str]:
    """The rules of `chain` in the filter table, in order, as `iptables -S` prints them."""
    return [
        line for line in run(["iptables", "-w", "-S", chain]).stdout.splitlines() if line.startswith("-A")
    ]


def network_up(node_dir: Path) -> None:
    """Record which machine-wide paths exist, then make the bridge and the fence."""
    node_dir.mkdir(parents=True, exist_ok=True)
    created = [str(p) for p in GLOBAL_PATHS if not os.path.lexists(p)]
    (node_dir / "created-paths.json").write_text(json.dumps(created))
    if bridge_exists():
        raise NodeError(
            f"bridge {BRIDGE} exists: another node runs here, or one left it (scripts/testenv down)"
        )
    run(["ip", "link", "add", BRIDGE, "type", "bridge"])
    with contextlib.suppress(OSError):
        Path(f"/proc/sys/net/ipv6/conf/{BRIDGE}/disable_ipv6").write_text("1\n")
    run(["ip", "addr", "add", f"{BRIDGE_IP}/{POD_CIDR.split('/')[1]}", "dev", BRIDGE])
    run(["ip", "link", "set", BRIDGE, "up"])
    fence_up()


def _kube_chain_rules(save: str) -> Iterator[tuple[str, list[str], list[str]]]:
    """From `iptables-save` output: (table, rules jumping to a KUBE-* chain from other chains,
    KUBE-* chain names)."""
    table = ""
    jumps: list[str] = []
    chains: list[str] = []
    for line in save.splitlines():
        if line.startswith("*"):
            table, jumps, chains = line[1:], [], []
        elif line.startswith(":KUBE-"):
            chains.append(line[1:].split()[0])
        elif line.startswith("-A ") and not line.split()[1].startswith("KUBE-") and " -j KUBE-" in line:
            jumps.append(line)
        elif line == "COMMIT":
            yield table, jumps, chains


def sweep_kube_chains() -> list[str]:
    """Remove every KUBE-* chain (kube-proxy's and the kubelet's) and every jump to one, in IPv4
    and IPv6, all tables. Returns what it removed."""
    removed: list[str] = []
    for tool in ("iptables", "ip6tables"):
        if shutil.which(f"{tool}-save") is None:
            continue
        save = run([f"{tool}-save"], check=False).stdout
        for table, jumps, chains in _kube_chain_rules(save):
            for rule in jumps:
                argv = shlex.split(rule)
                run([tool, "-w", "-t", table, "-D", *argv[1:]], check=False)
                removed.append(f"{tool} -t {table} {rule}")
            for chain in chains:
                run([tool, "-w", "-t", table, "-F", chain], check=False)
            for chain in chains:
                run([tool, "-w", "-t", table, "-X", chain], check=False)
                removed.append(f"{tool} -t {table} -X {chain}")
    return removed


# ------------------------------------------------------------------------------------------ cgroups


def cgroup_roots() -> list[Path]:
    """Mount points of every cgroup hierarchy (v1 and v2) on this machine."""
    roots = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split(" - ")
        if len(fields) == 2 and fields[1].split()[0] in ("cgroup", "cgroup2"):
            roots.append(Path(fields[0].split()[4]))
    return roots


def kubepods_cgroups() -> list[Path]:
    """The kubelet's cgroups (`/kubepods` under the cgroupfs driver) that exist now."""
    return [root / "kubepods" for root in cgroup_roots() if (root / "kubepods").is_dir()]


def _cgroup_pids(top: Path) -> set[int]:
    pids: set[int] = set()
    for directory, _, _ in os.walk(top):
        with contextlib.suppress(OSError):
            pids.update(int(p) for p in (Path(directory) / "cgroup.procs").read_text().split())
    return pids


def kill_cgroup_members(timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = set().union(*(_cgroup_pids(top) for top in kubepods_cgroups()))
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


def remove_cgroups(timeout: float = 20.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        left = []
        for top in kubepods_cgroups():
            for directory, _, _ in sorted(os.walk(top), key=lambda entry: -len(entry[0])):
                try:
                    os.rmdir(directory)
                except OSError as e:
                    left.append(f"{directory}: {e}")
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.3)


# ---------------------------------------------------------------------------------------- processes


def processes_mentioning(text: str) -> list[int]:
    """Pids whose command line contains `text` (this process excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


def kill_all(pids: Sequence[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


# ------------------------------------------------------------------------------------------ residue


def residue() -> dict[str, list[str]]:
    """What of any node exists on this machine now, by kind; a machine without a node has none.

    processes: any node component, shim or pod process; mounts: any under the run directories or
    the machine-wide paths; netns: named network namespaces; bridge; iptables: fence rules and
    KUBE-* chains and jumps (IPv4 and IPv6); cgroups: `/kubepods` in any hierarchy; paths: the
    machine-wide paths and node directories.
    """
    names = {*NODE_BINARIES, "containerd", "containerd-shim-runc-v2", "runc"}
    processes = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                exe = Path(os.readlink(entry / "exe"))
                holder = (
                    exe.name == "sleep" and _mentions(entry, "infinity") and _in_other_mount_namespace(entry)
                )
                if exe.name in names or holder:
                    processes.append(f"{entry.name} {exe}")
    roots = (str(kube.run_root()), *(str(p) for p in GLOBAL_PATHS))
    mounts = [
        line
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if any(r in line for r in roots)
    ]
    netns = sorted(p.name for p in Path("/run/netns").iterdir()) if Path("/run/netns").is_dir() else []
    iptables = []
    for tool in ("iptables-save", "ip6tables-save"):
        if shutil.which(tool):
            for line in run([tool], check=False).stdout.splitlines():
                if "KUBE-" in line or FENCE_COMMENT in line:
                    iptables.append(f"{tool}: {line}")
    run_dirs = sorted(kube.run_root().glob(f"*/{kube.NODE_DIR}")) if kube.run_root().is_dir() else []
    return {
        "processes": processes,
        "mounts": mounts,
        "netns": netns,
        "bridge": [BRIDGE] if bridge_exists() else [],
        "iptables": iptables,
        "cgroups": [str(p) for p in kubepods_cgroups()],
        "paths": [str(p) for p in (*GLOBAL_PATHS, *run_dirs) if os.path.lexists(p)],
    }


def _mentions(proc: Path, text: str) -> bool:
    return text.encode() in (proc / "cmdline").read_bytes()


def _in_other_mount_namespace(proc: Path) -> bool:
    return os.readlink(proc / "ns" / "mnt") != os.readlink("/proc/self/ns/mnt")
