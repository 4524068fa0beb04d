"""Issue 15, the eval HTML report: pictures fit the window, every requested sample shown, each captioned
with its page name and metrics."""

from __future__ import annotations

import re

import torch

from mangacolor_cli.evaluation import reports
from mangacolor_cli.evaluation import scoring as ev

from .test_eval import _noisy, _photo, _save


def test_report_shows_every_requested_sample_captioned_and_fitting_the_window(tmp_path):
    pred, target = tmp_path / "pred", tmp_path / "target"
    for i in range(5):
        _save(target / f"p{i}.png", _photo(i))
        _save(pred / f"p{i}.png", _noisy(_photo(i), i))
    result = ev.evaluate_dirs(pred, target, samples=4, device=torch.device("cpu"))
    page = reports.render_report(result)
    samples = re.findall(r"<figure class='sample'>.*?</div><figcaption>(.*?)</figcaption></figure>", page)
    assert len(result.sample_keys) == 4 and len(samples) == 4
    for key, caption in zip(result.sample_keys, samples):
        assert f"<b>{key}</b>" in caption
        assert "pred: ΔE2000" in caption and "PSNR" in caption and "SSIM" in caption
    assert "img{max-width:100%;height:auto}" in page and "figure.shot img{width:100%" in page
    assert "<div class='wide'><table id='pages'>" in page


def test_report_shows_page_names_and_the_description_as_text_never_as_markup(tmp_path):
    pred, target = tmp_path / "pred", tmp_path / "target"
    name = "x<script>alert(1)</script>"
    for i, key in enumerate(["p0", name]):
        _save(target / f"{key}.png", _photo(i))
        _save(pred / f"{key}.png", _noisy(_photo(i), i))
    result = ev.evaluate_dirs(pred, target, samples=2, device=torch.device("cpu"))
    result.description += " <b>&</b>"
    page = reports.render_report(result)
    assert "<script>alert" not in page and "<b>&</b>" not in page
    assert page.count("x&lt;script&gt;alert(1)&lt;/script&gt;") == 2  # the sample's caption and the page's row
    assert "&lt;b&gt;&amp;&lt;/b&gt;" in page
