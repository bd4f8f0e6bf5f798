"""The MNIST example (python -m heron.examples.mnist): arguments, progress bar, and a short training run."""
import io
import os
import re

import pytest

import heron

mnist = pytest.importorskip("heron.examples.mnist", reason="needs heron.nn", exc_type=ImportError)


def test_parse_args_defaults_and_errors():
    a = mnist.parse_args(["--out", "x"])
    assert (a.epochs, a.batch_size, a.seed, a.out) == (mnist.parse_args([]).epochs, 64, 0, "x")
    a = mnist.parse_args(["--epochs", "2", "--batch-size", "32", "--lr", "0.01", "--seed", "3", "--threads", "1"])
    assert (a.epochs, a.batch_size, a.lr, a.seed, a.threads) == (2, 32, 0.01, 3, 1)
    for bad in (["--epochs", "0"], ["--batch-size", "-1"], ["--lr", "0"], ["--lr", "abc"]):
        with pytest.raises(SystemExit):
            mnist.parse_args(bad)


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_renders():
    out = io.StringIO()
    bar = mnist.ProgressBar(4, "epoch 1/2", stream=out)
    for i in range(1, 5):
        bar.update(i, loss="0.5000", acc="90.00%")
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and "4/4" in lines[0] and "loss 0.5000" in lines[0] and "[" + "#" * 24 + "]" in lines[0]
    tty = _Tty()
    bar = mnist.ProgressBar(10, "e", stream=tty, min_interval=0.0)
    bar.update(5, loss="1.0")
    assert "\r" in tty.getvalue() and "5/10" in tty.getvalue() and "#" * 12 + "-" * 12 in tty.getvalue()
    bar.close()
    assert tty.getvalue().endswith("\n")


def test_convnet_shapes():
    model = mnist.ConvNet()
    n = sum(p.numel() for p in model.parameters())
    # 16*9+16 + 32*16*9+32 + 32*32*9+32 + 288*64+64 + 64*10+10
    assert n == 160 + 4640 + 9248 + 18496 + 650
    with heron.no_grad():
        out = model(heron.zeros(2, 1, 28, 28))
    assert out.shape == (2, 10)


@pytest.mark.skipif(not hasattr(heron.Tensor, "backward"), reason="needs autograd")
def test_short_training_run(tmp_path, capsys):
    acc = mnist.main(["--epochs", "1", "--batch-size", "64", "--lr", "3e-3", "--out", str(tmp_path), "--seed", "0"])
    out = capsys.readouterr().out.strip().splitlines()
    m = re.fullmatch(r"test_accuracy=(\d\.\d{4})", out[-1])
    assert m, out[-1]
    assert float(m.group(1)) == pytest.approx(acc, abs=1e-4)
    assert acc >= 0.90  # one epoch of the one-cycle schedule
    weights = tmp_path / "mnist.safetensors"
    assert weights.exists() and (tmp_path / "curves.png").stat().st_size > 1000
    assert any(str(weights.resolve()) in line or str(weights) in line for line in out)
    # the saved weights reload into a fresh model and give the same test accuracy
    sd = heron.load(str(weights))
    model = mnist.ConvNet()
    assert sorted(sd) == sorted(model.state_dict())
    model.load_state_dict(sd)
    _, acc2 = mnist.evaluate(model, heron.utils.data.DataLoader(heron.datasets.MNIST(train=False), batch_size=500))
    assert acc2 == pytest.approx(acc, abs=1e-9)
    assert os.path.getsize(weights) > 4 * 33000
