"""`neurodtco demo --quick` end to end, and its report rendered in a real (headless) browser."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

from neurodtco.report import build_report, write_report
from neurodtco.stats import wilson_interval
from neurodtco.store import load_results
from neurodtco.study import SerialExecutor, load_study, parse_study, run_study

FIGURES = ("gallery", "severity", "onoff", "correction", "cross", "voltages")


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is missing: `make test` installs Debian's chromium (make system-tools)")
        pytest.skip("chromium is not installed (make system-tools installs it)")
    return path


def _browser(*args: str) -> subprocess.CompletedProcess:
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def _loaded_images(html_path: Path) -> tuple[int, int, list[str]]:
    """(images loaded, images in the page, per-image flags) as the browser saw them after the load event."""
    dom = _browser("--virtual-time-budget=15000", "--dump-dom", html_path.resolve().as_uri()).stdout
    body = re.search(r'<body data-images-total="(\d+)" data-images-loaded="(\d+)"', dom)
    assert body, f"the page's load script did not run; DOM starts with {dom[:300]!r}"
    return int(body.group(2)), int(body.group(1)), re.findall(r'data-loaded="(\w+)"', dom)


@pytest.fixture(scope="module")
def quick_demo(tmp_path_factory):
    """`neurodtco demo --quick` as a user runs it: the built-in small study, then the report."""
    out = tmp_path_factory.mktemp("quick") / "results"
    result = subprocess.run([sys.executable, "-m", "neurodtco", "demo", "--quick", "--out", str(out), "--workers", "2",
                             "--json"], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    return out, json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_quick_demo_runs_every_stage(quick_demo):
    out, summary = quick_demo
    study = load_study("quick")
    assert summary["n_failed"] == 0 and summary["n_run"] == summary["n_tasks"]
    assert summary["n_circuits"] == study.n_circuits + 1
    assert summary["n_inferences"] == summary["n_circuits"] * 1797  # every circuit sees every image
    df = load_results(out)
    raw = df[df["corrector"] == "none"]
    assert len(raw) == study.n_circuits + 1
    healthy = raw[raw["pattern"] == "none"]["accuracy"].item()
    # 1 ohm wires on the exact engine barely move the healthy circuit away from the software network.
    assert abs(healthy - raw["software_accuracy"].iloc[0]) <= 0.03
    # At physical densities a few stuck cells flip a few of the 180 images either way (one circuit may
    # beat the healthy one by chance); on average 1 % of stuck cells stays near the healthy circuit
    # and 10 % costs clearly more.
    by_density = raw[raw["pattern"] != "none"].groupby("severity")["accuracy"].mean()
    assert by_density[0.01] <= wilson_interval(int(round(healthy * 180)), 180)[1]
    assert by_density[0.1] < by_density[0.01] - 0.1
    assert set(df["corrector"]) == {"none", "mlp", "affine"}
    assert not load_results(out, "cross").empty
    assert Path(summary["report"]).is_file()


@pytest.mark.slow
def test_report_renders_in_headless_chromium_with_every_figure_loaded(quick_demo, tmp_path):
    out, summary = quick_demo
    report = Path(summary["report"])
    html = report.read_text()
    for section in FIGURES + ("headline", "study"):
        assert f'id="{section}"' in html
    # Self-contained: every image is inline data, nothing is fetched.
    sources = re.findall(r'<img src="([^"]{0,40})', html)
    assert len(sources) == len(FIGURES) and all(s.startswith("data:image/png;base64,") for s in sources)
    assert "http://" not in html and "https://" not in html

    loaded, total, flags = _loaded_images(report)
    assert total == len(FIGURES) and loaded == total and flags == ["yes"] * total

    shot = tmp_path / "report.png"
    _browser("--window-size=1280,3000", f"--screenshot={shot}", report.resolve().as_uri())
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 50_000  # a rendered page, not a blank one


@pytest.mark.slow
def test_the_browser_check_notices_a_broken_figure(quick_demo, tmp_path):
    out, summary = quick_demo
    html = Path(summary["report"]).read_text()
    start = html.index("data:image/png;base64,") + len("data:image/png;base64,")
    broken = html[:start] + base64.b64encode(b"not a png at all").decode() + html[html.index('"', start):]
    page = tmp_path / "broken.html"
    page.write_text(broken)
    loaded, total, flags = _loaded_images(page)
    assert total == len(FIGURES) and loaded == total - 1 and flags[0] == "no"


def test_report_of_a_partial_store_says_what_is_missing(tmp_path):
    # Only the healthy circuit has run: every figure section explains itself instead of failing.
    data = {"name": "partial", "engine": "ideal", "defects": {"patterns": ["random"], "arrays": [3], "kinds": ["on"]},
            "correctors": {"hidden": []}}
    study = parse_study(data)
    run_study(study, tmp_path / "p", executor=SerialExecutor())
    for f in (tmp_path / "p" / "results" / "circuits").glob("c-random*.parquet"):
        f.unlink()
    html = build_report(tmp_path / "p")
    # The cross-defect matrix is not missing but not asked for: the page says how to ask for it.
    assert html.count("Not available") == len(FIGURES) - 1
    assert "Not run: this study does not enable the cross-defect matrix" in html
    for asset in ("report.css", "report.js"):  # the package files are inlined, so the page stands alone
        assert resources.files("neurodtco.report").joinpath(asset).read_text() in html
    assert "Healthy circuit, test accuracy" in html
    path = write_report(tmp_path / "p", tmp_path / "elsewhere" / "r.html")
    assert path.read_text().startswith("<!DOCTYPE html>")


def test_report_of_a_folder_that_is_not_a_store_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a study results folder"):
        write_report(tmp_path)


def test_fit_recipe_names_a_cap_beside_the_library_defaults():
    from neurodtco.report.data import fit_recipe

    capped = fit_recipe({"correctors": {"hidden": [1, 8], "options": {"max_iter": 200}}})
    assert "200 iterations for h=1" in capped and "200 iterations for h=8" in capped
    assert "defaults are 1000 for h=1, 300 for h=8" in capped
    plain = fit_recipe({"correctors": {"hidden": [2, 16], "options": {}}})
    assert plain == "L-BFGS, at most 1000 iterations for h=2, 300 iterations for h=16"
    assert "capped" not in plain
