"The kan-nb command, run as a user would run it."
import subprocess
import sys

import pytest


def run(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "kan_nb", *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def test_demo_prints_rmse_and_writes_loss_curve(tmp_path):
    res = run("demo", "--out", str(tmp_path / "out"), "--steps", "50")
    assert res.returncode == 0, res.stderr
    assert "test RMSE" in res.stdout
    rmse = float(res.stdout.split("test RMSE")[1].split()[0])
    assert rmse <= 1e-2
    assert (tmp_path / "out" / "loss_curve.png").stat().st_size > 1000


def test_help_lists_subcommands():
    res = run("--help")
    assert res.returncode == 0
    assert "demo" in res.stdout


@pytest.mark.parametrize("args", [["demo", "--steps", "-3"], ["no-such-command"]])
def test_bad_arguments_exit_2_without_traceback(args, tmp_path):
    res = run(*args, cwd=tmp_path)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
