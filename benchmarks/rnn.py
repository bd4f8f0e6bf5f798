"""Heron's recurrent layers next to torch.nn.LSTM / GRU: same process, same float32 weights and
inputs, interleaved, medians over blocks, ratios (heron / torch; < 1 is faster).

    python benchmarks/rnn.py [--quick] [--only NAME]

Forward is measured without gradient recording (both engines); forward+backward records, then
backpropagates the sum of the output into the input and every weight. Configurations are issue
7's. Set HERON_BENCH_EXTRA_PATH to a site-packages folder holding torch when it lives outside
this environment; without torch only Heron's times are printed.
"""
import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

if os.environ.get("HERON_BENCH_EXTRA_PATH"):
    sys.path.append(os.environ["HERON_BENCH_EXTRA_PATH"])

import heron  # noqa: E402
from heron import _ops  # noqa: E402

try:
    import torch  # noqa: E402
except Exception:  # pragma: no cover
    torch = None

# name, mode, seq, batch, input, hidden, layers, bidirectional
CASES = [
    ("lstm-1", "lstm", 50, 64, 256, 512, 1, False),
    ("lstm-2bi", "lstm", 50, 64, 256, 512, 2, True),
    ("lstm-mnist", "lstm", 28, 128, 28, 128, 1, False),
    ("gru-1", "gru", 50, 64, 256, 512, 1, False),
]


def block_ms(fn, n):
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) * 1e3 / n


def make(mode, T, B, I, H, L, bidir, rng):
    D = 2 if bidir else 1
    G = 4 if mode == "lstm" else 3
    k = 1.0 / np.sqrt(H)
    flat = []
    for layer in range(L):
        In = I if layer == 0 else D * H
        for _ in range(D):
            flat += [rng.uniform(-k, k, (G * H, In)), rng.uniform(-k, k, (G * H, H)), rng.uniform(-k, k, G * H),
                     rng.uniform(-k, k, G * H)]
    flat = [a.astype(np.float32) for a in flat]
    x = rng.standard_normal((T, B, I)).astype(np.float32)
    return flat, x


def heron_fns(mode, H, L, bidir, flat, x):
    ps = [heron.from_numpy(a.copy()) for a in flat]
    for p in ps:
        p.requires_grad = True
    hx = heron.from_numpy(x)
    hxg = heron.from_numpy(x.copy())
    hxg.requires_grad = True

    def call(inp):
        if mode == "lstm":
            return _ops.lstm(inp, None, None, None, ps, H, num_layers=L, bidirectional=bidir).output
        return _ops.gru(inp, None, None, ps, H, num_layers=L, bidirectional=bidir).output

    def fwd():
        with heron.no_grad():
            return call(hx)

    def fwdbwd():
        for p in ps:
            p.grad = None
        hxg.grad = None
        call(hxg).sum().backward()

    return fwd, fwdbwd, ps, hxg


def torch_fns(mode, I, H, L, bidir, flat, x):
    cls = torch.nn.LSTM if mode == "lstm" else torch.nn.GRU
    m = cls(I, H, num_layers=L, bidirectional=bidir)
    with torch.no_grad():
        for p, a in zip(m._flat_weights, flat):
            p.copy_(torch.from_numpy(a))
    tx = torch.from_numpy(x)
    txg = torch.from_numpy(x.copy()).requires_grad_(True)

    def fwd():
        with torch.no_grad():
            return m(tx)[0]

    def fwdbwd():
        m.zero_grad(set_to_none=True)
        txg.grad = None
        m(txg)[0].sum().backward()

    return fwd, fwdbwd, m, txg


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--only", default=None)
    args = ap.parse_args()
    threads = heron.get_num_threads()
    if torch is not None:
        torch.set_num_threads(threads)
    print(f"threads: {threads}; torch: {torch.__version__ if torch else 'absent'}; float32")
    print(f"{'case':12s} {'pass':8s} {'heron ms':>9s} {'torch ms':>9s} {'heron/torch':>11s}")
    reps = 3 if args.quick else 7
    rng = np.random.default_rng(0)
    for name, mode, T, B, I, H, L, bidir in CASES:
        if args.only and name != args.only:
            continue
        flat, x = make(mode, T, B, I, H, L, bidir, rng)
        hf, hfb, hps, hxg = heron_fns(mode, H, L, bidir, flat, x)
        if torch is not None:
            tf, tfb, tm, txg = torch_fns(mode, I, H, L, bidir, flat, x)
            # same results before timing anything
            np.testing.assert_allclose(hf().numpy(), tf().numpy(), rtol=1e-4, atol=1e-5)
            hfb()
            tfb()
            np.testing.assert_allclose(hxg.grad.numpy(), txg.grad.numpy(), rtol=1e-3, atol=1e-4)
            for hp, tp in zip(hps, tm._flat_weights):
                np.testing.assert_allclose(hp.grad.numpy(), tp.grad.numpy(), rtol=1e-3, atol=1e-3)
        for label, contenders in (("forward", {"heron": hf, **({"torch": tf} if torch else {})}),
                                  ("fwd+bwd", {"heron": hfb, **({"torch": tfb} if torch else {})})):
            for fn in contenders.values():
                fn()
            slowest = max(block_ms(fn, 1) for fn in contenders.values())
            n = max(1, min(50, int(300.0 / max(slowest, 1e-3))))
            samples = {k: [] for k in contenders}
            for _ in range(reps):
                for k, fn in contenders.items():
                    samples[k].append(block_ms(fn, n))
            med = {k: statistics.median(v) for k, v in samples.items()}
            t = med.get("torch")
            print(f"{name:12s} {label:8s} {med['heron']:9.2f} {t if t else float('nan'):9.2f} "
                  f"{(med['heron'] / t) if t else float('nan'):10.2f}x", flush=True)


if __name__ == "__main__":
    main()
