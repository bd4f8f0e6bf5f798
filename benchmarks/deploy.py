"""Inference latency through the deployment runtime next to onnxruntime and PyTorch eager, same
process, interleaved, medians over blocks.

    python benchmarks/deploy.py [--quick] [--models resnet18,mobilenet_v2] [--batches 1,8]

The architecture is built in Heron (heron.models), traced to a .heron graph and run by a session
(what heron-run and the C API do; heron-run itself also runs the saved model, in its own process,
after each row's in-process blocks: its p50 is the "heron-run p50" column); PyTorch gets the same
weights in the same architecture (defined here: torchvision is not required) and runs eagerly;
onnxruntime runs PyTorch's ONNX export of it. All use the same thread count. Each contender's
turn starts with a 50 ms pause (the other engines' spinning threads go idle), times one run
apart (the "idle" columns: the first request after a quiet spell, cold caches, sleeping pool
threads), runs two untimed warm-ups and then times a block of runs (the main columns: steady
state, as heron-run and a busy server see it). Set HERON_BENCH_EXTRA_PATH to a site-packages folder holding
torch/onnxruntime/onnx when they live outside this environment.
"""
import argparse
import io
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

if os.environ.get("HERON_BENCH_EXTRA_PATH"):
    sys.path.append(os.environ["HERON_BENCH_EXTRA_PATH"])

import heron  # noqa: E402
import heron.models  # noqa: E402

try:
    import torch  # noqa: E402
except Exception:  # pragma: no cover
    torch = None
try:
    import onnxruntime as ort  # noqa: E402
except Exception:  # pragma: no cover
    ort = None


def torch_model(name, sd):
    """The same architecture in PyTorch (names match torchvision), weights from heron's state dict."""
    tnn = torch.nn

    class BasicBlock(tnn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = tnn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = tnn.BatchNorm2d(cout)
            self.relu = tnn.ReLU()
            self.conv2 = tnn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = tnn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = tnn.Sequential(tnn.Conv2d(cin, cout, 1, stride, bias=False), tnn.BatchNorm2d(cout))

        def forward(self, x):
            idt = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + idt)

    class ResNet18(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = tnn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = tnn.BatchNorm2d(64)
            self.relu = tnn.ReLU()
            self.maxpool = tnn.MaxPool2d(3, 2, 1)
            chans = [64, 128, 256, 512]
            cin = 64
            for i, c in enumerate(chans):
                s = 1 if i == 0 else 2
                setattr(self, f"layer{i + 1}", tnn.Sequential(BasicBlock(cin, c, s), BasicBlock(c, c, 1)))
                cin = c
            self.avgpool = tnn.AdaptiveAvgPool2d(1)
            self.fc = tnn.Linear(512, 1000)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    def cbr(cin, cout, k, s, groups=1):
        return tnn.Sequential(tnn.Conv2d(cin, cout, k, s, (k - 1) // 2, groups=groups, bias=False),
                              tnn.BatchNorm2d(cout), tnn.ReLU6())

    class InvertedResidual(tnn.Module):
        def __init__(self, inp, oup, stride, t):
            super().__init__()
            hidden = int(round(inp * t))
            self.use_res = stride == 1 and inp == oup
            layers = [] if t == 1 else [cbr(inp, hidden, 1, 1)]
            layers += [cbr(hidden, hidden, 3, stride, hidden), tnn.Conv2d(hidden, oup, 1, 1, 0, bias=False),
                       tnn.BatchNorm2d(oup)]
            self.conv = tnn.Sequential(*layers)

        def forward(self, x):
            return x + self.conv(x) if self.use_res else self.conv(x)

    class MobileNetV2(tnn.Module):
        def __init__(self):
            super().__init__()
            setting = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2],
                       [6, 320, 1, 1]]
            feats = [cbr(3, 32, 3, 2)]
            cin = 32
            for t, c, n, s in setting:
                for i in range(n):
                    feats.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                    cin = c
            feats.append(cbr(cin, 1280, 1, 1))
            self.features = tnn.Sequential(*feats)
            self.classifier = tnn.Sequential(tnn.Dropout(0.2), tnn.Linear(1280, 1000))

        def forward(self, x):
            x = tnn.functional.adaptive_avg_pool2d(self.features(x), 1)
            return self.classifier(torch.flatten(x, 1))

    m = ResNet18() if name == "resnet18" else MobileNetV2()
    m.load_state_dict({k: torch.from_numpy(np.array(v.numpy())) for k, v in sd.items()})
    return m.eval()


def heron_run_p50(exe, model_path, x_path, threads, iters):
    """p50 latency (ms) that heron-run (the C API, no Python in the process) reports for the model."""
    r = subprocess.run([exe, model_path, "--input", f"input={x_path}", "--iter", str(iters), "--warmup", "3",
                        "--threads", str(threads)], capture_output=True, text=True, check=True)
    m = re.search(r"p50 ([0-9.]+)", r.stdout)
    return float(m.group(1)) if m else float("nan")


def find_heron_run():
    here = os.path.dirname(os.path.abspath(heron.__file__))
    exe = os.path.join(here, "bin", "heron-run")
    return exe if os.access(exe, os.X_OK) else shutil.which("heron-run")


def block_ms(fn, n):
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) * 1e3 / n


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--models", default="resnet18,mobilenet_v2")
    ap.add_argument("--batches", default="1,8")
    args = ap.parse_args()
    threads = heron.get_num_threads()
    if torch is not None:
        torch.set_num_threads(threads)
    print(f"threads: {threads}; torch: {torch.__version__ if torch else 'absent'}; "
          f"onnxruntime: {ort.__version__ if ort else 'absent'}")
    exe = find_heron_run()
    tmp = tempfile.mkdtemp(prefix="heron-deploy-bench-")
    print(f"{'model':14s} {'batch':>5s} {'heron ms':>10s} {'ort ms':>10s} {'torch ms':>10s} {'heron/ort':>10s} "
          f"{'heron/torch':>12s} {'heron peak MiB':>15s} {'heron-run p50':>14s} {'run/ort':>8s} "
          f"{'idle: heron ms':>15s} {'ort ms':>7s} {'heron/ort':>10s}")
    reps, n = (3, 2) if args.quick else (9, 5)
    for name in args.models.split(","):
        heron.manual_seed(0)
        hm = getattr(heron.models, name)().eval()
        for b in [int(v) for v in args.batches.split(",")]:
            x = np.random.default_rng(0).standard_normal((b, 3, 224, 224)).astype(np.float32)
            traced = heron.jit.trace(hm, heron.from_numpy(x), check=False)
            sess = heron.inference.Session(traced)
            hx = heron.from_numpy(x)
            contenders = {"heron": lambda: sess._run_tensors({"input": hx}, ["output"])}
            if torch is not None:
                tm = torch_model(name, hm.state_dict())
                tx = torch.from_numpy(x)

                def trun():
                    with torch.no_grad():
                        tm(tx)
                contenders["torch"] = trun
                if ort is not None:
                    f = io.BytesIO()
                    torch.onnx.export(tm, (tx,), f, input_names=["input"], output_names=["output"], dynamo=False)
                    so = ort.SessionOptions()
                    so.intra_op_num_threads = threads
                    so.inter_op_num_threads = 1
                    osess = ort.InferenceSession(f.getvalue(), so, providers=["CPUExecutionProvider"])
                    contenders["ort"] = lambda: osess.run(None, {"input": x})
            samples = {k: [] for k in contenders}
            idle = {k: [] for k in contenders}
            for fn in contenders.values():
                fn()
            for _ in range(reps):
                for k, fn in contenders.items():
                    # onnxruntime's and OpenMP's pool threads spin for a while after a run: let
                    # them go idle so they do not take the cores from the next contender. The
                    # first run after that pause is timed apart ("idle": a request after a quiet
                    # spell, with cold caches and sleeping threads); two more untimed runs, then
                    # the block (steady state, what heron-run and a busy server see).
                    time.sleep(0.05)
                    idle[k].append(block_ms(fn, 1))
                    fn()
                    fn()
                    samples[k].append(block_ms(fn, n))
            med = {k: statistics.median(v) for k, v in samples.items()}
            imed = {k: statistics.median(v) for k, v in idle.items()}
            o, t = med.get("ort"), med.get("torch")
            # The same traced model through heron-run, right after, in its own process.
            hr = float("nan")
            if exe:
                mpath, xpath = os.path.join(tmp, f"{name}_{b}.heron"), os.path.join(tmp, f"x_{b}.npy")
                heron.jit.save(traced, mpath)
                np.save(xpath, x)
                time.sleep(0.05)
                hr = heron_run_p50(exe, mpath, xpath, threads, 10 if args.quick else 30)
            print(f"{name:14s} {b:5d} {med['heron']:10.1f} {o if o else float('nan'):10.1f} "
                  f"{t if t else float('nan'):10.1f} {(med['heron'] / o) if o else float('nan'):10.2f}x "
                  f"{(med['heron'] / t) if t else float('nan'):11.2f}x {sess.peak_memory / 2**20:15.1f} "
                  f"{hr:14.1f} {(hr / o) if o else float('nan'):7.2f}x "
                  f"{imed['heron']:15.1f} {imed.get('ort', float('nan')):7.1f} "
                  f"{(imed['heron'] / imed['ort']) if 'ort' in imed else float('nan'):9.2f}x")
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
