"""Host side of the aarch64 check: Debian packages, binfmt, cached arm64 root filesystems, chroot runs.

An arm64 Debian root filesystem is made with ``mmdebstrap`` and entered with
``chroot``; the kernel hands every aarch64 binary to ``qemu-aarch64-static``
(``binfmt-support``, registered with the F flag, so the emulator need not be
inside the root filesystem). Two emulator traps are avoided on every run
(neither happens on a board):

* QEMU's user mode passes the host's x86 ``/proc/cpuinfo`` through, and the
  ``cpuinfo`` library inside LiteRT's XNNPACK delegate then writes through a
  NULL pointer in ``allocate_tensors()``: a Raspberry Pi's ``/proc/cpuinfo``
  (:data:`CPUS`) is bind-mounted over the chroot's.
* QEMU 7.2's default CPU model (``max``, with SVE and SME) gives wrong int8
  results from LiteRT: ``QEMU_CPU`` pins a Pi's core (Cortex-A72 for a Pi 4,
  Cortex-A76 for a Pi 5), and the probe reads the hardware capabilities the
  program actually sees (``/proc/self/auxv``) so that a model that did not
  take is a failed check, not a silent one.

Every chroot run happens inside its own mount namespace (``unshare --mount``):
its mounts vanish with it, whatever way it ends, and nothing is left mounted
on the host. Root filesystems are cached under ``~/.cache/edge_embedder_arm``
(or ``$EDGE_EMBEDDER_ARM_CACHE``), keyed by release and a hash of what goes
into them; a run works on a copy, so the cache stays pristine.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

#: Debian packages the host needs (``arch-test`` is how mmdebstrap checks that foreign binaries run).
HOST_PACKAGES = ("qemu-user-static", "binfmt-support", "mmdebstrap", "arch-test")
#: What goes into each root filesystem: the Python a Raspberry Pi OS user has, with venv, and CA certificates.
ROOTFS_PACKAGES = ("python3", "python3-venv", "ca-certificates")
#: Raspberry Pi OS (64-bit) releases and the CPython each ships.
RELEASES = {"bookworm": "3.11", "trixie": "3.13"}
#: Bumped when the way a root filesystem is made changes (part of the cache key).
ROOTFS_FORMAT = 1
DEFAULT_MIRROR = "http://deb.debian.org/debian"

HWCAP_ASIMDDP = 1 << 20  # dot product (Cortex-A76 has it, Cortex-A72 has not)
HWCAP_SVE = 1 << 22  # QEMU's "max" model advertises it; no Raspberry Pi has it


@dataclass(frozen=True)
class CpuModel:
    """A Raspberry Pi's CPU: the QEMU model to emulate and the ``/proc/cpuinfo`` the board shows."""

    board: str
    qemu_cpu: str
    variant: int
    part: int
    revision: int
    features: str
    model_line: str
    revision_code: str
    has_dotprod: bool

    def cpuinfo(self, cores: int) -> str:
        """``/proc/cpuinfo`` as the board's 64-bit kernel prints it (one block per emulated core)."""
        block = (
            "processor\t: {n}\nBogoMIPS\t: 108.00\nFeatures\t: " + self.features + "\nCPU implementer\t: 0x41\n"
            f"CPU architecture: 8\nCPU variant\t: {self.variant:#x}\nCPU part\t: {self.part:#05x}\n"
            f"CPU revision\t: {self.revision}\n\n"
        )
        return "".join(block.format(n=n) for n in range(cores)) + (
            f"Revision\t: {self.revision_code}\nSerial\t\t: 100000000a1b2c3d\nModel\t\t: {self.model_line}\n"
        )


CPUS = {
    "pi4": CpuModel("Raspberry Pi 4", "cortex-a72", 0x0, 0xD08, 3, "fp asimd evtstrm crc32 cpuid",
                    "Raspberry Pi 4 Model B Rev 1.5", "d03115", has_dotprod=False),
    "pi5": CpuModel("Raspberry Pi 5", "cortex-a76", 0x4, 0xD0B, 1,
                    "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp",
                    "Raspberry Pi 5 Model B Rev 1.0", "d04170", has_dotprod=True),
}


class EmulationError(RuntimeError):
    """The host cannot run the check (not root, a package that will not install, no binfmt)."""


def _log(msg: str) -> None:
    print(f"[arm {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run_logged(cmd: Sequence[str], log: Path, *, timeout: float, cwd: Optional[Path] = None,
               env: Optional[dict] = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run ``cmd`` with stdout and stderr appended to ``log``; raise with the log's tail on failure."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as fh:
        fh.write(f"\n$ {' '.join(map(str, cmd))}\n")
        fh.flush()
        proc = subprocess.run(list(map(str, cmd)), stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              timeout=timeout, cwd=cwd, env=env)
    if check and proc.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-25:])
        raise subprocess.CalledProcessError(proc.returncode, cmd, output=tail)
    return proc


# -- the host -----------------------------------------------------------------------------------


def _missing_packages(packages: Sequence[str]) -> list[str]:
    missing = []
    for p in packages:
        q = subprocess.run(["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True)
        if q.returncode != 0 or "install ok installed" not in q.stdout:
            missing.append(p)
    return missing


def ensure_host(log: Path) -> str:
    """Install the host packages if missing, register QEMU for aarch64 binaries; return QEMU's version line."""
    if os.geteuid() != 0:
        raise EmulationError("the aarch64 check needs root (apt-get, chroot and mounts); run it as root")
    if shutil.which("apt-get") is None or shutil.which("dpkg-query") is None:
        raise EmulationError("the aarch64 check needs a Debian-based host (apt-get, dpkg-query)")
    missing = _missing_packages(HOST_PACKAGES)
    if missing:
        _log(f"installing Debian packages: {' '.join(missing)}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run_logged(["apt-get", "update", "-q"], log, timeout=600, env=env)
        run_logged(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], log, timeout=1200, env=env)
    binfmt = Path("/proc/sys/fs/binfmt_misc")
    if not (binfmt / "status").exists():
        run_logged(["mount", "-t", "binfmt_misc", "binfmt_misc", str(binfmt)], log, timeout=60)
    entry = binfmt / "qemu-aarch64"
    if not entry.exists() or not entry.read_text().startswith("enabled"):
        run_logged(["update-binfmts", "--enable", "qemu-aarch64"], log, timeout=60)
    if not entry.exists() or not entry.read_text().startswith("enabled"):
        raise EmulationError(f"aarch64 binaries are not handed to QEMU: {entry} is missing or disabled")
    flags = next((line.split(":", 1)[1].strip() for line in entry.read_text().splitlines() if line.startswith("flags:")), "")
    if "F" not in flags:
        raise EmulationError(f"the qemu-aarch64 binfmt entry lacks the F flag (flags: {flags!r}); "
                             "it must be registered by qemu-user-static so that chroots need no emulator inside")
    return subprocess.run(["qemu-aarch64-static", "--version"], capture_output=True, text=True).stdout.splitlines()[0]


# -- root filesystems ---------------------------------------------------------------------------


def cache_dir() -> Path:
    return Path(os.environ.get("EDGE_EMBEDDER_ARM_CACHE", Path.home() / ".cache" / "edge_embedder_arm"))


def rootfs_key(release: str) -> str:
    spec = {"release": release, "arch": "arm64", "variant": "minbase", "packages": sorted(ROOTFS_PACKAGES),
            "format": ROOTFS_FORMAT}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]


MARKER = ".edge_embedder_rootfs.json"


def cached_rootfs(release: str, log: Path, mirror: str = DEFAULT_MIRROR, rebuild: bool = False) -> tuple[Path, bool]:
    """The cached arm64 root filesystem of ``release`` (made now if missing); ``(path, was_cached)``."""
    base = cache_dir() / "rootfs"
    key = rootfs_key(release)
    path = base / f"{release}-{key}"
    if rebuild and path.exists():
        shutil.rmtree(path)
    if (path / MARKER).is_file():
        return path, True
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".{release}-{key}.tmp"
    if tmp.exists():
        shutil.rmtree(tmp)
    _log(f"{release}: building the arm64 root filesystem with mmdebstrap (several minutes under emulation)")
    # In a mount namespace of its own: mmdebstrap mounts /proc, /sys and /dev inside the tree while it works, and a
    # build that is killed half-way must not leave them mounted on the host.
    run_logged(["unshare", "--mount", "--propagation", "private", "mmdebstrap", "--arch=arm64", "--variant=minbase",
                f"--include={','.join(ROOTFS_PACKAGES)}", release, tmp, mirror], log, timeout=3600)
    (tmp / MARKER).write_text(json.dumps({"release": release, "key": key, "packages": list(ROOTFS_PACKAGES),
                                          "mirror": mirror, "built": time.strftime("%Y-%m-%d")}, indent=1))
    if path.exists():
        shutil.rmtree(path)
    tmp.rename(path)
    for stale in base.glob(f"{release}-*"):  # other keys of this release: superseded
        if stale != path:
            shutil.rmtree(stale, ignore_errors=True)
    return path, False


def working_copy(rootfs: Path, dest: Path) -> Path:
    """A copy of a cached root filesystem to install into (the cache itself is never written)."""
    if dest.exists():
        shutil.rmtree(dest)
    subprocess.run(["cp", "-a", "--reflink=auto", str(rootfs), str(dest)], check=True)
    return dest


# -- running inside ----------------------------------------------------------------------------

# Runs as root in a new mount namespace: /proc, /dev, /sys, the Pi's cpuinfo, the host's CA bundle (this
# machine's TLS trust) and the pip download cache are mounted for this process tree only.
_ENTER = r"""
set -e
root=$1; cpuinfo=$2; pipcache=$3; shift 3
mount -t proc proc "$root/proc"
mount --bind "$cpuinfo" "$root/proc/cpuinfo"
mount --rbind /dev "$root/dev"
mount --rbind /sys "$root/sys"
ca=/etc/ssl/certs/ca-certificates.crt
if [ -f "$ca" ] && [ -f "$root$ca" ]; then mount --bind "$ca" "$root$ca"; fi
mkdir -p "$root/root/.cache/pip" "$pipcache"
mount --bind "$pipcache" "$root/root/.cache/pip"
cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
exec chroot "$root" "$@"
"""


@dataclass
class Chroot:
    """An arm64 root filesystem entered as a Raspberry Pi of ``cpu`` (a key of :data:`CPUS`)."""

    root: Path
    release: str
    cpuinfo_dir: Path

    def cpuinfo_file(self, cpu: str) -> Path:
        p = self.cpuinfo_dir / f"cpuinfo-{cpu}"
        if not p.exists():
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_text(CPUS[cpu].cpuinfo(os.cpu_count() or 1))
        return p

    def run(self, script: str, log: Path, *, cpu: str, timeout: float, check: bool = True,
            env: Optional[dict] = None) -> subprocess.CompletedProcess:
        """Run a shell script (``sh -ec``) inside, as root, with a clean environment."""
        model = CPUS[cpu]
        pipcache = cache_dir() / f"pip-{self.release}"
        inner_env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "QEMU_CPU": model.qemu_cpu,
            # pip verifies TLS with its own bundle unless told otherwise; this machine's trust store is the host's.
            "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt",
            "PIP_DISABLE_PIP_VERSION_CHECK": "1",
            "PIP_DEFAULT_TIMEOUT": os.environ.get("PIP_DEFAULT_TIMEOUT", "180"),
        }
        inner_env.update(env or {})
        cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", _ENTER, "enter", str(self.root),
               str(self.cpuinfo_file(cpu)), str(pipcache), "env", "-i",
               *(f"{k}={v}" for k, v in inner_env.items()), "/bin/sh", "-ec", script]
        return run_logged(cmd, log, timeout=timeout, check=check)
