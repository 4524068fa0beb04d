"""The installed ``mangacolor`` run as a user runs it: a fresh process per run, the packaged default model,
real-looking chapters. In-process tests share imports (pytest has imported torch long before), which hid a
torch import race that crashed every chapter holding a color page."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

BIN = Path(sys.executable).parent / "mangacolor"
ROOT = Path(__file__).resolve().parent.parent


def line_art(seed: int, width: int = 360, height: int = 500) -> np.ndarray:
    """A gray manga-like page: white paper, panel borders, inked shapes, a screentone patch, a solid black."""
    rng = np.random.default_rng(seed)
    page = np.full((height, width), 255, np.uint8)
    page[10:14, 10:-10] = page[-14:-10, 10:-10] = page[10:-10, 10:14] = page[10:-10, -14:-10] = 0
    page[height // 2 - 2:height // 2 + 2, 10:-10] = 0
    for _ in range(6):
        y, x = rng.integers(30, height - 60), rng.integers(30, width - 60)
        r = int(rng.integers(12, 30))
        yy, xx = np.ogrid[:height, :width]
        ring = np.abs(np.hypot(yy - y, xx - x) - r) < 1.5
        page[ring] = 0
    tone = (np.add.outer(np.arange(height), np.arange(width)) % 6 == 0)
    page[60:120, 200:300][tone[60:120, 200:300]] = 40
    page[300:340, 40:120] = 0
    return page


def save(path: Path, array: np.ndarray, **params) -> Path:
    Image.fromarray(array).save(path, **params)
    return path


def color_page(width: int = 360, height: int = 500) -> np.ndarray:
    rgb = np.full((height, width, 3), 255, np.uint8)
    rgb[60:300, 40:320] = (210, 40, 50)
    rgb[320:460, 40:200] = (40, 90, 200)
    return rgb


def mangacolor(*args: str, cwd: Path, **kwargs) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.setdefault("HOME", str(cwd))
    return subprocess.run([str(BIN), *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=env,
                          stdin=subprocess.DEVNULL, **kwargs)


def mangacolor_together(*runs: tuple[tuple[str, ...], Path]) -> list[subprocess.CompletedProcess]:
    """Runs that share no files, each ``(args, cwd)``, started together, each a fresh process as
    ``mangacolor`` is: the suite waits for the slowest, not for the sum (each start imports torch, ~1.5 s),
    and every run is the same command a user types. The results come back in the order given."""
    with ThreadPoolExecutor(max_workers=min(4, len(runs))) as pool:
        return list(pool.map(lambda run: mangacolor(*run[0], cwd=run[1]), runs))


def assert_clean(run: subprocess.CompletedProcess) -> None:
    text = run.stdout + run.stderr
    assert "Traceback" not in text, text
    assert "partially initialized" not in text, text


pytestmark = pytest.mark.skipif(not BIN.exists(), reason="the mangacolor script is not installed beside this python")


def test_chapter_with_a_color_page_colors_its_gray_pages_in_a_fresh_process(tmp_path):
    a = save(tmp_path / "001.png", line_art(1))
    b = save(tmp_path / "002.png", color_page())
    c = save(tmp_path / "003.png", line_art(2))
    chapter = tmp_path / "ch.cbz"
    with zipfile.ZipFile(chapter, "w") as z:
        for p in (b, a, c):
            z.write(p, p.name)
    run = mangacolor("colorize", str(chapter), "--json", cwd=tmp_path)
    assert_clean(run)
    assert run.returncode == 0, run.stdout + run.stderr
    out = tmp_path / "ch.color.cbz"
    with zipfile.ZipFile(out) as z:
        assert sorted(z.namelist()) == ["001.png", "002.png", "003.png"]
        # the color page is passed through byte for byte
        assert z.read("002.png") == b.read_bytes()
    report = json.loads(run.stdout)
    statuses = {page["input"].split(":")[-1]: page["status"] for page in report["pages"]}
    assert statuses == {"001.png": "colored", "002.png": "already in color", "003.png": "colored"}


def test_folder_with_a_color_page_on_the_cpu_in_a_fresh_process(tmp_path):
    pages = tmp_path / "pages"
    pages.mkdir()
    save(pages / "01.png", color_page())
    save(pages / "02.png", line_art(3))
    run = mangacolor("colorize", str(pages), "-o", str(tmp_path / "out"), "--device", "cpu", cwd=tmp_path)
    assert_clean(run)
    assert run.returncode == 0, run.stdout + run.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["01.png", "02.png"]


def test_rgb_scanned_gray_jpeg_is_colored_every_time_in_a_fresh_process(tmp_path):
    gray = line_art(4)
    page = save(tmp_path / "scan.jpg", np.dstack([gray] * 3), quality=85)
    runs = mangacolor_together(*[(("colorize", str(page), "-o", str(tmp_path / f"out{i}.jpg")), tmp_path)
                                 for i in range(3)])
    for i, run in enumerate(runs):
        assert_clean(run)
        assert run.returncode == 0, run.stdout + run.stderr
        assert Image.open(tmp_path / f"out{i}.jpg").size == (360, 500)


def test_partly_colored_chapter_with_corrupt_pages_keeps_every_good_page(tmp_path):
    chapter = tmp_path / "mixed.cbz"
    partly = np.dstack([line_art(5)] * 3)
    partly[30:200, 30:200] = (240, 200, 40)  # a color splash on a gray page: a color page
    with zipfile.ZipFile(chapter, "w") as z:
        z.write(save(tmp_path / "a.png", line_art(6)), "01.png")
        z.write(save(tmp_path / "b.png", partly), "02.png")
        z.writestr("03.png", b"\x89PNG\r\n\x1a\nthis is not a page")
        z.writestr("04.jpg", (tmp_path / "a.png").read_bytes()[:200])
        z.write(save(tmp_path / "c.jpg", np.dstack([line_art(7)] * 3), quality=90), "05.jpg")
        z.writestr("ComicInfo.xml", "<ComicInfo/>")
    run = mangacolor("colorize", str(chapter), cwd=tmp_path)
    assert_clean(run)
    assert run.returncode != 0  # two pages failed, and the exit code says so
    errors = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and all(("03.png" in e) != ("04.jpg" in e) for e in errors), errors
    with zipfile.ZipFile(tmp_path / "mixed.color.cbz") as z:
        names = set(z.namelist())
    assert {"01.png", "02.png", "05.jpg", "ComicInfo.xml"} <= names


def test_the_color_test_of_a_page_imports_no_torch():
    code = ("import sys, numpy as np\n"
            "from mangacolor_cli.engine.pagework import looks_colored\n"
            "rgb = np.full((300, 200, 3), 255, np.uint8); rgb[:150] = (220, 30, 30)\n"
            "gray = np.dstack([np.full((300, 200), 128, np.uint8)] * 3)\n"
            "print(looks_colored(rgb), looks_colored(gray), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.split() == ["True", "False", "False"]


def colored_share(path: Path) -> float:
    x = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return float(((x.max(axis=-1) - x.min(axis=-1)) > 12).mean())


def test_palette_vivid_colors_more_of_the_page_than_safe_and_a_rerun_follows_the_palette(tmp_path):
    # The pixel model's own colors (--region-model none): vivid scales them up. The region model's vivid is
    # its likeliest color, which on these abstract rings is gray too (tests/test_region_model.py covers it).
    page = save(tmp_path / "p.png", line_art(8, 480, 640))
    out = tmp_path / "out.png"
    run = mangacolor("colorize", str(page), "-o", str(out), "--region-model", "none", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    safe = colored_share(out)
    run = mangacolor("colorize", str(page), "-o", str(out), "--palette", "vivid", "--region-model", "none",
                     cwd=tmp_path)
    assert_clean(run)
    assert run.returncode == 0 and "1 colored" in run.stdout, run.stdout + run.stderr  # not "skipped"
    assert colored_share(out) > max(2 * safe, 0.01)
    bad = mangacolor("colorize", str(page), "-o", str(tmp_path / "x.png"), "--palette", "loud", cwd=tmp_path)
    assert bad.returncode == 2


def test_json_gives_each_pages_colored_area_and_a_nearly_gray_page_gets_a_suggestion(tmp_path):
    page = save(tmp_path / "p.png", line_art(8, 480, 640))
    run = mangacolor("colorize", str(page), "-o", str(tmp_path / "safe.png"), "--json", cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)
    safe = report["pages"][0]["colored_area"]
    assert 0.0 <= safe < 0.02
    assert len(report["warnings"]) == 1 and "--palette vivid" in report["warnings"][0]
    assert any(line.startswith("warning:") and "nearly gray" in line for line in run.stderr.splitlines())
    vivid = mangacolor("colorize", str(page), "-o", str(tmp_path / "vivid.png"), "--json", "--palette", "vivid",
                       "--region-model", "none", cwd=tmp_path)
    assert json.loads(vivid.stdout)["pages"][0]["colored_area"] > safe
