"""One rank of the heron.distributed tests (run by test_distributed.py as a separate process).

    python distributed_worker.py SCENARIO INIT_METHOD RANK WORLD_SIZE

Prints "RANK ok" on success; any failed check raises (non-zero exit status)."""
import sys

import numpy as np

import heron
import heron.distributed as dist

DTYPES = [heron.float32, heron.float64, heron.float16, heron.bfloat16, heron.int8, heron.uint8, heron.int32,
          heron.int64, heron.bool]


def tensor(values, dtype):
    return heron.from_numpy(np.asarray(values, dtype=np.float64)).to(dtype).contiguous()


def as_np(t):
    return t.to(heron.float64).numpy()


def check(got, want, what):
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape or not np.allclose(got, want, rtol=1e-2, atol=1e-2):
        raise AssertionError(f"{what}: got {got[:8]} expected {want[:8]}")


def inputs(rank, n, op, dtype):
    i = np.arange(n)
    if dtype == heron.bool:
        return ((i + rank) % 2).astype(np.float64)
    if op == dist.ReduceOp.PRODUCT:
        return 1.0 + (i + rank) % 2
    return rank + 1.0 + i % 3


def oracle(world, n, op, dtype):
    xs = np.stack([inputs(r, n, op, dtype) for r in range(world)])
    if dtype == heron.bool:
        return (xs != 0).any(0) * 1.0 if op in (dist.ReduceOp.SUM, dist.ReduceOp.MAX) else (xs != 0).all(0) * 1.0
    return {dist.ReduceOp.SUM: xs.sum(0), dist.ReduceOp.PRODUCT: xs.prod(0), dist.ReduceOp.MIN: xs.min(0),
            dist.ReduceOp.MAX: xs.max(0), dist.ReduceOp.AVG: xs.mean(0)}[op]


def collectives(rank, world):
    assert dist.is_initialized() and dist.get_rank() == rank and dist.get_world_size() == world
    assert dist.get_backend() == "commnet"
    for dtype in DTYPES:
        what = f"{dtype} world={world}"
        for op in dist.ReduceOp:
            if op == dist.ReduceOp.AVG and not dtype.is_floating_point:
                continue
            for n in (0, 5, 40000):  # 40000: the ring algorithm for every dtype wider than a byte
                t = tensor(inputs(rank, n, op, dtype), dtype)
                assert dist.all_reduce(t, op=op) is None
                check(as_np(t), oracle(world, n, op, dtype), f"all_reduce {op.name} {what} n={n}")
        val = (lambda r, n: (np.arange(n) + r) % 2) if dtype == heron.bool else (lambda r, n: (np.arange(n) * 3 + r * 7) % 50)
        t = tensor(val(rank, 64), dtype)
        dist.broadcast(t, src=world - 1)
        check(as_np(t), val(world - 1, 64), f"broadcast {what}")
        t = tensor(inputs(rank, 64, dist.ReduceOp.SUM, dtype), dtype)
        dist.reduce(t, dst=0, op=dist.ReduceOp.SUM)
        want = oracle(world, 64, dist.ReduceOp.SUM, dtype) if rank == 0 else inputs(rank, 64, dist.ReduceOp.SUM, dtype)
        check(as_np(t), want, f"reduce {what}")
        outs = [tensor(np.zeros(64), dtype) for _ in range(world)]
        dist.all_gather(outs, tensor(val(rank, 64), dtype))
        for k in range(world):
            check(as_np(outs[k]), val(k, 64), f"all_gather {what}")
        ins = [tensor(val(rank * world + k, 64), dtype) for k in range(world)]
        outs = [tensor(np.zeros(64), dtype) for _ in range(world)]
        dist.all_to_all(outs, ins)
        for k in range(world):
            check(as_np(outs[k]), val(k * world + rank, 64), f"all_to_all {what}")
        if dtype != heron.bool:
            ins = [tensor(inputs(rank + k, 64, dist.ReduceOp.SUM, dtype), dtype) for k in range(world)]
            out = tensor(np.zeros(64), dtype)
            dist.reduce_scatter(out, ins, op=dist.ReduceOp.SUM)
            want = sum(inputs(k + rank, 64, dist.ReduceOp.SUM, dtype) for k in range(world))
            check(as_np(out), want, f"reduce_scatter {what}")
        assert dist.barrier(async_op=True).wait()
    # point to point around the ring
    t = tensor(np.full(8, rank), heron.float32)
    r = tensor(np.zeros(8), heron.float32)
    if rank % 2 == 0:
        dist.send(t, dst=(rank + 1) % world, tag=3)
        dist.recv(r, src=(rank - 1) % world, tag=3)
    else:
        dist.recv(r, src=(rank - 1) % world, tag=3)
        dist.send(t, dst=(rank + 1) % world, tag=3)
    check(as_np(r), np.full(8, (rank - 1) % world), "send/recv")
    # subgroups: global ranks in src/dst, group ranks from get_rank(group)
    evens = dist.new_group([r for r in range(world) if r % 2 == 0])
    if rank % 2 == 0:
        assert dist.get_rank(evens) == rank // 2
        t = tensor([float(rank)], heron.float32)
        dist.all_reduce(t, group=evens)
        check(as_np(t), [float(sum(r for r in range(world) if r % 2 == 0))], "subgroup all_reduce")
        t = tensor([float(rank)], heron.float32)
        dist.broadcast(t, src=0, group=evens)
        check(as_np(t), [0.0], "subgroup broadcast")
    else:
        assert evens is dist.GroupMember.NON_GROUP_MEMBER
    # errors
    for bad, exc in [(lambda: dist.all_reduce(tensor([1, 2], heron.int32), op=dist.ReduceOp.AVG), TypeError),
                     (lambda: dist.broadcast(tensor([1], heron.float32), src=world), ValueError),
                     (lambda: dist.all_reduce([1, 2]), TypeError),
                     (lambda: dist.all_reduce(tensor([[1, 2], [3, 4]], heron.float32).T), ValueError),
                     (lambda: dist.all_gather([tensor([1], heron.float32)], tensor([1], heron.float32)), ValueError)]:
        try:
            bad()
        except exc:
            pass
        else:
            raise AssertionError(f"no {exc.__name__}")
    dist.barrier()
    dist.destroy_process_group()
    assert not dist.is_initialized()


def killed(rank, world):
    # The last rank dies in the middle of a series of collectives; the others must raise.
    t = tensor(np.ones(1000), heron.float32)
    try:
        for i in range(1000000):
            if rank == world - 1 and i == 20:
                import os
                os._exit(0)
            dist.all_reduce(t)
            t = tensor(np.ones(1000), heron.float32)
    except dist.DistBackendError as e:
        assert "rank" in str(e), str(e)
        print(f"{rank} error: {e}")
        return
    raise AssertionError("no error after a rank died")


def killed_arena(rank, world):
    # 4 MiB all-reduces on the same-host shared arena; the last rank dies inside one (a timer thread
    # exits the process while the main thread is in all_reduce, the ctypes call having released the
    # GIL). The others must raise a communication error naming a rank -- detected through the dead
    # peer's connection, not by waiting for the 60 s timeout.
    import os
    import threading
    t = tensor(np.ones(1 << 20), heron.float32)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    if rank == world - 1:
        threading.Timer(0.3, lambda: os._exit(0)).start()
    try:
        for _ in range(1000000):
            dist.all_reduce(t, op=dist.ReduceOp.MAX)
    except dist.DistBackendError as e:
        assert "rank" in str(e) and not isinstance(e, dist.DistTimeoutError), repr(e)
        print(f"{rank} error: {e}")
        return
    raise AssertionError("no error after a rank died")


def ddp(rank, world):
    """DistributedDataParallel + DistributedSampler: `world` ranks with local batches of 4 must end
    where one process with batches of 4 * world ends (to 1e-5), and the replicas must agree."""
    import heron.nn as nn
    from heron.nn.parallel import DistributedDataParallel
    from heron.utils.data import DistributedSampler

    data = np.random.RandomState(0).randn(8 * world, 4).astype(np.float32)
    target = (data @ np.array([[1.0], [-2.0], [0.5], [3.0]], np.float32) + 0.1).astype(np.float32)

    def make_model():
        return nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))

    heron.manual_seed(100 + rank)  # different weights on purpose: DDP broadcasts rank 0's
    model = DistributedDataParallel(make_model(), bucket_cap_mb=0.0001)  # several buckets
    assert len(model.buckets()) == 0
    opt = heron.optim.SGD(model.parameters(), lr=0.05)
    sampler = DistributedSampler(list(range(len(data))), shuffle=True, seed=3)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        idx = list(sampler)
        for b in range(0, len(idx), 4):
            bi = idx[b:b + 4]
            opt.zero_grad()
            loss = ((model(heron.from_numpy(data[bi])) - heron.from_numpy(target[bi])) ** 2).mean()
            loss.backward()
            opt.step()
    assert len(model.buckets()) > 1
    mine = np.concatenate([p.detach().numpy().ravel() for p in model.parameters()])
    ref = heron.from_numpy(mine.copy())
    dist.broadcast(ref, src=0)
    assert np.array_equal(ref.numpy(), mine), "replicas differ"
    if rank == 0:
        heron.manual_seed(100)  # rank 0's initial weights
        single = make_model()
        sopt = heron.optim.SGD(single.parameters(), lr=0.05)
        samplers = [DistributedSampler(list(range(len(data))), num_replicas=world, rank=r, shuffle=True, seed=3)
                    for r in range(world)]
        for epoch in range(3):
            parts = []
            for s in samplers:
                s.set_epoch(epoch)
                parts.append(list(s))
            for b in range(0, len(parts[0]), 4):
                bi = sum((p[b:b + 4] for p in parts), [])
                sopt.zero_grad()
                loss = ((single(heron.from_numpy(data[bi])) - heron.from_numpy(target[bi])) ** 2).mean()
                loss.backward()
                sopt.step()
        want = np.concatenate([p.detach().numpy().ravel() for p in single.parameters()])
        diff = np.abs(want - mine).max()
        assert diff < 1e-5, f"DDP differs from one process by {diff}"
        print(f"{rank} ddp max diff {diff:.2e}")
    dist.destroy_process_group()


def ddp_overlap(rank, world):
    """The overlapped reduction (buckets all-reduced from the post-accumulate-grad hooks while
    backward runs) must give bit for bit the parameters of the reduction after backward
    (overlap_backward=False); the buckets before the first one holding a parameter that gets no
    gradient must have gone out from the hooks (that one and the later ones after backward), and
    the parameter must stay without a gradient."""
    import heron.nn as nn
    from heron.nn.parallel import DistributedDataParallel

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.unused = nn.Linear(3, 3)  # registered first: reduced last
            self.a = nn.Linear(6, 16)
            self.b = nn.Linear(16, 16)
            self.c = nn.Linear(16, 2)

        def forward(self, x):
            return self.c(heron.tanh(self.b(heron.tanh(self.a(x)))))

    rng = np.random.RandomState(5 + rank)  # each rank its own data
    models, opts = [], []
    for overlap in (True, False):
        heron.manual_seed(11)
        m = DistributedDataParallel(Net(), bucket_cap_mb=0.0005, overlap_backward=overlap)
        models.append(m)
        opts.append(heron.optim.SGD(m.parameters(), lr=0.1, momentum=0.9))
    n_buckets = len(models[0]._plan)
    assert n_buckets > 2, n_buckets
    for step in range(6):
        x = heron.from_numpy(rng.randn(5, 6).astype(np.float32))
        y = heron.from_numpy(rng.randn(5, 2).astype(np.float32))
        for m, o in zip(models, opts):
            o.zero_grad()
            ((m(x) - y) ** 2).mean().backward()
            o.step()
        # The buckets go out in plan order; the first one holding an `unused` parameter never
        # completes from the hooks (it is reduced after backward), nor do the ones after it.
        m0 = models[0]
        unused = {id(p) for p in m0.module.unused.parameters()}
        first_blocked = next(b for b, idx in enumerate(m0._plan) if any(id(m0._params[i]) in unused for i in idx))
        assert first_blocked >= 2, m0._plan
        assert m0._overlapped_buckets == first_blocked, (m0._overlapped_buckets, first_blocked)
        assert models[1]._overlapped_buckets == 0
        for p, q in zip(models[0].parameters(), models[1].parameters()):
            assert (p.grad is None) == (q.grad is None)
            assert np.array_equal(p.detach().numpy(), q.detach().numpy()), f"step {step}: overlap differs"
    assert all(p.grad is None for p in models[0].module.unused.parameters())
    # A backward that raises half way (a user hook) leaves a half-done round: the next iteration
    # must start afresh and still match the reduction after backward.
    boom = [True]

    def failing(_t):
        if boom[0]:
            boom[0] = False
            raise RuntimeError("user hook failed")

    h = models[0].module.a.weight.register_post_accumulate_grad_hook(failing)
    x = heron.from_numpy(rng.randn(5, 6).astype(np.float32))
    try:
        ((models[0](x)) ** 2).mean().backward()
        raise AssertionError("backward did not raise")
    except RuntimeError as e:
        assert "user hook failed" in str(e), e
    h.remove()
    for m, o in zip(models, opts):
        o.zero_grad()
        ((m(x) - 1.0) ** 2).mean().backward()
    for p, q in zip(models[0].parameters(), models[1].parameters()):
        if p.grad is not None:
            assert np.array_equal(p.grad.numpy(), q.grad.numpy()), "after a failed backward"
    # the replicas agree
    mine = np.concatenate([p.detach().numpy().ravel() for p in models[0].parameters()])
    ref = heron.from_numpy(mine.copy())
    dist.broadcast(ref, src=0)
    assert np.array_equal(ref.numpy(), mine), "replicas differ"
    print(f"{rank} overlapped {models[0]._overlapped_buckets} of {n_buckets} buckets")
    dist.destroy_process_group()


def main():
    scenario, method, rank, world = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    if scenario == "missing":
        try:
            dist.init_process_group("commnet", init_method=method, rank=rank, world_size=world, timeout=1.0)
        except dist.DistTimeoutError as e:
            assert "rank(s) 2" in str(e) or "rank 2" in str(e), str(e)
            print(f"{rank} timeout: {e}")
            return
        raise AssertionError("rendezvous did not time out")
    dist.init_process_group("gloo", init_method=method, rank=rank, world_size=world, timeout=60)
    {"collectives": collectives, "killed": killed, "killed_arena": killed_arena, "ddp": ddp, "ddp_overlap": ddp_overlap}[scenario](rank, world)
    print(f"{rank} ok")


if __name__ == "__main__":
    main()
