"""Peak memory of an inference session: Heron (arena on and off) next to onnxruntime, measured the
same way for both, each engine in a fresh process.

    python benchmarks/deploy_memory.py [--models resnet18,mobilenet_v2] [--batches 1,8] [--runs 10]

The parent builds the model in Heron (heron.models), traces and saves it as .heron, gives the same
weights to the same architecture in PyTorch (benchmarks/deploy.py) and exports it to ONNX; torch
stays in the parent. Each engine then runs in a child process that imports only itself and numpy:

  base    resident set (VmRSS) after the imports, before the model is loaded
  loaded  VmRSS once the session is created
  peak    the high-water mark (VmHWM) over loading and `--runs` runs on one input (the first
          included, so planning runs count)

and reports `session = peak - base`: the memory the session needed at its worst: weights (Heron maps
them from the file, onnxruntime copies them), plans, arenas, scratch and outputs; and
`runs = (high-water mark during the runs) - loaded`: what running added on top of the loaded
session (for Heron this includes paging in the mapped weights on first use, which onnxruntime pays
while loading). The high-water mark is reset (/proc/self/clear_refs, 5) after the imports and again
after loading, so import-time transients are not counted. Both engines use the same intra-op thread count and their default memory options
(onnxruntime: CPU memory arena and memory patterns on). Linux only. Set HERON_BENCH_EXTRA_PATH to
a site-packages folder holding torch/onnxruntime/onnx when they live outside this environment.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, os, sys
def status():
    d = {}
    with open("/proc/self/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                d[k] = int(v.split()[0]) * 1024
    return d
engine, path, batch, runs, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
if os.environ.get("HERON_BENCH_EXTRA_PATH") and engine == "ort":
    sys.path.append(os.environ["HERON_BENCH_EXTRA_PATH"])
import numpy as np
if engine == "ort":
    import onnxruntime as ort
else:
    import heron
x = np.random.default_rng(0).standard_normal((batch, 3, 224, 224)).astype(np.float32)
base = status()["VmRSS"]
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    reset = True
except OSError:
    reset = False
if engine == "ort":
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    run = lambda: sess.run(None, {"input": x})
else:
    sess = heron.inference.Session(path, threads=threads, arena=(engine == "heron"))
    run = lambda: sess.run({"input": x})
st = status()
loaded, load_peak = st["VmRSS"], st["VmHWM"]
if reset:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
for _ in range(runs):
    out = run()
    del out
run_peak = status()["VmHWM"]
peak = max(load_peak, run_peak)
extra = {}
if engine != "ort":
    extra = {"heron_peak_bytes": sess.peak_memory, "heron_arena_bytes": sess.arena_bytes}
print(json.dumps({"base": base, "loaded": loaded, "load_peak": load_peak, "run_peak": run_peak, "peak": peak,
                  "hwm_reset": reset, **extra}))
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="resnet18,mobilenet_v2")
    ap.add_argument("--batches", default="1,8")
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--threads", type=int, default=0, help="intra-op threads for both (0: heron's default)")
    args = ap.parse_args()
    extra = os.environ.get("HERON_BENCH_EXTRA_PATH")
    if extra:
        sys.path.append(extra)
    import numpy as np
    import heron
    import heron.models
    import torch
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from deploy import torch_model

    threads = args.threads or heron.get_num_threads()
    torch.set_num_threads(threads)
    mib = 2.0 ** 20
    print(f"threads: {threads}; runs per process: {args.runs}; torch {torch.__version__}")
    print(f"{'model':13s} {'batch':>5s} {'engine':>10s} {'base MiB':>9s} {'loaded':>8s} {'peak':>8s} "
          f"{'session MiB':>12s} {'runs MiB':>9s} {'heron arena':>12s} {'heron peak':>11s}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models.split(","):
            heron.manual_seed(0)
            hm = getattr(heron.models, name)().eval()
            for b in [int(v) for v in args.batches.split(",")]:
                x = np.random.default_rng(0).standard_normal((b, 3, 224, 224)).astype(np.float32)
                hpath = os.path.join(tmp, f"{name}_{b}.heron")
                heron.jit.save(heron.jit.trace(hm, heron.from_numpy(x), check=False), hpath)
                opath = os.path.join(tmp, f"{name}_{b}.onnx")
                tm = torch_model(name, hm.state_dict())
                torch.onnx.export(tm, (torch.from_numpy(x),), opath, input_names=["input"], output_names=["output"],
                                  dynamo=False, dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
                for engine, path in (("ort", opath), ("heron", hpath), ("heron-off", hpath)):
                    r = subprocess.run([sys.executable, "-c", CHILD, engine, path, str(b), str(args.runs), str(threads)],
                                       capture_output=True, text=True, env=dict(os.environ))
                    if r.returncode:
                        print(f"{name} {b} {engine}: failed\n{r.stderr[-2000:]}")
                        continue
                    d = json.loads(r.stdout.strip().splitlines()[-1])
                    d.update(model=name, batch=b, engine=engine, session=d["peak"] - d["base"],
                             runs=d["run_peak"] - d["loaded"])
                    results.append(d)
                    ha = f"{d['heron_arena_bytes'] / mib:12.1f}" if "heron_arena_bytes" in d else f"{'':12s}"
                    hp = f"{d['heron_peak_bytes'] / mib:11.1f}" if "heron_peak_bytes" in d else f"{'':11s}"
                    print(f"{name:13s} {b:5d} {engine:>10s} {d['base'] / mib:9.1f} {d['loaded'] / mib:8.1f} "
                          f"{d['peak'] / mib:8.1f} {d['session'] / mib:12.1f} {d['runs'] / mib:9.1f} {ha} {hp}", flush=True)
    if os.environ.get("HERON_BENCH_JSON"):
        with open(os.environ["HERON_BENCH_JSON"], "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
