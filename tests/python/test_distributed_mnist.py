"""The MNIST demo (python -m heron.examples.mnist) with 2 data-parallel processes under the launcher
must end where the 1-process run ends: same seed, same global batch (64), so the same images per
step; the ConvNet has no batch norm or dropout, so nothing depends on the per-rank split. Compared:
every saved weight and the final test loss.

Only the summation order differs (each rank's batch gradient over 32 images, then the average of
the two, against one sum over 64), so the runs differ by float rounding, which training amplifies:
in float32 (the demo's dtype) the weights agree to ~1e-6 after one epoch on 2,000 images (32 steps)
but drift apart over hundreds of steps (~1e-2 after a full epoch of 133 steps; both runs still
train normally). So float32 is checked to 1e-5 on the short run, and float64 (--dtype float64) on
two full epochs (266 steps), where the runs agree to ~1e-13 (checked to 1e-9). Bounded: one thread
per process, subprocess timeouts."""
import os
import pathlib
import re
import socket
import subprocess
import sys

import numpy as np
import pytest

import heron

pytest.importorskip("heron.examples.mnist", reason="needs heron.nn", exc_type=ImportError)

ROOT = pathlib.Path(__file__).resolve().parents[2]
COMMON = ["--batch-size", "64", "--lr", "3e-3", "--seed", "7", "--threads", "1", "--no-export"]
FLOAT32 = COMMON + ["--epochs", "1", "--train-size", "2000"]
FLOAT64 = COMMON + ["--epochs", "2", "--dtype", "float64"]


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _run(cmd, args, out):
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT / "python") + os.pathsep + env.get("PYTHONPATH", "")
    for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(k, None)
    r = subprocess.run(cmd + args + ["--out", str(out)], capture_output=True, text=True, timeout=400, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    loss = re.findall(r"^test_loss=([0-9.]+)$", r.stdout, re.M)
    acc = re.findall(r"^test_accuracy=([0-9.]+)$", r.stdout, re.M)
    assert len(loss) == 1 and len(acc) == 1, r.stdout  # printed by rank 0 only
    sd = heron.load(str(out / "mnist.safetensors"))
    return r.stdout, float(loss[0]), float(acc[0]), {k: v.numpy() for k, v in sd.items()}


ONE = [sys.executable, "-m", "heron.examples.mnist"]


def _two():
    return [sys.executable, "-m", "heron.distributed.run", "--nproc-per-node", "2", "--master-port",
            str(_free_port()), "-m", "heron.examples.mnist"]


@pytest.mark.parametrize("args,tol,min_acc", [(FLOAT32, 1e-5, 0.5), (FLOAT64, 1e-9, 0.93)], ids=["float32", "float64"])
def test_two_processes_match_one_process(tmp_path, args, tol, min_acc):
    out1, loss1, acc1, w1 = _run(ONE, args, tmp_path / "one")
    out2, loss2, acc2, w2 = _run(_two(), args, tmp_path / "two")
    assert "2 processes, 32 images per process per step" in out2, out2
    assert acc1 > min_acc, out1  # it did train
    assert sorted(w1) == sorted(w2)
    assert all(w.dtype == (np.float64 if "float64" in args else np.float32) for w in w1.values())
    for k in w1:
        diff = float(np.abs(w1[k] - w2[k]).max())
        assert diff <= tol, f"{k}: 2 processes differ from 1 by {diff}"
    assert loss2 == pytest.approx(loss1, abs=1e-5)
    assert abs(acc2 - acc1) <= 1 / 1500 + 1e-9  # at most one test image may flip on a near tie


def test_global_batch_must_split_evenly(tmp_path):
    env = dict(os.environ, RANK="0", WORLD_SIZE="3", PYTHONPATH=str(ROOT / "python"))
    r = subprocess.run([sys.executable, "-m", "heron.examples.mnist", "--batch-size", "64", "--out", str(tmp_path)],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode != 0 and "multiple of the number of processes (3)" in r.stderr, r.stdout + r.stderr
