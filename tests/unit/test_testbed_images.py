"""The test bed's image builder (``e2e/testbed/images.py``): its cache key and its missing-input error."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

IMAGES_PY = Path(__file__).resolve().parents[2] / "e2e" / "testbed" / "images.py"


@pytest.fixture(scope="module")
def images() -> ModuleType:
    spec = importlib.util.spec_from_file_location("testbed_images", IMAGES_PY)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


def _image(images: ModuleType, inputs: list[Path], env: list[str] | None = None) -> object:
    return images.Image("demo", "1", lambda fs: None, lambda: inputs, ["/bin/sh"], env=env or [])


def test_the_cache_key_changes_when_an_input_file_changes(images: ModuleType, tmp_path: Path) -> None:
    source = tmp_path / "entrypoint.sh"
    source.write_text("#!/bin/sh\n")
    image = _image(images, [source])
    before = images.archive_path(tmp_path, image)
    assert images.archive_path(tmp_path, image) == before, "the key is stable while nothing changes"
    source.write_text("#!/bin/sh\nexec true\n")
    os.utime(source, ns=(1, 1))
    assert images.archive_path(tmp_path, image) != before


def test_the_cache_key_changes_when_the_definition_changes(images: ModuleType, tmp_path: Path) -> None:
    source = tmp_path / "binary"
    source.write_bytes(b"\x7fELF")
    plain = images.archive_path(tmp_path, _image(images, [source]))
    assert images.archive_path(tmp_path, _image(images, [source], env=["TZ=UTC"])) != plain


def test_a_missing_input_names_the_image_and_the_file(images: ModuleType, tmp_path: Path) -> None:
    missing = tmp_path / "not-built" / "ferretdb"
    with pytest.raises(images.MissingInput) as raised:
        images.archive_path(tmp_path, _image(images, [missing]))
    assert "localhost/lazarus-testbed/demo:1" in str(raised.value)
    assert str(missing) in str(raised.value)


def test_every_image_has_its_own_archive_name(images: ModuleType) -> None:
    """Old archives are found by name prefix: no image's name may be another's prefix."""
    names = [image.name for image in images.IMAGES]
    assert not [(a, b) for a in names for b in names if a != b and b.startswith(f"{a}-")]


def _project(root: Path) -> None:
    for name in ("Dockerfile", "manifests/image/requirements.lock", "setup.cfg", "pyproject.toml", "README.md"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(f"{name}\n")
    (root / "lazarus").mkdir()
    (root / "lazarus" / "__init__.py").write_text('__version__ = "1.2.3"\n')


def test_the_operator_key_follows_the_contents_of_its_inputs(
    images: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(tmp_path)
    monkeypatch.setattr(images, "PROJECT", tmp_path)
    assert images.operator_reference() == "localhost/lazarus/operator:1.2.3"
    before = images.operator_key("base1")
    os.utime(tmp_path / "Dockerfile", ns=(1, 1))
    assert images.operator_key("base1") == before, "a touched file with the same contents keeps the cache"
    assert images.operator_key("base2") != before, "a new base rebuilds"
    (tmp_path / "lazarus" / "cli.py").write_text("print()\n")
    with_module = images.operator_key("base1")
    assert with_module != before
    (tmp_path / "manifests/image/requirements.lock").write_text("pyyaml==6.0.4\n")
    assert images.operator_key("base1") != with_module


def test_a_missing_operator_input_names_the_image_and_the_file(
    images: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _project(tmp_path)
    (tmp_path / "setup.cfg").unlink()
    monkeypatch.setattr(images, "PROJECT", tmp_path)
    with pytest.raises(images.MissingInput) as raised:
        images.operator_key("base1")
    assert "localhost/lazarus/operator:1.2.3" in str(raised.value)
    assert str(tmp_path / "setup.cfg") in str(raised.value)
