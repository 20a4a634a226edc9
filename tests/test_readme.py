"""The README's command-line block, run in order as written, each command's output checked.

Only two things differ from a user's terminal: the commands run in this process (`gan_core.cli.main`,
so TensorFlow is imported once), and every `train` and `resume` gets `--set steps=...` appended, which
cuts the training to a few steps (the README's lengths are for digits, minutes each). The run ids the
README names (RUN_ID, CGAN_RUN_ID, SRGAN_RUN_ID, ...) are the ids the earlier `train` lines printed.
"""

import json
import re
import shlex
import signal
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan_core import cli

README = Path(__file__).resolve().parents[1] / "README.md"
TRAIN_STEPS, RESUMED_STEPS = 4, 6
SHORT = ["--set", f"steps={TRAIN_STEPS}", "--set", "sample_every=2", "--set", "checkpoint_every=2"]


def readme_commands() -> list[str]:
    """The lines of the first code block under '## Command line', comments cut."""
    section = README.read_text().split("\n## Command line\n", 1)[1]
    block = re.search(r"\n((?:    .*\n)+)", section).group(1)
    return [line.split("  #", 1)[0].strip() for line in block.splitlines()]


def argv_of(line: str, ids: dict[str, str]) -> list[str]:
    """The argv of one README line: optional [--flags] kept, run-id placeholders replaced, training cut short."""
    words = shlex.split(line.replace("[", "").replace("]", ""))
    assert words[:3] == ["python3", "-m", "gan_core"], line
    argv = [ids.get(word, word) for word in words[3:]]
    if argv[0] == "train":
        argv += SHORT
    if argv[0] == "resume":
        argv += ["--set", f"steps={RESUMED_STEPS}"]
    return argv


def placeholder(argv: list[str], ids: dict[str, str]) -> str:
    """The name the README gives the run a `train` line makes: RUN_ID for the first, then CGAN_RUN_ID, ..."""
    preset = argv[argv.index("--config") + 1]
    return "RUN_ID" if "RUN_ID" not in ids else f"{preset.upper()}_RUN_ID"


@pytest.fixture
def user_folder(tmp_path, cache_dir, monkeypatch):
    """A user's working folder with a digit of their own, the session's evaluator, and downloads that fail."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GAN_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("GAN_CACHE_DIR", str(cache_dir))
    monkeypatch.setenv("GAN_EVALUATOR_EPOCHS", "1")
    for proxy in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):  # no 170 MB CIFAR-10 download from a test
        monkeypatch.setenv(proxy, "http://127.0.0.1:9")
    from gan_core.evaluation.evaluator import heldout_sample

    digit, _ = heldout_sample("mnist-5k", 1, seed=0)
    Image.fromarray(np.squeeze((digit[0] + 1.0) * 127.5).astype(np.uint8)).save(tmp_path / "my-digit.png")
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}  # `train` sets its own
    yield tmp_path
    for sig, handler in handlers.items():
        signal.signal(sig, handler)


def test_the_readme_command_block_runs_in_order_as_written(user_folder, capsys):
    ids: dict[str, str] = {}
    lines = readme_commands()
    assert len(lines) >= 15 and all(line.startswith("python3 -m gan_core ") for line in lines)
    for line in lines:
        argv = argv_of(line, ids)
        assert not [word for word in argv if word.endswith("RUN_ID")], f"{line}: names a run no earlier line made"
        code = cli.main(argv)
        out, err = capsys.readouterr()
        if "dataset=cifar10" in line and code != 0:  # offline: one sentence pointing to the offline colour set
            assert err.count("\n") == 1 and "mnist-5k-colour" in err, err
            continue
        assert code == 0, f"{line}\n{err}"
        check_output(argv, out, err, user_folder, ids)


def check_output(argv: list[str], out: str, err: str, folder: Path, ids: dict[str, str]) -> None:
    """What each command promises: a finished run, a file that opens, the report's sections."""
    command = argv[0]
    if command == "train":
        run_id = out.splitlines()[0]
        assert f"run {run_id}: finished at step {TRAIN_STEPS}" in err
        ids[placeholder(argv, ids)] = run_id
    elif command == "resume":
        assert f"finished at step {RESUMED_STEPS}. Resumed from step {TRAIN_STEPS}" in err
    elif command == "runs":
        assert ids["RUN_ID"] in out and "finished" in out
    elif command == "generate":
        target = folder / argv[argv.index("--out") + 1]
        if target.suffix == ".npz":
            with np.load(target) as saved:
                assert len(saved["x"]) == int(argv[argv.index("--n") + 1])
                assert set(saved["y"].tolist()) == {int(argv[argv.index("--label") + 1])}
        else:
            assert Image.open(target).size[0] > 28
    elif command == "export":
        with zipfile.ZipFile(folder / "run.zip") as archive:
            assert f"{ids['RUN_ID']}/exports/generator.keras" in archive.namelist()
    elif command == "apply":
        assert Image.open(folder / argv[argv.index("--out") + 1]).size[0] >= 28 * 2
    elif command == "evaluate":
        result = json.loads(out)
        assert result["n"] == 500 and result["metrics"]
    elif command == "report":
        assert "<html" in (folder / "run.html").read_text()[:500].lower()
