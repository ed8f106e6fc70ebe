"""Fixtures for the image checks (helpers in staging.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from porchlight import __version__
from porchlight.provisioning.layout import DeviceLayout

from .staging import StagedRoot, assemble, build_wheel, make_base_root, make_tuf_root


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    scratch = tmp_path_factory.mktemp("wheel-build")
    return build_wheel(scratch / "wheels", scratch)


@pytest.fixture(scope="session")
def tuf_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tuf_root(tmp_path_factory.mktemp("release-repo"))


@pytest.fixture(scope="session")
def staged(tmp_path_factory: pytest.TempPathFactory, wheels: Path, tuf_root: Path) -> StagedRoot:
    root = tmp_path_factory.mktemp("staged-root")
    make_base_root(root)
    result = assemble(root, __version__, wheels, tuf_root)
    if result.returncode != 0:
        pytest.fail(f"assemble-root failed:\n{result.stdout}\n{result.stderr}")
    return StagedRoot(
        root=root, layout=DeviceLayout(root), release=__version__, wheels=wheels, tuf_root=tuf_root
    )
