#!/usr/bin/env python3
"""Build the test bed's container images on this machine, without a registry or a container engine.

    images.py build OUT_DIR    build every image that is missing, one OCI layout tarball each
    images.py list             print each image's reference

Each image is one layer made from files already on this machine: static binaries built by
build.sh (Go programs; the pause binary compiled here from Kubernetes' own ``pause.c``), Debian's
static BusyBox for a shell, and the host's installed PostgreSQL with the shared libraries its
programs load (found with ``ldd``). An image is cached under OUT_DIR by a hash of its
definition and of every input file's path, size and modification time, so a rebuild happens only
when an input changes. The tarballs are what ``ctr -n k8s.io images import`` takes; references
live under ``localhost/`` so nothing ever tries to pull them.

Contract: a missing input names the image and the file and exits 1; nothing half-written is left
as a cached image (written to a temporary name, then renamed).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

HERE = Path(__file__).resolve().parent
POSTGRES_UID = 999
"""The official PostgreSQL images' UID: manifests and fsGroup settings written for them work here."""
MARIADB_UID = 999
"""The official MariaDB images' UID (user mysql)."""
FERRETDB_UID = 1000
"""The UID FerretDB runs as: not root, owner of its state directory."""


def _versions() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (HERE / "versions.env").read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


VERSIONS = _versions()
CACHE = Path(
    os.environ.get("LAZARUS_TESTBED_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lazarus-testbed"
)


def component_dir(name: str, version_key: str) -> Path:
    """The directory build.sh installs a component's binaries into."""
    return CACHE / "bin" / f"{name}-{VERSIONS[version_key]}"


class Rootfs:
    """A directory being filled as an image's root filesystem; records its inputs for the cache key."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.owners: dict[str, int] = {}

    def add(self, source: Path, dest: str, mode: int | None = None) -> None:
        """Copy SOURCE (a file, or a directory recursively, symlinks kept) to DEST in the image."""
        if not source.exists():
            raise MissingInput(str(source))
        target = self.root / dest.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir() and not source.is_symlink():
            shutil.copytree(source, target, symlinks=True, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target, follow_symlinks=True)
            if mode is not None:
                target.chmod(mode)

    def write(self, dest: str, text: str, mode: int = 0o644) -> None:
        target = self.root / dest.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
        target.chmod(mode)

    def mkdir(self, dest: str, owner: int = 0, mode: int = 0o755) -> None:
        target = self.root / dest.lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        target.chmod(mode)
        self.owners[dest.strip("/")] = owner

    def symlink(self, dest: str, points_to: str) -> None:
        target = self.root / dest.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.is_symlink() and not target.exists():
            target.symlink_to(points_to)

    def add_with_libraries(self, binaries: Iterable[Path]) -> None:
        """Copy host binaries and every shared library ``ldd`` says they load, at the same paths."""
        libraries: set[str] = set()
        for binary in binaries:
            self.add(binary, str(binary))
            libraries.update(_shared_libraries(binary))
        for library in sorted(libraries):
            self.add(Path(library), library)


class MissingInput(Exception):
    """An input file of an image does not exist (a component not built, a package not installed)."""

    def __init__(self, path: str, image: str = "") -> None:
        super().__init__(f"image {image}: input {path} is missing" if image else f"input {path} is missing")
        self.path = path
        self.image = image


def _shared_libraries(binary: Path) -> list[str]:
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False).stdout
    found = []
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) >= 3 and parts[2].startswith("/"):
            found.append(parts[2])
        elif parts and parts[0].startswith("/"):
            found.append(parts[0])  # the dynamic loader itself
    return found


@dataclasses.dataclass(frozen=True)
class Image:
    """One image: its reference, how to fill its root filesystem, and its runtime config."""

    name: str
    tag: str
    fill: Callable[[Rootfs], None]
    inputs: Callable[[], list[Path]]
    entrypoint: list[str]
    cmd: list[str] = dataclasses.field(default_factory=list)
    env: list[str] = dataclasses.field(default_factory=list)
    user: str = ""

    @property
    def reference(self) -> str:
        return f"localhost/lazarus-testbed/{self.name}:{self.tag}"


# --- image definitions -------------------------------------------------------------------------

BUSYBOX = Path("/bin/busybox")
PATH_ENV = "PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin"


def _go_module_dir() -> Path:
    gomodcache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=False).stdout.strip()
    return Path(gomodcache or Path.home() / "go/pkg/mod")


def _pause_source() -> Path:
    return _go_module_dir() / "k8s.io" / f"kubernetes@{VERSIONS['KUBERNETES_VERSION']}" / "build/pause/linux/pause.c"


def fill_base(fs: Rootfs, account: tuple[str, int, str] = ("postgres", POSTGRES_UID, "/var/lib/postgresql")) -> None:
    """BusyBox (sh, nc, wget, ...) with an /etc/passwd that knows root, nobody and ACCOUNT (name, UID, home)."""
    fs.add(BUSYBOX, "/bin/busybox", 0o755)
    applets = subprocess.run([str(BUSYBOX), "--list"], capture_output=True, text=True, check=True).stdout.split()
    for applet in applets:
        if applet != "busybox":
            fs.symlink(f"/bin/{applet}", "busybox")
    name, uid, home = account
    fs.write("/etc/passwd", f"root:x:0:0:root:/root:/bin/sh\n{name}:x:{uid}:{uid}::{home}:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
    fs.write("/etc/group", f"root:x:0:\n{name}:x:{uid}:\nnogroup:x:65534:\n")
    fs.write("/etc/nsswitch.conf", "hosts: files dns\n")
    fs.mkdir("/tmp", mode=0o1777)
    fs.mkdir("/root", mode=0o700)


def fill_pause(fs: Rootfs) -> None:
    """Kubernetes' pause program, compiled static from the source in the kubernetes module."""
    out = fs.root / "pause"
    version = VERSIONS["KUBERNETES_VERSION"]
    subprocess.run(["gcc", "-Os", "-static", "-Wall", f'-DVERSION="{version}"', "-o", str(out), str(_pause_source())], check=True)
    subprocess.run(["strip", str(out)], check=True)


def fill_postgres(fs: Rootfs) -> None:
    """The host's PostgreSQL 15 server and client programs with their libraries, on the base."""
    fill_base(fs)
    bindir = Path("/usr/lib/postgresql/15/bin")
    fs.add_with_libraries(bindir / name for name in ("postgres", "initdb", "pg_ctl", "psql", "pg_isready"))
    for lib in ("/usr/lib/postgresql/15/lib",):
        fs.add(Path(lib), lib)
    fs.add(Path("/usr/share/postgresql/15"), "/usr/share/postgresql/15")
    fs.add(Path("/usr/share/zoneinfo/UTC"), "/usr/share/zoneinfo/UTC")
    fs.add(Path("/usr/share/zoneinfo/Etc/UTC"), "/usr/share/zoneinfo/Etc/UTC")
    fs.add(HERE / "images" / "postgres-entrypoint.sh", "/usr/local/bin/docker-entrypoint.sh", 0o755)
    fs.mkdir("/var/run/postgresql", owner=POSTGRES_UID, mode=0o2775)
    fs.mkdir("/var/lib/postgresql/data", owner=POSTGRES_UID, mode=0o700)


MARIADB_PROGRAMS = [Path("/usr/sbin/mariadbd")] + [
    Path("/usr/bin") / name for name in ("mariadb", "mariadb-admin", "mariadb-dump", "my_print_defaults")
]
MARIADB_CONFIG = """\
# The test bed's MariaDB image: the official image's defaults; more settings in conf.d.
[client-server]
socket = /run/mysqld/mysqld.sock

[mariadbd]
datadir = /var/lib/mysql
bind-address = 0.0.0.0
port = 3306
skip-host-cache
skip-name-resolve
skip-log-bin

!includedir /etc/mysql/conf.d/
"""


def fill_mariadb(fs: Rootfs) -> None:
    """The host's MariaDB server and client programs with their libraries, share files and plugins."""
    fill_base(fs, ("mysql", MARIADB_UID, "/var/lib/mysql"))
    fs.add_with_libraries(MARIADB_PROGRAMS)
    fs.symlink("/usr/sbin/mysqld", "mariadbd")
    for alias, program in (("mysql", "mariadb"), ("mysqladmin", "mariadb-admin"), ("mysqldump", "mariadb-dump")):
        fs.symlink(f"/usr/bin/{alias}", program)
    fs.add(Path("/usr/share/mysql"), "/usr/share/mysql")
    fs.add(Path("/usr/lib/mysql/plugin"), "/usr/lib/mysql/plugin")
    fs.add(Path("/usr/share/zoneinfo/UTC"), "/usr/share/zoneinfo/UTC")
    fs.add(Path("/usr/share/zoneinfo/Etc/UTC"), "/usr/share/zoneinfo/Etc/UTC")
    fs.write("/etc/mysql/my.cnf", MARIADB_CONFIG)
    fs.mkdir("/etc/mysql/conf.d")
    fs.add(HERE / "images" / "mariadb-entrypoint.sh", "/usr/local/bin/docker-entrypoint.sh", 0o755)
    fs.mkdir("/run/mysqld", owner=MARIADB_UID, mode=0o775)
    fs.mkdir("/var/lib/mysql", owner=MARIADB_UID, mode=0o755)


def fill_ferretdb(fs: Rootfs) -> None:
    """FerretDB (static) with its entry point and a /state directory it owns."""
    fill_base(fs, ("ferretdb", FERRETDB_UID, "/state"))
    fs.add(component_dir("ferretdb", "FERRETDB_VERSION") / "ferretdb", "/ferretdb", 0o755)
    fs.add(HERE / "images" / "ferretdb-entrypoint.sh", "/usr/local/bin/docker-entrypoint.sh", 0o755)
    fs.mkdir("/state", owner=FERRETDB_UID, mode=0o755)


def _static_binaries(component: str, version_key: str, names: list[str]) -> Callable[[Rootfs], None]:
    def fill(fs: Rootfs) -> None:
        fill_base(fs)
        for name in names:
            fs.add(component_dir(component, version_key) / name, f"/{name}", 0o755)

    return fill


def _binary_inputs(component: str, version_key: str, names: list[str]) -> Callable[[], list[Path]]:
    return lambda: [BUSYBOX] + [component_dir(component, version_key) / name for name in names]


VELERO_BINARIES = ["velero", "velero-restore-helper", "velero-helper"]

IMAGES = [
    Image("pause", VERSIONS["KUBERNETES_VERSION"], fill_pause, lambda: [_pause_source()], ["/pause"]),
    Image("base", "1", fill_base, lambda: [BUSYBOX], ["/bin/sh"], env=[PATH_ENV]),
    Image(
        "postgres",
        "15",
        fill_postgres,
        lambda: [BUSYBOX, Path("/usr/lib/postgresql/15/bin/postgres"), HERE / "images" / "postgres-entrypoint.sh"],
        ["/usr/local/bin/docker-entrypoint.sh"],
        env=[PATH_ENV + ":/usr/lib/postgresql/15/bin", "PGDATA=/var/lib/postgresql/data", "TZ=UTC"],
        user=str(POSTGRES_UID),
    ),
    Image(
        "mariadb",
        "10.11",
        fill_mariadb,
        lambda: [BUSYBOX, *MARIADB_PROGRAMS, HERE / "images" / "mariadb-entrypoint.sh"],
        ["/usr/local/bin/docker-entrypoint.sh"],
        ["mariadbd"],
        env=[PATH_ENV, "TZ=UTC"],
        user=str(MARIADB_UID),
    ),
    Image(
        "ferretdb",
        VERSIONS["FERRETDB_VERSION"],
        fill_ferretdb,
        lambda: [BUSYBOX, component_dir("ferretdb", "FERRETDB_VERSION") / "ferretdb", HERE / "images" / "ferretdb-entrypoint.sh"],
        ["/usr/local/bin/docker-entrypoint.sh"],
        env=[
            PATH_ENV,
            "FERRETDB_HANDLER=sqlite",
            "FERRETDB_SQLITE_URL=file:/state/data/",
            "FERRETDB_STATE_DIR=/state",
            "FERRETDB_LISTEN_ADDR=:27017",
            "FERRETDB_DEBUG_ADDR=:8088",
            "FERRETDB_TELEMETRY=disable",
        ],
        user=str(FERRETDB_UID),
    ),
    Image(
        "velero",
        VERSIONS["VELERO_VERSION"],
        _static_binaries("velero", "VELERO_VERSION", VELERO_BINARIES),
        _binary_inputs("velero", "VELERO_VERSION", VELERO_BINARIES),
        ["/velero"],
        env=[PATH_ENV],
    ),
    Image(
        "coredns",
        VERSIONS["COREDNS_VERSION"],
        _static_binaries("coredns", "COREDNS_VERSION", ["coredns"]),
        _binary_inputs("coredns", "COREDNS_VERSION", ["coredns"]),
        ["/coredns"],
    ),
]


# --- OCI layout --------------------------------------------------------------------------------


def _cache_key(image: Image) -> str:
    digest = hashlib.sha256()
    digest.update(Path(__file__).read_bytes())
    digest.update(json.dumps([image.reference, image.entrypoint, image.cmd, image.env, image.user]).encode())
    for path in image.inputs():
        if not path.exists():
            raise MissingInput(str(path))
        stat = path.stat()
        digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:16]


def _layer(fs: Rootfs) -> bytes:
    """The root filesystem as one uncompressed tar layer: fixed mtime, owner root unless set."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(fs.root.rglob("*")):
            relative = str(path.relative_to(fs.root))
            info = tar.gettarinfo(str(path), arcname=relative)
            info.uid = info.gid = fs.owners.get(relative, 0)
            info.uname = info.gname = ""
            info.mtime = 0
            if info.isfile():
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    return buffer.getvalue()


def _blob(blobs: Path, data: bytes) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def write_oci_archive(image: Image, target: Path) -> None:
    """Fill the image's root filesystem and write it as an OCI image layout tarball at TARGET."""
    with tempfile.TemporaryDirectory(prefix=f"image-{image.name}-", dir=target.parent) as work:
        fs = Rootfs(Path(work) / "rootfs")
        fs.root.mkdir()
        image.fill(fs)
        layer = _layer(fs)
        layout = Path(work) / "layout"
        blobs = layout / "blobs" / "sha256"
        blobs.mkdir(parents=True)
        layer_desc = _blob(blobs, layer)
        config = {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Entrypoint": image.entrypoint, "Cmd": image.cmd, "Env": image.env, "User": image.user},
            "rootfs": {"type": "layers", "diff_ids": [layer_desc["digest"]]},
        }
        config_desc = _blob(blobs, json.dumps(config, sort_keys=True).encode())
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config_desc},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer_desc}],
        }
        manifest_desc = _blob(blobs, json.dumps(manifest, sort_keys=True).encode())
        index = {
            "schemaVersion": 2,
            "manifests": [
                {
                    "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    **manifest_desc,
                    "annotations": {
                        "io.containerd.image.name": image.reference,
                        "org.opencontainers.image.ref.name": image.tag,
                    },
                }
            ],
        }
        (layout / "index.json").write_text(json.dumps(index))
        (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        partial = target.with_suffix(".partial")
        with tarfile.open(partial, "w") as tar:
            for name in ("oci-layout", "index.json", "blobs"):
                tar.add(layout / name, arcname=name)
        partial.rename(target)


def archive_path(out_dir: Path, image: Image) -> Path:
    """Where IMAGE's archive is cached under OUT_DIR; raises MissingInput naming the image and the file."""
    try:
        return out_dir / f"{image.name}-{_cache_key(image)}.tar"
    except MissingInput as missing:
        raise MissingInput(missing.path, image.reference) from None


def build_image(out_dir: Path, image: Image) -> Path:
    """IMAGE's archive under OUT_DIR, built (and older archives of it removed) when missing."""
    target = archive_path(out_dir, image)
    if not target.exists():
        print(f"[testbed] building image {image.reference}", file=sys.stderr)
        for stale in out_dir.glob(f"{image.name}-*.tar"):
            stale.unlink()
        try:
            write_oci_archive(image, target)
        except MissingInput as missing:
            raise MissingInput(missing.path, image.reference) from None
    return target


def build(out_dir: Path) -> list[Path]:
    """Build every image missing from OUT_DIR; return the archives of all images."""
    out_dir.mkdir(parents=True, exist_ok=True)
    return [build_image(out_dir, image) for image in IMAGES]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build_parser = sub.add_parser("build")
    build_parser.add_argument("out_dir", type=Path)
    sub.add_parser("list")
    args = parser.parse_args(argv)
    if args.command == "list":
        for image in IMAGES:
            print(image.reference)
        return 0
    try:
        for archive in build(args.out_dir):
            print(archive)
    except MissingInput as missing:
        print(f"[testbed] ERROR: step 'images': {missing} (run build.sh first)", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as failed:
        print(f"[testbed] ERROR: step 'images': {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
