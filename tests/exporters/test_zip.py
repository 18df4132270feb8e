"""Zipping (exporters._zip): large files zipped in place, and the fast member's bytes and CRC."""

from __future__ import annotations

import zipfile
from pathlib import Path

from exporters._zip import zip_if_large


def test_zip_if_large(tmp_path: Path) -> None:
    path = tmp_path / "scans_export.csv"
    content = b"scan_id,zone\n" + b"".join(f"{i},zone {i % 9}\n".encode() for i in range(20_000))
    path.write_bytes(content)

    assert zip_if_large(path, len(content)) == path  # not larger than the threshold
    assert path.exists()

    zipped = zip_if_large(path, 1_000)
    assert zipped == tmp_path / "scans_export.csv.zip"
    assert not path.exists()
    with zipfile.ZipFile(zipped) as archive:
        assert archive.namelist() == ["scans_export.csv"]
        info = archive.getinfo("scans_export.csv")
        assert info.compress_type == zipfile.ZIP_DEFLATED and info.compress_size < len(content)
        assert archive.read("scans_export.csv") == content
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scans_export.csv.zip"]  # no partial left


def test_fast_zip_member_round_trips_and_passes_its_crc(tmp_path: Path) -> None:
    from exporters._zip import fast_member

    payload = b"".join(f"{i},scan {i},=x\n".encode() for i in range(200_000))
    path = tmp_path / "x.zip"
    with zipfile.ZipFile(path, "w") as archive, fast_member(archive, "x.csv") as member:
        member.write(payload)
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None and archive.read("x.csv") == payload
        assert archive.getinfo("x.csv").compress_size < len(payload) / 3
