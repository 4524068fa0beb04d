"""Hostile archives through `mangacolor colorize`: unsafe names, links, bombs, lying headers, overlaps,
encrypted and corrupt entries, archives inside archives (helpers and the rules every run keeps:
``tests/hostile.py``)."""

from __future__ import annotations

import zipfile

import numpy as np

from mangacolor_cli.pages import archive_reader
from tests.hostile import PAGE, Run, entries, entries_raw, is_colored, make_cbz, patch_entry


# ---------------------------------------------------------------------- archive entries
def test_unsafe_names_and_symlink_entries_are_left_out_and_nothing_escapes(tmp_path, indir, tiny_checkpoint):
    link = zipfile.ZipInfo("link.png")
    link.external_attr = 0o120777 << 16
    cbz = make_cbz(indir / "evil.cbz", [("../escape.png", PAGE), ("../../deep.png", PAGE), ("/abs.png", PAGE),
                                        ("C:/win.png", PAGE), ("..\\back.png", PAGE), (link, b"/etc/passwd"),
                                        ("1.png", PAGE), ("2.png", PAGE)])
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 1 and len(run.errors) == 6
    assert all(f"{cbz}:" in line for line in run.errors)
    out = entries(tmp_path / "out.cbz")
    assert [n for n, _ in out] == ["1.png", "2.png"] and all(is_colored(d) for _, d in out)


def test_entry_over_the_ratio_limit_is_kept_as_stored_and_the_rest_colored(tmp_path, indir, tiny_checkpoint):
    cbz = make_cbz(indir / "bomb.cbz", [("1.png", PAGE), ("zeros.png", bytes(4 * 2**20)), ("2.png", PAGE)], deflate=True)
    assert cbz.stat().st_size < 64 * 1024
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 1 and len(run.errors) == 1 and "zeros.png" in run.errors[0] and "ratio" in run.errors[0]
    assert [n for n, _ in entries_raw(tmp_path / "out.cbz")] == ["1.png", "zeros.png", "2.png"]
    assert dict(entries_raw(tmp_path / "out.cbz"))["zeros.png"] == dict(entries_raw(cbz))["zeros.png"]


def test_entry_over_the_size_limit_is_kept_as_stored_not_decompressed(tmp_path, indir, tiny_checkpoint, monkeypatch):
    monkeypatch.setattr(archive_reader, "MAX_ENTRY_BYTES", 2**20)
    big = np.random.default_rng(0).integers(0, 256, 2**20 + 10, dtype=np.uint8).tobytes()
    cbz = make_cbz(indir / "big.cbz", [("1.png", PAGE), ("big.bin", big)])
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 1 and "big.bin" in run.errors[0] and "entry limit" in run.errors[0]
    assert entries(tmp_path / "out.cbz") == [("1.png", entries(tmp_path / "out.cbz")[0][1]), ("big.bin", big)]


def test_archive_declaring_a_huge_total_is_refused_whole(tmp_path, indir, tiny_checkpoint, monkeypatch):
    monkeypatch.setattr(archive_reader, "MAX_ARCHIVE_BYTES", 2 * 2**20)
    cbz = make_cbz(indir / "huge.cbz", [("1.png", PAGE), ("2.png", PAGE), ("3.png", PAGE)])
    for name in (b"1.png", b"2.png", b"3.png"):
        patch_entry(cbz, name, file_size=2**20)  # 3 MiB declared in all, each under the entry limits
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 1 and len(run.errors) == 1 and run.errors[0].startswith(f"error: {cbz}: ")
    assert "bomb" in run.errors[0] and not run.added


def test_entries_declaring_huge_sizes_are_kept_as_stored_one_by_one(tmp_path, indir, tiny_checkpoint):
    cbz = make_cbz(indir / "huge.cbz", [("1.png", PAGE), ("2.png", PAGE), ("3.png", PAGE), ("4.png", PAGE)])
    for name in (b"1.png", b"2.png", b"3.png"):
        patch_entry(cbz, name, file_size=0xFFFFFFF0)  # 12 GiB declared in all
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 1 and len(run.errors) == 3 and all("entry limit" in line for line in run.errors)
    out, stored = dict(entries_raw(tmp_path / "out.cbz")), dict(entries_raw(cbz))
    assert list(out) == ["1.png", "2.png", "3.png", "4.png"]
    assert all(out[name] == stored[name] for name in ("1.png", "2.png", "3.png"))
    with zipfile.ZipFile(tmp_path / "out.cbz") as z:
        assert is_colored(z.read("4.png"))


def test_many_small_zero_entries_trip_the_whole_archive_ratio(tmp_path, indir, tiny_checkpoint, monkeypatch):
    monkeypatch.setattr(archive_reader, "ARCHIVE_RATIO_MIN_BYTES", 4 * 2**20)
    cbz = make_cbz(indir / "many.cbz", [("1.png", PAGE)] + [(f"z{i}.bin", bytes(2**19)) for i in range(16)],
                   deflate=True)
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 1 and "ratio" in run.errors[0] and not run.added


def test_entry_lying_about_its_size_fails_alone_and_is_kept_as_stored(tmp_path, indir, tiny_checkpoint):
    cbz = make_cbz(indir / "liar.cbz", [("1.png", PAGE), ("liar.png", bytes(8 * 2**20)), ("2.png", PAGE)],
                   deflate=True)
    patch_entry(cbz, b"liar.png", file_size=1000)  # inflates to 8 MiB; says 1000 bytes
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 1 and all("liar.png" in line for line in run.errors)
    out = dict(entries_raw(tmp_path / "out.cbz"))
    assert out["liar.png"] == dict(entries_raw(cbz))["liar.png"]
    with zipfile.ZipFile(tmp_path / "out.cbz") as z:
        assert is_colored(z.read("1.png")) and is_colored(z.read("2.png"))


def test_overlapping_entries_are_left_out(tmp_path, indir, tiny_checkpoint):
    cbz = make_cbz(indir / "overlap.cbz", [("1.png", PAGE), ("2.png", PAGE)])
    with zipfile.ZipFile(cbz) as z:
        first, second = z.infolist()
    # Point the second entry's directory record at the first entry's data: the overlapping-bomb trick.
    patch_entry(cbz, b"2.png", local_offset_delta=first.header_offset - second.header_offset)
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 1 and any("overlaps" in line for line in run.errors)
    assert [n for n, _ in entries(tmp_path / "out.cbz")] == ["1.png"]


def test_encrypted_entry_with_a_broken_header_is_left_out_not_a_crash(tmp_path, indir, tiny_checkpoint):
    cbz = make_cbz(indir / "locked.cbz", [("1.png", PAGE), ("locked.png", PAGE), ("2.png", PAGE)])
    patch_entry(cbz, b"locked.png", flags=0x01, break_local_header=True)
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 1 and all("locked.png" in line for line in run.errors)
    out = entries(tmp_path / "out.cbz")
    assert [n for n, _ in out] == ["1.png", "2.png"] and all(is_colored(d) for _, d in out)


def test_corrupt_deflate_in_a_non_page_entry_is_reported_not_a_crash(tmp_path, indir, tiny_checkpoint):
    cbz = make_cbz(indir / "bad.cbz", [("1.png", PAGE), ("ComicInfo.xml", b"<ComicInfo>" + b"x" * 400 + b"</ComicInfo>")],
                   deflate=True)
    data = bytearray(cbz.read_bytes())
    info = zipfile.ZipFile(cbz).getinfo("ComicInfo.xml")
    start = info.header_offset + 30 + len("ComicInfo.xml")
    data[start:start + 4] = b"\xff\xff\xff\xff"  # an invalid deflate block type: zlib.error on read
    cbz.write_bytes(bytes(data))
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 1 and len(run.errors) == 1 and "ComicInfo.xml" in run.errors[0]
    out = dict(entries_raw(tmp_path / "out.cbz"))
    assert out["ComicInfo.xml"] == dict(entries_raw(cbz))["ComicInfo.xml"]  # kept as stored


def test_archive_inside_an_archive_is_copied_as_is(tmp_path, indir, tiny_checkpoint):
    inner = make_cbz(tmp_path / "inner.cbz", [("p.png", PAGE)]).read_bytes()
    (tmp_path / "inner.cbz").unlink()
    cbz = make_cbz(indir / "outer.cbz", [("1.png", PAGE), ("extra/inner.cbz", inner)])
    run = Run(tmp_path, tiny_checkpoint, [cbz], tmp_path / "out.cbz")
    assert run.exit_code == 0, run.output
    out = dict(entries(tmp_path / "out.cbz"))
    assert out["extra/inner.cbz"] == inner and is_colored(out["1.png"])
