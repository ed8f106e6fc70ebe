"""images/append-partitions on a stand-in for pi-gen's image: the app and data partitions are
added after boot and root, labelled, aligned, and hold the staged trees."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from porchlight.provisioning.layout import APP_PARTITION_LABEL, DATA_PARTITION_LABEL

from .staging import IMAGES, StagedRoot, run

SECTOR = 512


def _pi_gen_like_image(path: Path) -> None:
    """Two partitions like pi-gen makes: FAT boot at 4 MiB, ext4 root after it."""
    with path.open("wb") as handle:
        handle.truncate(56 * 1024 * 1024)
    table = "label: dos\nstart=8192, size=16384, type=c\nstart=24576, size=73728, type=83\n"
    run(["sfdisk", "--quiet", str(path)], input=table)


def _partitions(image: Path) -> list[dict]:
    return json.loads(run(["sfdisk", "--json", str(image)]).stdout)["partitiontable"]["partitions"]


def _extract(image: Path, part: dict, dest: Path) -> Path:
    with image.open("rb") as src, dest.open("wb") as out:
        src.seek(part["start"] * SECTOR)
        out.write(src.read(part["size"] * SECTOR))
    return dest


def _debugfs(fs: Path, request: str) -> str:
    return run(["debugfs", "-R", request, str(fs)]).stdout


def test_app_and_data_partitions_follow_root(staged: StagedRoot, tmp_path: Path) -> None:
    image = tmp_path / "porchlight.img"
    _pi_gen_like_image(image)
    layout = staged.layout
    run(
        [
            str(IMAGES / "append-partitions"),
            "--app-size",
            "48",
            "--data-size",
            "16",
            str(image),
            str(layout.app_dir),
            str(layout.data_dir),
        ]
    )
    parts = _partitions(image)
    assert len(parts) == 4
    boot, root, app, data = parts
    assert (boot["start"], root["start"]) == (8192, 24576), "pi-gen's partitions untouched"
    for part in (app, data):
        assert part["start"] % 8192 == 0, "aligned to 4 MiB"
    assert app["start"] >= root["start"] + root["size"]
    assert data["start"] >= app["start"] + app["size"]
    assert data["start"] + data["size"] == image.stat().st_size // SECTOR, "data is last"
    assert app["size"] * SECTOR == 48 * 1024 * 1024

    app_fs = _extract(image, app, tmp_path / "app.ext4")
    data_fs = _extract(image, data, tmp_path / "data.ext4")
    assert (
        f"Filesystem volume name:   {APP_PARTITION_LABEL}"
        in run(["dumpe2fs", "-h", str(app_fs)]).stdout
    )
    assert (
        f"Filesystem volume name:   {DATA_PARTITION_LABEL}"
        in run(["dumpe2fs", "-h", str(data_fs)]).stdout
    )
    # The relative `current` link and the release survive the trip into the file system.
    assert f"releases/{staged.release}" in _debugfs(app_fs, "stat /current")
    assert "porchlight" in _debugfs(app_fs, f"ls /releases/{staged.release}/venv/bin")
    # The kiosk's folder keeps its owner and 0700.
    users = dict(
        (line.split(":")[0], line.split(":")[2])
        for line in (staged.root / "etc/passwd").read_text().splitlines()
    )
    kiosk = _debugfs(data_fs, "stat /kiosk")
    assert f"User: {users['porchlight']:>5}" in kiosk
    assert "Mode:  0700" in kiosk


def test_refuses_an_image_that_is_not_pi_gens(staged: StagedRoot, tmp_path: Path) -> None:
    image = tmp_path / "odd.img"
    _pi_gen_like_image(image)
    run(["sfdisk", "--append", "--quiet", str(image)], input="start=98304, size=2048, type=83\n")
    before = image.read_bytes()
    result = subprocess.run(
        [str(IMAGES / "append-partitions"), str(image), str(tmp_path), str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "expected pi-gen's two" in result.stderr
    assert image.read_bytes() == before
