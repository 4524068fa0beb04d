"""Property tests: the archive and image readers, fed random bytes and mutated valid files, raise only
the project's own errors (``MangacolorError``), never change their input, and write nothing outside the
output folder."""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mangacolor_cli.engine.colorizer import Colorizer
from mangacolor_cli.engine.pipeline import colorize
from mangacolor_cli.errors import MangacolorError
from mangacolor_cli.pages.images import decode_page as decode_image
from mangacolor_cli.pages.sources import ArchiveJob, PageResult
from tests.conftest import color_page, draw_page, encoded

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
                derandomize=True)


def valid_cbz() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("01.png", encoded(draw_page(24, 32)))
        z.writestr("ComicInfo.xml", b"<ComicInfo><Title>x</Title></ComicInfo>" * 4, compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("02.jpg", encoded(draw_page(24, 32, seed=2).convert("RGB"), "JPEG"), compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("sub/03.webp", encoded(color_page(24, 32), "WEBP"), compress_type=zipfile.ZIP_BZIP2)
    return buf.getvalue()


CBZ = valid_cbz()
HEADER_FIELDS = [  # (signature, offset of a field, its width): the fields a hostile archive lies in
    (b"PK\x03\x04", 6, 2), (b"PK\x03\x04", 8, 2), (b"PK\x03\x04", 18, 4), (b"PK\x03\x04", 22, 4),
    (b"PK\x03\x04", 26, 2), (b"PK\x01\x02", 8, 2), (b"PK\x01\x02", 10, 2), (b"PK\x01\x02", 20, 4),
    (b"PK\x01\x02", 24, 4), (b"PK\x01\x02", 28, 2), (b"PK\x01\x02", 38, 4), (b"PK\x01\x02", 42, 4),
    (b"PK\x05\x06", 10, 2), (b"PK\x05\x06", 12, 4), (b"PK\x05\x06", 16, 4),
]


@st.composite
def mutated_cbz(draw) -> bytes:
    data = bytearray(CBZ)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "header", "truncate", "splice"]))
        if kind == "flip":
            pos = draw(st.integers(0, len(data) - 1))
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "header":
            signature, offset, width = draw(st.sampled_from(HEADER_FIELDS))
            hits = [i for i in range(len(data)) if data.startswith(signature, i)]
            if hits:
                at = draw(st.sampled_from(hits)) + offset
                value = draw(st.sampled_from([0, 1, 0xFF, 0xFFFF, 0xFFFFFFFF, 0x7FFFFFFF]) | st.integers(0, 2**32 - 1))
                data[at:at + width] = (value & (2 ** (8 * width) - 1)).to_bytes(width, "little")
        elif kind == "truncate":
            del data[draw(st.integers(0, len(data) - 1)):]
        else:
            pos = draw(st.integers(0, len(data)))
            data[pos:pos] = draw(st.binary(max_size=64))
        if not data:
            break
    return bytes(data)


def tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in root.rglob("*") if p.is_file()}


def read_and_write_archive(data: bytes) -> None:
    """Open ``data`` as a CBZ, decode every page, write the output; assert the rules, re-raise only our errors."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        source = root / "in" / "a.cbz"
        source.write_bytes(data)
        before = tree(root)
        job = ArchiveJob(source, root / "out" / "a.cbz")
        try:
            results = {}
            for ref in job.pages():
                try:
                    decode_image(ref.read(), ref.label)
                    results[ref.key] = PageResult(b"colored", ref.name)
                except MangacolorError:
                    pass
            reported = " ".join(job.refusals())
            job.finish(results)
            reported += " ".join(job.errors)
            with zipfile.ZipFile(root / "out" / "a.cbz") as out:
                for info in out.infolist():
                    # Every entry reads back, except ones reported as copied raw (encrypted, or broken at the source).
                    try:
                        out.read(info)
                    except Exception:
                        assert f":{info.filename}: " in reported
        except MangacolorError as e:
            assert "\n" not in str(e) and str(source) in str(e)
        finally:
            job.close()
            after = tree(root)
            assert {p: h for p, h in after.items() if not p.startswith("out/")} == before


@settings(FUZZ, max_examples=60)
@given(st.binary(max_size=1024) | st.binary(max_size=64).map(lambda b: b"PK\x03\x04" + b))
def test_archive_reader_on_random_bytes_raises_only_our_errors(data):
    read_and_write_archive(data)


@settings(FUZZ, max_examples=120)
@given(mutated_cbz())
def test_archive_reader_on_mutated_archives_raises_only_our_errors(data):
    read_and_write_archive(data)


def valid_images() -> list[bytes]:
    page = draw_page(24, 32)
    return [encoded(page), encoded(page.convert("RGB"), "JPEG"), encoded(color_page(24, 32), "WEBP"),
            encoded(page, "TIFF"), encoded(page, "BMP"), encoded(page.convert("P"), "GIF")]


IMAGES = valid_images()


@st.composite
def mutated_image(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(IMAGES)))
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(data) - 1))
        if draw(st.booleans()):
            data[pos] = draw(st.integers(0, 255))
        else:
            del data[pos:]
            break
    return bytes(data)


@settings(FUZZ, max_examples=150)
@given(mutated_image() | st.binary(max_size=256))
def test_image_reader_on_mutated_images_raises_only_page_errors(data):
    try:
        page = decode_image(data, "book.cbz:1.png")
    except MangacolorError as e:
        assert str(e).startswith("book.cbz:1.png: ") and "\n" not in str(e)
    else:
        assert page.width > 0 and page.height > 0


@pytest.fixture(scope="module")
def colorizer(tiny_checkpoint):
    return Colorizer(tiny_checkpoint, device="cpu", backend="torch", size=32, batch_size=2)


@settings(FUZZ, max_examples=30)
@given(mutated_cbz())
def test_colorize_on_mutated_archives_reports_errors_and_writes_only_its_output(colorizer, data):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        (root / "in" / "a.cbz").write_bytes(data)
        before = tree(root)
        try:
            summary = colorize([root / "in" / "a.cbz"], root / "out" / "a.cbz", colorizer=colorizer, progress=False,
                               workers=1)
        except MangacolorError:
            summary = None
        if summary is not None:
            assert summary.exit_code == (1 if summary.failed or summary.errors else 0)
            assert all("\n" not in e for e in summary.errors)
        after = tree(root)
        assert {p: h for p, h in after.items() if not p.startswith("out/")} == before
        assert all(not os.path.basename(p).startswith(".") for p in after)  # no temp file left
