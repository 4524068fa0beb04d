"""Issue 24.2 and 24.10: the README's install lines take CPU builds and work on Linux and macOS, with the
GPU one documented step away; the project has its license and one attribution list that the READMEs,
the model card and the sample chapter agree with."""

from __future__ import annotations

import re
import sys
import zipfile
from pathlib import Path

import pytest

from scripts import fetch_data

ROOT = Path(__file__).resolve().parent.parent

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

CPU_INDEX = "--extra-index-url https://download.pytorch.org/whl/cpu"


def _project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def _names(requirements: list[str]) -> list[str]:
    return [re.split(r"[<>=!~;\[ ]", r, maxsplit=1)[0].strip().lower() for r in requirements]


def test_the_onnx_runtime_is_the_cpu_build_with_wheels_for_every_platform_and_never_both_builds():
    project = _project()
    assert "onnxruntime" in _names(project["dependencies"])
    # onnxruntime-gpu has no macOS wheel, and beside onnxruntime (an extra on top) the CPU build's files win.
    everything = project["dependencies"] + [r for extra in project["optional-dependencies"].values() for r in extra]
    assert "onnxruntime-gpu" not in _names(everything)


def test_readme_quick_start_takes_the_cpu_builds_and_names_the_gpu_step():
    readme = (ROOT / "README.md").read_text()
    quick_start = readme[readme.index("## Quick start"):readme.index("## Install")]
    first = re.search(r"```bash\n(.*?)\n```", quick_start, re.S).group(1)
    assert first.startswith("pip install torch==2.13.0 -e . " + CPU_INDEX + " && mangacolor colorize ")
    assert "macOS" in quick_start and "leave it out" in quick_start
    install = readme[readme.index("## Install"):readme.index("## Colorize")]
    assert CPU_INDEX in install and "download.pytorch.org/whl/cu" in install
    assert 'pip uninstall -y onnxruntime onnxruntime-gpu && pip install "onnxruntime-gpu>=1.18"' in install


def test_ci_runs_the_readme_test_command_exactly_without_the_pytorch_index():
    readme = (ROOT / "README.md").read_text()
    command = 'pip install torch==2.13.0 -e ".[test]" && python -m pytest'
    assert f"```bash\n{command}\n```" in readme
    ci = (ROOT / ".ci" / "run").read_text()
    assert command in ci.splitlines()  # CI reaches only its configured registries: no extra index there
    assert "download.pytorch.org" not in ci


def test_cuda_asked_of_the_cpu_build_of_onnxruntime_says_how_to_get_the_gpu_build(monkeypatch):
    import onnxruntime

    from mangacolor_cli.engine import backends
    from mangacolor_cli.errors import ModelError

    monkeypatch.setattr(backends, "cuda_present", lambda: True)
    monkeypatch.setattr(onnxruntime, "get_available_providers", lambda: ["CPUExecutionProvider"])
    model = ROOT / "mangacolor_cli" / "weights" / "default.onnx"
    with pytest.raises(ModelError, match="CPU build .*onnxruntime-gpu"):
        backends.load_session(model, "cuda")


# ------------------------------------------------------------------------------------ licenses
def test_the_project_license_is_the_standard_mit_text_the_package_declares():
    assert _project()["license"] == {"text": "MIT"}
    text = " ".join((ROOT / "LICENSE").read_text().split())
    assert text.startswith("MIT License Copyright (c) ")
    assert ("Permission is hereby granted, free of charge, to any person obtaining a copy of this software and "
            "associated documentation files (the \"Software\"), to deal in the Software without restriction") in text
    assert text.endswith("OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE.")


def _attribution() -> str:
    return " ".join((ROOT / "ATTRIBUTION.md").read_text().split())


@pytest.mark.parametrize("source", sorted(fetch_data.SOURCES))
def test_every_data_source_is_in_the_attribution_list_with_its_license(source):
    spdx = {"CC-BY-SA-4.0": "CC BY-SA 4.0", "CC-BY-4.0": "CC BY 4.0", "CC0-1.0": "CC0 1.0", "MIT": "MIT",
            "Apache-2.0": "Apache-2.0", "Public domain": "public domain"}
    entry = fetch_data.SOURCES[source]
    package = re.sub(r"@[\d.]+$", "", entry["package"])
    row = next((line for line in (ROOT / "ATTRIBUTION.md").read_text().splitlines() if f"`{package}`" in line), None)
    assert row is not None, f"{package} is not in ATTRIBUTION.md"
    license_name = next(v for k, v in spdx.items() if entry["license"].startswith(k))
    assert license_name in row, (package, row)


def test_every_example_and_picture_in_the_repository_has_its_terms_in_the_attribution_list():
    listed = _attribution()
    for path in [*(ROOT / "examples").glob("*.cbz"), *(ROOT / "examples" / "hints").iterdir(),
                 *(ROOT / "mangacolor_cli" / "weights").glob("*.onnx")]:
        assert f"`{path.relative_to(ROOT).as_posix()}`" in listed, path
    for picture in (ROOT / "docs" / "images").iterdir():
        assert picture.name in listed or f"docs/images/{picture.name.split('_')[0]}_*" in listed, picture


def test_readmes_model_card_and_chapter_agree_on_the_sample_chapter_and_model_licenses():
    attribution = _attribution()
    assert "| `examples/sample_chapter.cbz` (the sample chapter) | CC BY 4.0 |" in attribution
    assert "| `mangacolor_cli/weights/default.onnx` (the default model) | CC BY-SA 4.0 |" in attribution
    readme = " ".join((ROOT / "README.md").read_text().split())
    license_section = readme[readme.index("## License"):]
    assert "MIT License (`LICENSE`)" in license_section and "`ATTRIBUTION.md`" in license_section
    assert "default model's weights are CC BY-SA 4.0" in license_section
    assert "sample chapter is CC BY 4.0" in license_section
    assert "sample chapter and the default model are CC BY-SA" not in readme
    examples = " ".join((ROOT / "examples" / "README.md").read_text().split())
    assert "shared under **CC BY 4.0**" in examples and "CC BY-SA" not in examples and "`ATTRIBUTION.md`" in examples
    card = " ".join((ROOT / "mangacolor_cli" / "weights" / "MODEL_CARD.md").read_text().split())
    assert "shared under **CC BY-SA 4.0**" in card and "`ATTRIBUTION.md`" in card
    with zipfile.ZipFile(ROOT / "examples" / "sample_chapter.cbz") as z:
        notes = z.read("ComicInfo.xml").decode()
    assert "This chapter is shared under CC BY 4.0" in notes and notes.count("CC BY-SA") == 0
    assert "This chapter is shared under CC BY 4.0" in fetch_data.SAMPLE_LICENSE_NOTE


def test_the_sample_chapters_sources_are_the_ones_its_attribution_names():
    row = next(line for line in (ROOT / "ATTRIBUTION.md").read_text().splitlines()
               if line.startswith("| `examples/sample_chapter.cbz`"))
    names = {"comicgen": "comicgen", "dicebear-adventurer": "Adventurer", "dicebear-micah": "Micah",
             "dicebear-open-peeps": "Open Peeps", "openclipart": "Open Clip Art Library"}
    assert set(fetch_data.SAMPLE_SOURCES) == set(names)
    for source, name in names.items():
        assert name in row and name.split()[0] in fetch_data.SAMPLE_LICENSE_NOTE, source
