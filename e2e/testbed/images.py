#!/usr/bin/env python3
"""Build the test bed's container images on this machine, without a registry or a container engine.

    images.py build OUT_DIR             build every test-bed image that is missing, one OCI layout tarball each
    images.py build-operator OUT_DIR    build the Lazarus image from the project's Dockerfile (buildah)
    images.py list                      print each image's reference (the operator's marked: `build` skips it)

Each image is one layer made from files already on this machine: static binaries built by
build.sh (Go programs; the pause binary compiled here from Kubernetes' own ``pause.c``), Debian's
static BusyBox for a shell, and the host's installed PostgreSQL and MariaDB with the shared
libraries their programs load (found with ``ldd``). An image is cached under OUT_DIR by a hash of its
definition and of every input file's path, size and modification time, so a rebuild happens only
when an input changes. The tarballs are what ``ctr -n k8s.io images import`` takes; references
live under ``localhost/`` so nothing ever tries to pull them.

The operator image is not one of them: ``build-operator`` runs the project's ``Dockerfile`` with
buildah FROM a Python base made by mmdebstrap, cached by the contents of its inputs (see
``build_operator``), so ``build`` (and ``make test``) never pays for it.

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
FERRETDB_UID = 65532
"""The UID FerretDB runs as (as the official image's nonroot user): owner of its state directory."""


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
        "1",
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
        runtime = {"Entrypoint": image.entrypoint, "Cmd": image.cmd, "Env": image.env, "User": image.user}
        write_layout(target, _layer(fs), runtime, image.reference)


def write_layout(target: Path, layer: bytes, runtime: dict[str, object], reference: str) -> None:
    """Write a one-layer image (LAYER an uncompressed tar, RUNTIME its config) as an OCI layout tarball.

    The index names the image REFERENCE, as ``ctr images import`` reads it. Written to a temporary
    name beside TARGET, then renamed.
    """
    with tempfile.TemporaryDirectory(prefix="layout-", dir=target.parent) as work:
        layout = Path(work)
        blobs = layout / "blobs" / "sha256"
        blobs.mkdir(parents=True)
        layer_desc = _blob(blobs, layer)
        config = {
            "architecture": "amd64",
            "os": "linux",
            "config": runtime,
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
                        "io.containerd.image.name": reference,
                        "org.opencontainers.image.ref.name": reference.rsplit(":", 1)[1],
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


# --- the operator image, from the project's Dockerfile ----------------------------------------

PROJECT = HERE.parents[1]
PYTHON_PACKAGES = ["python3", "python3-venv", "python3-pip", "python-is-python3", "passwd"]
PYTHON_SUITE = "bookworm"
PYTHON_REFERENCE = "localhost/lazarus-testbed/python:3.11"
HOST_CA_BUNDLE = Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")
"""The host's trusted certificates, mounted read-only over the base's for the RUN steps only (pip
then trusts what the host trusts, e.g. a TLS-inspecting proxy); never part of the image."""
OPERATOR_INPUTS = ["Dockerfile", "manifests/image/requirements.lock", "setup.cfg", "pyproject.toml", "README.md"]


def operator_reference() -> str:
    """``localhost/lazarus/operator:<package version>``, the version read from ``lazarus/__init__.py``."""
    for line in (PROJECT / "lazarus" / "__init__.py").read_text().splitlines():
        if line.startswith("__version__"):
            return f"localhost/lazarus/operator:{line.split('=', 1)[1].strip().strip(chr(34) + chr(39))}"
    raise MissingInput(str(PROJECT / "lazarus" / "__init__.py"), "localhost/lazarus/operator")


def _python_base_command(target: Path) -> list[str]:
    """mmdebstrap making the Python base's root filesystem as a tarball at TARGET (no docs, no apt lists)."""
    return [
        "mmdebstrap", "--quiet", "--variant=essential", f"--include={','.join(PYTHON_PACKAGES)}",
        "--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-exclude=/usr/share/man/*",
        "--dpkgopt=path-exclude=/usr/share/locale/*",
        '--customize-hook=rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*',
        PYTHON_SUITE, str(target),
    ]  # fmt: skip


def python_base_key() -> str:
    """The Python base's cache key: its mmdebstrap command (suite and packages)."""
    return hashlib.sha256(json.dumps(_python_base_command(Path("rootfs.tar"))).encode()).hexdigest()[:16]


def build_python_base(out_dir: Path) -> Path:
    """The Python 3.11 base image (Debian, mmdebstrap) as an OCI layout tarball, built when missing."""
    target = out_dir / f"python-{python_base_key()}.tar"
    if target.exists():
        return target
    print(f"[testbed] building image {PYTHON_REFERENCE} (mmdebstrap)", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="python-base-", dir=out_dir) as work:
        rootfs = Path(work) / "rootfs.tar"
        subprocess.run(_python_base_command(rootfs), check=True, stdout=subprocess.DEVNULL)
        runtime = {"Env": [PATH_ENV, "LANG=C.UTF-8"], "Cmd": ["python3"]}
        write_layout(target, rootfs.read_bytes(), runtime, PYTHON_REFERENCE)
    return target


def _operator_sources() -> list[Path]:
    sources = [PROJECT / name for name in OPERATOR_INPUTS]
    sources += sorted(path for path in (PROJECT / "lazarus").rglob("*") if path.is_file() and "__pycache__" not in path.parts)
    return sources


def operator_key(python_base: str) -> str:
    """A hash of the Dockerfile, the lock file, the packaging files, the sources and the base's key.

    Contents, not modification times: a fresh checkout of the same commit hits the cache.
    """
    digest = hashlib.sha256(f"{operator_reference()}\n{python_base}\n".encode())
    for path in _operator_sources():
        if not path.exists():
            raise MissingInput(str(path), operator_reference())
        digest.update(f"{path.relative_to(PROJECT)}\n".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _buildah(*args: str) -> list[str]:
    """buildah with its own vfs storage under the test-bed cache (never the host's or the work tree's)."""
    storage = CACHE / "buildah"
    return ["buildah", "--root", str(storage / "root"), "--runroot", str(storage / "run"), "--storage-driver", "vfs", *args]


def _ca_volume() -> list[str]:
    if not HOST_CA_BUNDLE.is_file():
        return []
    return ["--volume", f"{HOST_CA_BUNDLE}:/etc/ssl/certs/ca-certificates.crt:ro"]


def build_operator(out_dir: Path) -> Path:
    """The operator image built by buildah from the project's Dockerfile, as an OCI archive; cached.

    FROM a local Python base (``--build-arg PYTHON_IMAGE=oci-archive:...``); RUN steps in a chroot
    with the host's network (pip). The image is removed from buildah's storage once archived.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    base = build_python_base(out_dir)
    reference = operator_reference()
    target = out_dir / f"operator-{operator_key(python_base_key())}.tar"
    if target.exists():
        return target
    print(f"[testbed] building image {reference} (buildah, Dockerfile)", file=sys.stderr)
    partial = target.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    build = ["bud", "--isolation", "chroot", "--layers=false", "--pull=false", *_ca_volume(), "--build-arg",
             f"PYTHON_IMAGE=oci-archive:{base}", "--tag", reference, "--file", str(PROJECT / "Dockerfile"), str(PROJECT)]  # fmt: skip
    try:
        # buildah's progress goes to stderr: stdout carries only the archive's path.
        subprocess.run(_buildah(*build), check=True, stdout=sys.stderr)
        push = ["push", "--quiet", reference, f"oci-archive:{partial}:{reference}"]
        subprocess.run(_buildah(*push), check=True, stdout=sys.stderr)
    finally:
        subprocess.run(_buildah("rmi", "--all", "--force"), check=False, capture_output=True)
    for stale in out_dir.glob("operator-*.tar"):
        stale.unlink()
    partial.rename(target)
    return target


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    build_parser = sub.add_parser("build")
    build_parser.add_argument("out_dir", type=Path)
    operator_parser = sub.add_parser("build-operator", help="the Lazarus image from the Dockerfile (buildah)")
    operator_parser.add_argument("out_dir", type=Path)
    sub.add_parser("list")
    args = parser.parse_args(argv)
    if args.command == "list":
        for image in IMAGES:
            print(image.reference)
        print(operator_reference(), "(build-operator)")
        return 0
    try:
        for archive in build(args.out_dir) if args.command == "build" else [build_operator(args.out_dir)]:
            print(archive)
    except MissingInput as missing:
        print(f"[testbed] ERROR: step 'images': {missing} (run build.sh first)", file=sys.stderr)
        return 1
    except FileNotFoundError as absent:
        print(f"[testbed] ERROR: step 'images': {absent.filename} is not installed (run system-deps.sh)", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as failed:
        print(f"[testbed] ERROR: step 'images': {failed}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
