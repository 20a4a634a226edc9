"""Run reports: one HTML file with a run's charts, sample grids, quality beside its floors, config and environment,
written by `python -m gan_core report` and opened offline in real Chromium."""

import base64
import io
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from PIL import Image

from gan_core.config import RunConfig
from gan_core.dashboard import charts, report
from gan_core.evaluation import evaluate as evaluation
from gan_core.evaluation.evaluator import EVALUATOR_VERSION
from gan_core.history_metrics import groups
from gan_core.store import provenance
from gan_core.store.runs import Run, RunStore, atomic_write_json
from tests import test_browser

ROOT = Path(__file__).resolve().parent.parent
TINY = RunConfig(dataset="mnist-5k", width=0.125, latent_dim=8, batch_size=16, steps=6, sample_every=2, checkpoint_every=3, seed=1)
HOSTILE = "<img src=x onerror=\"alert('x')\">&"
page = test_browser.page  # system Chromium as the dashboard's browser test starts it: under CI=true it fails, never skips


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Run:
    from gan_core.training.loop import train_run

    store = RunStore(tmp_path_factory.mktemp("report") / "runs")
    run = store.create(TINY.replace(name="tiny"))
    assert train_run(run)["state"] == "finished"
    return run


@pytest.fixture
def copy(trained, tmp_path):
    """A copy of the trained run to change, under the same id."""
    shutil.copytree(trained.dir, tmp_path / "runs" / trained.id)
    return Run(tmp_path / "runs" / trained.id)


class Tags(HTMLParser):
    """Every start tag with its attributes (script bodies are not parsed as tags), and the text of each figcaption."""

    def __init__(self, document: str) -> None:
        super().__init__()
        self.tags, self.captions, self._caption = [], [], None
        self.feed(document)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "figcaption":
            self._caption = ""

    def handle_data(self, data):
        if self._caption is not None:
            self._caption += data

    def handle_endtag(self, tag):
        if tag == "figcaption":
            self.captions.append(self._caption)
            self._caption = None

    def images(self) -> list[Image.Image]:
        return [
            Image.open(io.BytesIO(base64.b64decode(attrs["src"].removeprefix("data:image/png;base64,"))))
            for tag, attrs in self.tags if tag == "img"
        ]


def figures(document: str) -> list[dict]:
    """The data and layout of each plotly chart, in order."""
    decoder, found = json.JSONDecoder(), []
    for match in re.finditer(r'Plotly\.newPlot\(\s*"[^"]+",\s*', document):
        data, end = decoder.raw_decode(document, match.end())
        layout, _ = decoder.raw_decode(document, end + len(re.match(r",\s*", document[end:])[0]))
        found.append({"data": data, "layout": layout})
    return found


def spec(figure) -> dict:
    return json.loads(figure.to_json())


def assert_loads_nothing(document: str) -> None:
    """No tag loads anything from outside the file, and the policy forbids the browser to try."""
    loads = [(tag, attrs[key]) for tag, attrs in Tags(document).tags for key in ("src", "href") if attrs.get(key)]
    assert all(value.startswith("data:") for _, value in loads), loads
    assert "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none';" in document


def test_a_trained_runs_report_holds_its_charts_samples_config_environment_and_status(trained):
    document = report.run_report(trained)
    found = figures(document)
    history, metric_groups = trained.history_frame(), groups(trained.metrics())
    assert [f["layout"]["title"]["text"] for f in found] == ["Losses", "D outputs", "Gradient norms", "Throughput"]
    # the Train page's own figures, the losses smoothed as its slider starts
    assert found[0]["data"] == spec(charts.metric_figure(history, "Losses", metric_groups["Losses"], report.SMOOTHING))["data"]
    assert found[1]["data"] == spec(charts.metric_figure(history, "D outputs", metric_groups["D outputs"]))["data"]
    assert found[3]["data"] == spec(charts.throughput_figure(history))["data"]
    assert found[0]["data"][0]["y"] == history["g_loss"].tolist() and found[0]["data"][0]["x"] == [1, 2, 3, 4, 5, 6]
    assert document.count('class="plotly-graph-div"') == 4 and document.count("window.PlotlyConfig") == 1, "plotly.js once"

    tags = Tags(document)
    assert tags.captions == ["step 0", "step 2", "step 4", "step 6"]
    last = Image.open(io.BytesIO(charts.enlarged_png(trained.sample_paths()[-1], report.GRID_SIDE)))
    assert [image.size for image in tags.images()][-1] == last.size and last.width >= report.GRID_SIDE
    assert tags.images()[-1].tobytes() == last.tobytes()

    assert "<th>latent_dim</th><td>8</td>" in document and "<th>g_lr</th><td>0.0002</td>" in document
    assert "<th>name</th><td>tiny</td>" in document
    environment = provenance.summary(provenance.entries(trained))
    assert f"<th>TensorFlow</th><td>{environment['tensorflow']}</td>" in document
    assert "<b>Family</b> dcgan · <b>dataset</b> mnist-5k · <b>state</b> finished · Finished: step 6 / 6, epoch 1" in document
    assert "Quality metrics are off for this run" in document and "Evaluations" not in document
    assert re.search(r"Generated \d{4}-\d\d-\d\d \d\d:\d\d:\d\d .* by GAN Workbench 0\.1\.0 \(", document)
    assert_loads_nothing(document)


def test_quality_and_saved_evaluations_stand_beside_their_floors(copy):
    copy.append_metrics([{"step": 3, "frechet_distance": 120.0, "classes_covered": 4}, {"step": 6, "frechet_distance": 80.0, "classes_covered": 6}])
    copy.update_status(quality_floor=9.3, quality_n=500)
    saved = {
        "format": evaluation.RESULT_FORMAT, "n": 500, "seed": 0, "dataset": "mnist-5k", "run_id": copy.id, "step": 6,
        "evaluator": {"kind": "classifier", "version": EVALUATOR_VERSION, "accuracy": 0.986, "train_images": 4500,
                      "heldout_images": 500, "feature_layer": "the 128-d penultimate layer"},
        "metrics": [{"key": "fd", "label": evaluation.LABELS["fd"], "better": "lower", "value": 81.25, "std": None,
                     "floor": 9.31, "floor_std": None, "uses_evaluator": True}],
        "classes": None, "nearest": None,
    }
    path = evaluation.result_path(copy, 6, 500)
    path.parent.mkdir()
    atomic_write_json(path, saved)
    atomic_write_json(evaluation.result_path(copy, 3, 500), saved | {"format": 1, "step": 3})  # an older format: not shown
    document = report.run_report(copy)
    quality = next(f for f in figures(document) if f["layout"]["title"]["text"] == "Quality")
    assert [(trace["name"], trace["y"]) for trace in quality["data"][:2]] == [("Fréchet distance", [120.0, 80.0]), ("Real-vs-real floor", [9.3, 9.3])]
    assert "<h3>Step 6 · N = 500</h3>" in document and "Step 3" not in document
    assert "<td>Fréchet distance (evaluator features) *</td><td>81.25</td><td>9.31</td><td>lower</td>" in document
    assert "held-out accuracy 98.6% on 500 images" in document


def test_a_progan_runs_stages_get_their_own_grids(copy):
    copy.update_status(phases=[{"start": 0, "label": "4x4"}, {"start": 3, "label": "8x8"}])
    document = report.run_report(copy)
    assert Tags(document).captions == ["4x4 at step 2", "8x8 at step 6", "step 0", "step 2", "step 4", "step 6"]
    assert "<h2>Resolution timeline</h2>" in document
    assert [note["text"] for note in figures(document)[0]["layout"]["annotations"]] == ["8x8"]


def test_grids_over_time_are_thinned_evenly_keeping_the_last():
    paths = [Path(f"step_{step:06d}.png") for step in range(0, 1000, 10)]
    thinned = report.thinned_grids(paths)
    assert report.MAX_GRIDS - 2 <= len(thinned) <= report.MAX_GRIDS and thinned[0] == ("step 0", paths[0]) and thinned[-1] == ("step 990", paths[-1])
    steps = [charts.sample_step(path) for _, path in thinned[:-1]]
    assert len({b - a for a, b in zip(steps, steps[1:])}) == 1


def test_every_string_a_user_controls_is_escaped(copy):
    config = json.loads(copy.config_path.read_text())
    copy.config_path.write_text(json.dumps(config | {"name": HOSTILE}))
    copy.update_status(message=HOSTILE)
    provenance.record(copy, provenance.entries(copy)[0] | {"command": HOSTILE})
    document = report.run_report(copy)
    assert HOSTILE not in document
    escaped = "&lt;img src=x onerror=&quot;alert(&#x27;x&#x27;)&quot;&gt;&amp;"
    assert document.count(escaped) == 3  # the name, the status message and the command
    assert not [attrs for tag, attrs in Tags(document).tags if tag == "img" and attrs["src"] == "x"]


def test_a_run_without_steps_or_with_broken_files_says_so_in_a_sentence(tmp_path):
    store = RunStore(tmp_path / "runs")
    queued = store.create(TINY)
    document = report.run_report(queued)
    assert "No training step has been logged yet, so there are no charts." in document and not figures(document)
    assert "<th>latent_dim</th><td>8</td>" in document
    queued.status_path.write_text("{")
    document = report.run_report(queued)
    assert f"Run &#x27;{queued.id}&#x27; has a broken status.json" in document and "<table>" not in document


def test_a_comparison_report_overlays_the_runs_and_marks_what_differs(trained, copy):
    config = json.loads(copy.config_path.read_text())
    other = Run(copy.dir.with_name("faster"))
    copy.dir.rename(other.dir)
    other.config_path.write_text(json.dumps(config | {"g_lr": 0.001}))
    document = report.comparison_report({"tiny": trained, "faster": other})
    found = figures(document)
    assert [[trace["name"] for trace in f["data"]] for f in found] == [["tiny", "faster"], ["tiny", "faster"]]
    assert [f["layout"]["title"]["text"] for f in found] == ["G loss", "D loss"]
    assert '<tr class="differs"><th>g_lr</th><td>0.0002</td><td>0.001</td></tr>' in document
    assert "<tr><th>latent_dim</th><td>8</td><td>8</td></tr>" in document and "1 of 35 fields differ: g_lr." in document
    assert "<th>TensorFlow</th>" in document and "<th>final step</th>" in document
    assert Tags(document).captions == ["tiny at step 6", "faster at step 6"] and len(Tags(document).images()) == 2
    assert_loads_nothing(document)


def report_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`python -m gan_core report ...` through the CLI's main, printing the TensorFlow modules it imported last."""
    probe = (
        "import sys; from gan_core.cli import main; code = main(sys.argv[1:]); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras'))); sys.exit(code)"
    )
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", probe, "report", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_the_cli_writes_the_report_without_tensorflow_and_refuses_an_unknown_run(trained, tmp_path):
    runs = str(trained.dir.parent)
    result = report_cli(trained.id, "--runs-dir", runs, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"{trained.id}.html", "[]"]
    document = (tmp_path / f"{trained.id}.html").read_text(encoding="utf-8")
    assert len(figures(document)) == 4 and len(Tags(document).images()) == 4

    out = tmp_path / "shared" / "tiny.html"
    result = report_cli(trained.id, "--runs-dir", runs, "--out", str(out), cwd=tmp_path)
    assert result.returncode == 2 and result.stderr == f"error: Could not write the report to {out}: No such file or directory.\n"
    out.parent.mkdir()
    assert report_cli(trained.id, "--runs-dir", runs, "--out", str(out), cwd=tmp_path).returncode == 0 and out.is_file()

    unknown = subprocess.run(
        [sys.executable, "-m", "gan_core", "report", "no-such-run", "--runs-dir", runs], cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert unknown.stderr == f"error: No run 'no-such-run' in {runs}.\n"


def test_the_report_opens_offline_in_chromium_with_its_charts_drawn(trained, tmp_path, page):
    path = tmp_path / "report.html"
    path.write_text(report.run_report(trained), encoding="utf-8")
    errors, requested = [], []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requested.append(request.url))
    page.context.set_offline(True)
    page.goto(path.as_uri())
    drawn = page.locator(".js-plotly-plot .main-svg .scatterlayer .trace")
    drawn.first.wait_for(timeout=30_000)
    assert page.locator(".js-plotly-plot").count() == 4
    assert page.evaluate("[...document.querySelectorAll('.js-plotly-plot')].every(p => p.querySelector('.main-svg .scatterlayer .trace'))")
    assert page.evaluate("[...document.images].every(image => image.complete && image.naturalWidth >= 240)")
    assert page.locator("img").count() == 4
    assert [url for url in requested if not url.startswith(("file:", "data:"))] == [] and errors == []
