"""heron.distributed with 2-4 ranks as separate processes on loopback: every collective and dtype
against numpy, subgroups, errors, a killed rank, a rendezvous missing a rank. Every run is bounded
(subprocess timeout; the library's own timeouts)."""
import os
import pathlib
import subprocess
import sys
import uuid

import pytest

WORKER = pathlib.Path(__file__).with_name("distributed_worker.py")


def run_ranks(scenario, world, ranks=None, timeout=240):
    path = f"/tmp/heron_dist_py_{uuid.uuid4().hex}"
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", str(pathlib.Path(__file__).resolve().parents[2] / "python"))
    procs = [subprocess.Popen([sys.executable, str(WORKER), scenario, f"file://{path}", str(r), str(world)],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
             for r in (range(world) if ranks is None else ranks)]
    outs = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=timeout)
            outs.append((p.returncode, out))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        if os.path.exists(path):
            os.remove(path)
    return outs


@pytest.mark.parametrize("world", [2, 3, 4])
def test_every_collective_and_dtype(world):
    for rc, out in run_ranks("collectives", world):
        assert rc == 0, out
        assert out.strip().endswith("ok"), out


@pytest.mark.parametrize("world", [2, 3])
def test_distributed_data_parallel_matches_one_process(world):
    outs = run_ranks("ddp", world)
    for rc, out in outs:
        assert rc == 0, out
    assert "ddp max diff" in outs[0][1], outs[0][1]


@pytest.mark.parametrize("world", [2, 3])
def test_ddp_overlapped_reduction_matches_reduction_after_backward(world):
    outs = run_ranks("ddp_overlap", world)
    for rc, out in outs:
        assert rc == 0, out
        assert "overlapped" in out, out


def test_killed_rank_raises_on_every_other_rank():
    outs = run_ranks("killed", 3)
    for rc, out in outs[:-1]:
        assert rc == 0, out
        assert "error:" in out and out.strip().endswith("ok"), out
    assert outs[-1][0] == 0  # the rank that exited on purpose


@pytest.mark.parametrize("world", [2, 3])
def test_rank_killed_inside_a_same_host_arena_all_reduce(world):
    outs = run_ranks("killed_arena", world)
    for rc, out in outs[:-1]:
        assert rc == 0, out
        assert "error:" in out and out.strip().endswith("ok"), out
    assert outs[-1][0] == 0  # the rank that exited on purpose


def test_rendezvous_missing_a_rank_times_out_clearly():
    for rc, out in run_ranks("missing", 3, ranks=[0, 1]):
        assert rc == 0, out
        assert "timeout:" in out and "timed out" in out, out


def test_not_initialized_and_bad_backend():
    code = ("import heron.distributed as d\n"
            "assert d.is_available() and not d.is_initialized()\n"
            "try:\n d.get_rank()\nexcept RuntimeError as e: assert 'init_process_group' in str(e)\n"
            "else: raise SystemExit('no error')\n"
            "try:\n d.init_process_group('nccl')\nexcept ValueError: pass\n"
            "else: raise SystemExit('no error')\n"
            "try:\n d.init_process_group(init_method='bogus://', rank=0, world_size=1)\nexcept ValueError as e: print('ok', e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "ok" in r.stdout, r.stdout + r.stderr


SCRIPT = r"""
import sys, os
import heron, heron.distributed as dist
dist.init_process_group(timeout=60)
t = heron.ones(3) * (dist.get_rank() + 1)
dist.all_reduce(t)
line = f"rank {dist.get_rank()} of {dist.get_world_size()} local {os.environ['LOCAL_RANK']} sum {t.tolist()} {sys.argv[1:]}\n"
os.write(1, line.encode())  # one write: the ranks share the pipe
dist.destroy_process_group()
"""


def _free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_launcher_starts_nproc_per_node_ranks(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    r = subprocess.run([sys.executable, "-m", "heron.distributed.run", "--nproc-per-node", "3", "--master-port",
                        str(_free_port()), str(script), "--lr", "0.1"], capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = sorted(l for l in r.stdout.splitlines() if l.startswith("rank"))
    assert len(lines) == 3, r.stdout
    for i, line in enumerate(lines):
        assert line.startswith(f"rank {i} of 3 local {i} sum [6.0, 6.0, 6.0]"), line
        assert "'--lr', '0.1'" in line


def test_cpu_shares_split_evenly_and_cover_every_cpu():
    from heron.distributed.run import cpu_shares
    assert cpu_shares([3, 0, 1, 2], 2) == [[0, 1], [2, 3]]
    assert cpu_shares(range(5), 2) == [[0, 1], [2, 3, 4]]
    assert cpu_shares(range(7), 3) == [[0, 1], [2, 3], [4, 5, 6]]
    assert cpu_shares([4, 6], 3) == [[4], [6], [4]]  # more processes than CPUs: round-robin
    assert cpu_shares([5], 1) == [[5]]
    with pytest.raises(ValueError):
        cpu_shares([], 2)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU binding needs sched_setaffinity (Linux)")
@pytest.mark.parametrize("nproc", [2, 3])
def test_launcher_binds_each_process_to_its_share_of_the_cpus(tmp_path, nproc):
    """--bind-to cores: each rank runs on the share cpu_shares gives it, with as many threads."""
    from heron.distributed.run import cpu_shares
    script = tmp_path / "where.py"
    script.write_text("import os\n"  # one write per process, so the ranks' lines do not interleave
                      "line = f\"rank {os.environ['LOCAL_RANK']} {sorted(os.sched_getaffinity(0))} {os.environ['HERON_NUM_THREADS']}\\n\"\n"
                      "os.write(1, line.encode())\n")
    env = {k: v for k, v in os.environ.items() if k != "HERON_NUM_THREADS"}
    r = subprocess.run([sys.executable, "-m", "heron.distributed.run", "--nproc-per-node", str(nproc), "--bind-to", "cores",
                        str(script)], capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    shares = cpu_shares(os.sched_getaffinity(0), nproc)
    got = sorted(l for l in r.stdout.splitlines() if l.startswith("rank"))
    assert got == [f"rank {i} {shares[i]} {len(shares[i])}" for i in range(nproc)]
    # without binding every process keeps the launcher's CPUs
    r = subprocess.run([sys.executable, "-m", "heron.distributed.run", "--nproc-per-node", "2", str(script)],
                       capture_output=True, text=True, timeout=120, env=dict(env, HERON_NUM_THREADS="1"))
    assert r.returncode == 0, r.stdout + r.stderr
    assert all(str(sorted(os.sched_getaffinity(0))) in l for l in r.stdout.splitlines() if l.startswith("rank"))


@pytest.mark.parametrize("nproc", [1, 2])
def test_launcher_runs_a_module_with_m(tmp_path, nproc):
    pkg = tmp_path / "launchpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "train.py").write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "SLURM_", "RANK", "WORLD_SIZE"))}
    env["PYTHONPATH"] = str(tmp_path) + os.pathsep + env.get("PYTHONPATH", "")
    r = subprocess.run([sys.executable, "-m", "heron.distributed.run", "--nproc-per-node", str(nproc),
                        "--master-port", str(_free_port()), "-m", "launchpkg.train", "--lr", "0.1"],
                       capture_output=True, text=True, timeout=180, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    lines = sorted(l for l in r.stdout.splitlines() if l.startswith("rank"))
    assert len(lines) == nproc, r.stdout
    total = float(sum(range(1, nproc + 1)))
    for i, line in enumerate(lines):
        assert line.startswith(f"rank {i} of {nproc} local {i} sum [{total}, {total}, {total}]"), line
        assert "'--lr', '0.1'" in line


def test_launcher_reads_open_mpi_and_slurm_variables(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    port = str(_free_port())
    procs = []
    for r, extra in [(0, {"OMPI_COMM_WORLD_RANK": "0", "OMPI_COMM_WORLD_SIZE": "2"}),
                     (1, {"SLURM_PROCID": "1", "SLURM_NTASKS": "2"})]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "SLURM_", "RANK", "WORLD_SIZE"))}
        env.update(extra, MASTER_PORT=port)
        procs.append(subprocess.Popen([sys.executable, "-m", "heron.distributed.run", str(script)], env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    outs = [p.communicate(timeout=180)[0] for p in procs]
    for i, (p, out) in enumerate(zip(procs, outs)):
        assert p.returncode == 0, out
        assert f"rank {i} of 2 local 0 sum [3.0, 3.0, 3.0]" in out, out


def test_launcher_stops_the_others_when_one_fails(tmp_path):
    script = tmp_path / "fail.py"
    script.write_text("import os, sys, time\n"
                      "if os.environ['LOCAL_RANK'] == '1': sys.exit(3)\n"
                      "time.sleep(120)\n")
    r = subprocess.run([sys.executable, "-m", "heron.distributed.run", "--nproc-per-node", "2", str(script)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "exited with status 3" in r.stderr


def test_distributed_sampler_partitions_like_pytorch():
    import heron
    from heron.utils.data import DistributedSampler
    data = list(range(10))
    parts = [list(DistributedSampler(data, num_replicas=3, rank=r, shuffle=False)) for r in range(3)]
    assert parts == [[0, 3, 6, 9], [1, 4, 7, 0], [2, 5, 8, 1]]  # padded by repeating, as PyTorch does
    parts = [list(DistributedSampler(data, num_replicas=3, rank=r, shuffle=False, drop_last=True)) for r in range(3)]
    assert parts == [[0, 3, 6], [1, 4, 7], [2, 5, 8]]
    shuffled = [DistributedSampler(data, num_replicas=2, rank=r, seed=5) for r in range(2)]
    a = [list(s) for s in shuffled]
    assert sorted(a[0] + a[1]) == data and len(shuffled[0]) == 5
    for s in shuffled:
        s.set_epoch(1)
    b = [list(s) for s in shuffled]
    assert sorted(b[0] + b[1]) == data and b != a
    assert [list(s) for s in shuffled] == b  # same epoch, same order
    with pytest.raises(ValueError):
        DistributedSampler(data, num_replicas=2, rank=2)
    with pytest.raises(RuntimeError):
        DistributedSampler(data)
    del heron
