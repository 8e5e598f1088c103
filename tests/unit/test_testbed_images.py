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
