"""The rest of issue 20's hostile cases through the installed ``mangacolor``, each in a fresh process as a user
runs it: comparisons that land among the inputs, archives known by their bytes, ZIP entries kept as they were,
pages a format cannot hold, color profiles, and the streams and encodings a terminal brings. Each test is named
after what failed before its fix."""

from __future__ import annotations

import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageCms

from tests.test_cli_fresh_process import BIN, assert_clean, line_art, mangacolor, save
from tests.test_hostile_fresh_process import error_lines, files_under, page_bytes

pytestmark = pytest.mark.skipif(not BIN.exists(), reason="the mangacolor script is not installed beside this python")


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# ---------------------------------------------------------------------- item 2: --compare into the input folder
def test_comparisons_written_into_the_input_folder_never_overwrite_an_input_nor_come_back_as_pages(tmp_path):
    pages = tmp_path / "in"
    pages.mkdir()
    save(pages / "p.png", line_art(1, 120, 160))
    save(pages / "p.compare.jpg", line_art(2, 120, 160))  # a page of the user's that a comparison is named like
    inputs = tree_bytes(pages)
    first = mangacolor("colorize", "in", "-o", "out", "--compare", "in", "--json", cwd=tmp_path)
    assert_clean(first)
    assert first.returncode == 0, first.stdout + first.stderr
    written = json.loads(first.stdout)["comparisons"]
    assert len(set(written)) == 2 and not {Path(p).name for p in written} & set(inputs), written
    after_first = tree_bytes(pages)
    assert {name: after_first[name] for name in inputs} == inputs  # no input written over
    again = mangacolor("colorize", "in", "-o", "out", "--compare", "in", "--overwrite", "--json", cwd=tmp_path)
    assert_clean(again)
    summary = json.loads(again.stdout)
    # The pictures are never read back as pages; the rerun writes the same two again, over its own.
    assert sorted(p["input"] for p in summary["pages"]) == [str(Path("in", "p.compare.jpg")), str(Path("in", "p.png"))]
    assert sorted(summary["comparisons"]) == sorted(written) and set(tree_bytes(pages)) == set(after_first)
    assert files_under(tmp_path / "out") == {"p.png", "p.compare.jpg"}


def test_an_output_onto_the_hint_file_is_refused_even_with_overwrite(tmp_path):
    save(tmp_path / "p.png", line_art(1, 120, 160))
    hint = np.zeros((160, 120, 4), np.uint8)
    hint[70:80, 50:60] = (220, 30, 30, 255)
    Image.fromarray(hint, "RGBA").save(tmp_path / "hint.png")
    before = (tmp_path / "hint.png").read_bytes()
    run = mangacolor("colorize", "p.png", "-o", "hint.png", "--hints", "hint.png", "--overwrite", cwd=tmp_path)
    assert_clean(run)
    assert run.returncode == 2 and error_lines(run) == [
        "error: hint.png: output would overwrite an input; choose another -o"], run.stderr
    assert (tmp_path / "hint.png").read_bytes() == before


# ---------------------------------------------------------------------- item 10: two pages, one stem
def test_a_png_and_a_jpg_page_of_one_name_get_a_comparison_each(tmp_path):
    (tmp_path / "in").mkdir()
    save(tmp_path / "in" / "p.png", line_art(1, 120, 160))
    save(tmp_path / "in" / "p.jpg", line_art(5, 160, 120))
    run = mangacolor("colorize", "in", "-o", "out", "--compare", "cmp", "--json", cwd=tmp_path)
    assert_clean(run)
    assert run.returncode == 0, run.stdout + run.stderr
    written = json.loads(run.stdout)["comparisons"]
    assert sorted(Path(p).name for p in written) == ["p.jpg.compare.jpg", "p.png.compare.jpg"], written
    sizes = {Path(p).name: Image.open(tmp_path / p).size for p in written}
    assert sizes["p.png.compare.jpg"] != sizes["p.jpg.compare.jpg"]  # each its own page (portrait, landscape)


# ---------------------------------------------------------------------- item 6: archives by their bytes
def tar_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_archives_are_opened_by_their_bytes_and_one_that_cannot_be_read_is_one_line(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "001.png").write_bytes(page_bytes(1))
    (lib / "seven.cb7").write_bytes(b"7z\xbc\xaf\x27\x1c\x00\x04" + bytes(64))
    (lib / "tape.cbt").write_bytes(tar_bytes({"001.png": page_bytes(2)}))
    with zipfile.ZipFile(lib / "zipped.cbr", "w") as z:  # a CBR that is really a ZIP, as many are
        z.writestr("001.png", page_bytes(3))
    run = mangacolor("colorize", "lib", cwd=tmp_path)
    assert_clean(run)
    assert run.returncode == 1, run.stdout + run.stderr
    assert error_lines(run) == [
        f"error: {Path('lib', 'seven.cb7')}: 7z archives are not supported (CB7); repack it as a CBZ (ZIP) to color it",
        f"error: {Path('lib', 'tape.cbt')}: tar archives are not supported (CBT); repack it as a CBZ (ZIP) to color it"]
    assert run.stdout.startswith("2 colored, 0 already in color, 0 skipped, 2 failed"), run.stdout
    assert files_under(tmp_path / "lib_color") == {"001.png", "zipped.cbz"}  # never copied uncolored in silence


@pytest.mark.skipif(bool(shutil.which("unar") or shutil.which("unrar")), reason="unar or unrar would read it")
def test_a_cbz_that_is_really_a_rar_asks_for_unar(tmp_path):
    (tmp_path / "ch.cbz").write_bytes(b"Rar!\x1a\x07\x00" + bytes(64))
    run = mangacolor("colorize", "ch.cbz", cwd=tmp_path)
    assert_clean(run)
    assert run.returncode == 1 and len(error_lines(run)) == 1 and "needs 'unar' or 'unrar'" in run.stderr


# ---------------------------------------------------------------------- items 12 and 13: entries kept as they were
class _Unseekable(io.RawIOBase):
    """A write-only stream: zipfile then writes data descriptors (flag bit 3), as streaming archivers do."""

    def __init__(self, f):
        self.f = f

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        return self.f.write(data)


class _LegacyName(zipfile.ZipInfo):
    """Writes its name as given bytes without the UTF-8 flag (an old Japanese Windows archiver's way)."""

    __slots__ = ("raw",)

    def _encodeFilenameFlags(self):  # noqa: N802
        return self.raw, self.flag_bits & ~0x800


def legacy(name: str, comment: bytes = b"", extra: bytes = b"") -> zipfile.ZipInfo:
    raw = name.encode("shift_jis")
    info = _LegacyName(raw.decode("cp437"))
    info.raw, info.comment, info.extra = raw, comment, extra
    return info


def central_directory(path: Path) -> list[dict]:
    """Each entry's central record as stored: name bytes, flags, method, CRC, extra field and comment."""
    data, out = path.read_bytes(), []
    pos = data.find(b"PK\x01\x02")
    while pos >= 0:
        flags, method = struct.unpack("<HH", data[pos + 8:pos + 12])
        crc, = struct.unpack("<I", data[pos + 16:pos + 20])
        n, m, k = struct.unpack("<HHH", data[pos + 28:pos + 34])
        name_at, extra_at, comment_at = pos + 46, pos + 46 + n, pos + 46 + n + m
        out.append({"name": data[name_at:extra_at], "flags": flags, "method": method, "crc": crc,
                    "extra": data[extra_at:comment_at], "comment": data[comment_at:comment_at + k]})
        pos = data.find(b"PK\x01\x02", pos + 46 + n + m + k)
    return out


def test_non_page_entries_keep_their_comment_flags_and_extra_fields(tmp_path):
    stamp = b"UT\x05\x00\x01\x00\x5e\x0c\x60"  # an extended timestamp, as Info-ZIP writes
    with open(tmp_path / "ch.cbz", "wb") as f, zipfile.ZipFile(_Unseekable(f), "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("001.png", page_bytes(1))
        info = zipfile.ZipInfo("ComicInfo.xml")
        info.comment, info.extra = b"series metadata, do not strip", stamp
        z.writestr(info, b"<ComicInfo><Series>S</Series></ComicInfo>")
        z.writestr(zipfile.ZipInfo("extras/"), b"")
    run = mangacolor("colorize", "ch.cbz", cwd=tmp_path)
    assert_clean(run)
    assert run.returncode == 0, run.stdout + run.stderr
    before, after = central_directory(tmp_path / "ch.cbz"), central_directory(tmp_path / "ch.color.cbz")
    assert [e["name"] for e in after] == [e["name"] for e in before]
    assert after[1:] == before[1:]  # ComicInfo.xml and the folder: comment, flags, method, CRC, extra as they were
    assert after[0]["comment"].startswith(b"mangacolor settings: ")  # the page carries the run's settings
    again = mangacolor("colorize", "ch.cbz", cwd=tmp_path)
    assert_clean(again)
    assert again.returncode == 0 and again.stdout.startswith("0 colored, 0 already in color, 1 skipped"), again.stdout


def test_shift_jis_names_and_flags_of_every_entry_are_kept_in_a_fresh_process(tmp_path):
    # 表紙 ("cover") has 0x5C, a backslash, as its second byte: the classic Shift-JIS trap.
    with open(tmp_path / "sjis.cbz", "wb") as f, zipfile.ZipFile(_Unseekable(f), "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(legacy("第1話/表紙.png"), page_bytes(1))
        note = legacy("第1話/読んでね.txt", comment="コメント".encode("shift_jis"))
        z.writestr(note, "よろしく".encode("shift_jis"))
        z.writestr(legacy("第1話/"), b"")
    run = mangacolor("colorize", "sjis.cbz", cwd=tmp_path)
    assert_clean(run)
    assert run.returncode == 0, run.stdout + run.stderr
    before, after = central_directory(tmp_path / "sjis.cbz"), central_directory(tmp_path / "sjis.color.cbz")
    names = ["第1話/表紙.png", "第1話/読んでね.txt", "第1話/"]
    assert [e["name"] for e in after] == [e["name"] for e in before] == [n.encode("shift_jis") for n in names]
    assert not any(e["flags"] & 0x800 for e in after)  # never flagged UTF-8: the bytes are Shift-JIS
    assert after[1:] == before[1:]


# ---------------------------------------------------------------------- item 8: a name too long for a hint file
def test_a_300_character_entry_name_with_a_hint_folder_is_colored_without_a_hint(tmp_path):
    with zipfile.ZipFile(tmp_path / "long.cbz", "w") as z:
        z.writestr("a" * 300 + ".png", page_bytes(1))
        z.writestr("002.png", page_bytes(2))
    (tmp_path / "hints").mkdir()
    hint = np.zeros((160, 120, 4), np.uint8)
    hint[70:80, 50:60] = (220, 30, 30, 255)
    Image.fromarray(hint, "RGBA").save(tmp_path / "hints" / "002.png")
    run = mangacolor("colorize", "long.cbz", "--hints", "hints", cwd=tmp_path)
    assert_clean(run)
    assert run.returncode == 0 and not error_lines(run), run.stdout + run.stderr
    assert run.stdout.startswith("2 colored, 0 already in color, 0 skipped, 0 failed"), run.stdout


# ---------------------------------------------------------------------- item 9: a page WebP cannot hold
def test_a_strip_too_long_for_webp_fails_in_one_line_and_no_png_bytes_are_written_as_webp(tmp_path):
    (tmp_path / "in").mkdir()
    save(tmp_path / "in" / "strip.png", line_art(1, 400, 17000))
    save(tmp_path / "in" / "p.png", line_art(2, 120, 160))
    for attempt in ("first run", "rerun"):  # a rerun tries the strip again, never "skipped"
        run = mangacolor("colorize", "in", "-o", "out", "--format", "webp", cwd=tmp_path)
        assert_clean(run)
        assert run.returncode == 1 and error_lines(run) == [
            f"error: {Path('in', 'strip.png')}: cannot encode as webp (400x17000 pixels is over WebP's limit of "
            "16383 a side; PNG holds it)"], (attempt, run.stderr)
        assert "1 failed" in run.stdout, (attempt, run.stdout)
    assert files_under(tmp_path / "out") == {"p.webp"}  # no strip.webp holding PNG bytes
    assert Image.open(tmp_path / "out" / "p.webp").format == "WEBP"


# ---------------------------------------------------------------------- item 11: ICC profiles
def _text_tag(text: str) -> bytes:
    ascii_ = text.encode() + b"\0"
    return b"desc" + bytes(4) + struct.pack(">I", len(ascii_)) + ascii_ + bytes(8 + 3 + 67)


def gray_profile(gamma: float) -> bytes:
    """A minimal ICC v2 gray display profile with a pure gamma tone curve (the shape of Photoshop's gray ones)."""
    d50 = struct.pack(">iii", 0xF6D6, 0x10000, 0xD32D)
    tags = [(b"desc", _text_tag(f"gray gamma {gamma}")), (b"cprt", b"text" + bytes(4) + b"none\0"),
            (b"wtpt", b"XYZ " + bytes(4) + d50),
            (b"kTRC", b"curv" + bytes(4) + struct.pack(">IH", 1, round(gamma * 256)))]
    offset = 128 + 4 + 12 * len(tags)
    table, data = b"", b""
    for sig, body in tags:
        body += bytes(-len(body) % 4)
        table += struct.pack(">4sII", sig, offset + len(data), len(body))
        data += body
    header = (struct.pack(">I", offset + len(data)) + bytes(4) + struct.pack(">I", 0x02100000) + b"mntrGRAYXYZ "
              + bytes(12) + b"acsp" + bytes(24) + bytes(4) + d50 + bytes(48))
    return header + struct.pack(">I", len(tags)) + table + data


def test_icc_profiles_are_kept_and_a_gray_profile_keeps_the_pages_lightness(tmp_path):
    rgb_profile = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    color = np.full((160, 120, 3), 255, np.uint8)
    color[20:80, 20:100] = (200, 40, 50)
    save(tmp_path / "color.jpg", color, icc_profile=rgb_profile, quality=95)
    gray = line_art(1, 120, 160)
    gray[100:140, 20:100] = 128  # a flat tone: 128 in gamma 1.0 is 188 in sRGB
    save(tmp_path / "gray.png", gray, icc_profile=gray_profile(1.0))
    run = mangacolor("colorize", "color.jpg", "gray.png", "-o", "out/", "--format", "png", "--saturation", "0",
                     cwd=tmp_path)
    assert_clean(run)
    assert run.returncode == 0, run.stdout + run.stderr
    with Image.open(tmp_path / "out" / "color.png") as kept:  # re-encoded as PNG, its own profile with it
        assert kept.info.get("icc_profile") == rgb_profile
    with Image.open(tmp_path / "out" / "gray.png") as colored:  # RGB cannot carry a gray profile: converted
        tone = np.asarray(colored.convert("RGB"))[110:130, 30:90].astype(int)
    assert np.abs(tone - 188).max() <= 2, tone.mean()


# ---------------------------------------------------------------------- item 15: one line, never a traceback
def test_eval_with_page_names_that_are_not_utf8_writes_json_and_csv_and_prints_them(tmp_path):
    for folder in ("pred", "target"):
        (tmp_path / folder).mkdir()
        save(tmp_path / folder / os.fsdecode(b"p\xff.png"), np.full((32, 32, 3), 100 if folder == "pred" else 120,
                                                                      np.uint8))
    save(tmp_path / "pred" / os.fsdecode(b"q\xfe.png"), np.full((32, 32, 3), 90, np.uint8))  # no target
    run = mangacolor("eval", "--pred", "pred", "--target", "target", "--json-out", "r.json", "--csv", "r.csv",
                     cwd=tmp_path)
    assert_clean(run)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "missing target: q\\udcfe" in run.stdout
    assert json.loads((tmp_path / "r.json").read_text("utf-8"))["missing_targets"] == [os.fsdecode(b"q\xfe")]
    assert (tmp_path / "r.csv").read_text("utf-8").splitlines()[1].startswith("p\\udcff,pred,")


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("extra", [["--json"], []], ids=["--json", "summary line"])
def test_output_into_a_full_device_is_one_line_and_exit_1(tmp_path, extra):
    save(tmp_path / "p.png", line_art(1, 120, 160))
    with open("/dev/full", "w") as full:
        run = subprocess.run([str(BIN), "colorize", "p.png", *extra], cwd=tmp_path, stdout=full,
                             stderr=subprocess.PIPE, text=True, timeout=300, stdin=subprocess.DEVNULL,
                             env={**os.environ, "HOME": str(tmp_path)})
    assert "Traceback" not in run.stderr and "Exception ignored" not in run.stderr, run.stderr
    assert run.returncode == 1 and error_lines(run) == [
        "error: standard output: cannot write ([Errno 28] No space left on device)"], run.stderr
    assert (tmp_path / "p.color.png").is_file()  # the work itself is done and kept


def test_emoji_names_under_a_latin1_terminal_are_printed_escaped(tmp_path):
    save(tmp_path / "😀.png", line_art(1, 120, 160))
    (tmp_path / "💥.png").write_bytes(b"not an image")
    run = subprocess.run([str(BIN), "colorize", "😀.png", "💥.png", "--verbose"], cwd=tmp_path, capture_output=True,
                         timeout=300, stdin=subprocess.DEVNULL,
                         env={**os.environ, "HOME": str(tmp_path), "PYTHONIOENCODING": "latin-1"})
    out, err = run.stdout.decode("latin-1"), run.stderr.decode("latin-1")
    assert "Traceback" not in out + err, err
    assert run.returncode == 1, out + err
    assert "  wrote \\U0001f600.color.png" in out.splitlines()
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        "error: \\U0001f4a5.png: not an image PIL can read"]


def test_export_with_an_opset_the_exporter_cannot_write_is_one_line(tmp_path, tiny_checkpoint):
    run = mangacolor("export", str(tiny_checkpoint), "-o", "x.onnx", "--opset", "99", cwd=tmp_path)
    assert_clean(run)
    lines = error_lines(run)
    assert run.stdout == "", run.stdout[:300]  # was 121 lines of the traced graph
    assert run.returncode == 2 and len(lines) == 1, run.stderr
    assert lines[0].startswith("error: --opset 99: the ONNX exporter writes opsets 7 to "), lines
    assert not (tmp_path / "x.onnx").exists()


def test_eval_on_pages_under_7x7_lists_them_as_not_scored_in_one_line(tmp_path):
    for side in ("pred", "target"):
        (tmp_path / side).mkdir()
        Image.fromarray(np.full((5, 6, 3), 128, np.uint8)).save(tmp_path / side / "tiny.png")
        Image.fromarray(np.full((16, 16, 3), 128, np.uint8)).save(tmp_path / side / "ok.png")
    run = subprocess.run([str(BIN), "eval", "--pred", str(tmp_path / "pred"),
                          "--target", str(tmp_path / "target")], capture_output=True, text=True, timeout=120)
    text = run.stdout + run.stderr
    assert "Traceback" not in text and run.returncode == 0, text
    assert "too small to score" in text and "tiny.png" in text


def test_an_unrelated_zip_or_a_thumbnail_at_the_output_path_is_not_finished(tmp_path):
    """A finished output is recognised by the mark mangacolor wrote in it, not by its name: an unrelated ZIP at
    ``ch.color.cbz`` or a 60x80 thumbnail at a page's target is neither skipped nor replaced (one line, exit 1)."""
    page = tmp_path / "a.png"
    save(page, line_art(9))
    chapter = tmp_path / "ch.cbz"
    with zipfile.ZipFile(chapter, "w") as z:
        z.write(page, "001.png")
        z.write(page, "002.png")
    with zipfile.ZipFile(tmp_path / "ch.color.cbz", "w") as z:
        z.writestr("readme.txt", "not a chapter")
    (tmp_path / "pages").mkdir()
    save(tmp_path / "pages" / "p.png", line_art(10))
    (tmp_path / "out").mkdir()
    Image.fromarray(np.zeros((80, 60, 3), np.uint8)).save(tmp_path / "out" / "p.png")
    for args in (["colorize", str(chapter)], ["colorize", str(tmp_path / "pages"), "-o", str(tmp_path / "out")]):
        run = mangacolor(*args, cwd=tmp_path)
        assert_clean(run)
        assert run.returncode == 1 and "skipped" in run.stdout and " 0 skipped" in " " + run.stdout, run.stdout
        assert "not an output mangacolor wrote" in run.stderr
    with zipfile.ZipFile(tmp_path / "ch.color.cbz") as z:
        assert z.namelist() == ["readme.txt"]
    assert Image.open(tmp_path / "out" / "p.png").size == (60, 80)
    # ... and a run that did write them skips them next time
    (tmp_path / "ch.color.cbz").unlink()
    (tmp_path / "out" / "p.png").unlink()
    for args in (["colorize", str(chapter)], ["colorize", str(tmp_path / "pages"), "-o", str(tmp_path / "out")]):
        assert mangacolor(*args, cwd=tmp_path).returncode == 0
        again = mangacolor(*args, cwd=tmp_path)
        assert again.returncode == 0 and "0 colored" in again.stdout and "skipped" in again.stdout, again.stdout


def test_ctrl_c_while_the_command_is_still_loading_exits_130_without_a_traceback():
    """Ctrl-C in the first tenths of a second (modules loading, Typer building the options) used to print a
    traceback from inside an import: the console script's entry catches it (one line, exit 130)."""
    code = ("import sys, types\n"
            "fake = types.ModuleType('mangacolor_cli.commands')\n"
            "def main():\n"
            "    raise KeyboardInterrupt\n"
            "fake.main = main\n"
            "sys.modules['mangacolor_cli.commands'] = fake\n"
            "from mangacolor_cli.entry import main as entry\n"
            "entry()\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert run.returncode == 130 and run.stderr.strip() == "interrupted" and "Traceback" not in run.stderr
    script = BIN.read_text()
    assert "mangacolor_cli.entry" in script  # the installed console script goes through it
