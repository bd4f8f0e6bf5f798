"""heron_dist_* through the C ABI: two ranks as threads of this process (cffi releases the GIL
during calls), every entry point, NULL and bad arguments, handle ownership (the leak check covers
process groups), error codes of a failed rendezvous and of a destroyed group."""
import os
import threading
import uuid

import numpy as np


def run2(capi, body, world=2, timeout_ms=20000):
    """Runs body(rank, group) on `world` threads; returns their results (exceptions re-raised)."""
    path = f"/tmp/heron_capi_dist_{uuid.uuid4().hex}"
    results, errors = [None] * world, [None] * world

    def rank_main(r):
        g = capi.ffi.new("heron_process_group**")
        try:
            capi.check(capi.lib.heron_dist_init(f"file://{path}".encode(), r, world, timeout_ms, g))
            try:
                results[r] = body(r, g[0])
            finally:
                capi.check(capi.lib.heron_dist_destroy(g[0]))
                capi.lib.heron_dist_release(g[0])
        except BaseException as e:  # noqa: BLE001 (re-raised below)
            errors[r] = e

    ts = [threading.Thread(target=rank_main, args=(r,)) for r in range(world)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
        assert not t.is_alive(), "a rank hung"
    if os.path.exists(path):
        os.remove(path)
    for e in errors:
        if e is not None:
            raise e
    return results


def new(capi, arr, dtype=None):
    """An untracked tensor (the rank threads release it themselves)."""
    arr = np.ascontiguousarray(arr)
    code = capi.np_dtype_code(arr.dtype) if dtype is None else dtype
    shape = capi.ffi.new("int64_t[]", list(arr.shape) or [0])
    out = capi.ffi.new("heron_tensor**")
    capi.check(capi.lib.heron_tensor_from_host(capi.ffi.from_buffer(arr) if arr.nbytes else capi.ffi.NULL, arr.nbytes,
                                               code, shape, arr.ndim, capi.ffi.NULL, out))
    return out[0]


def read(capi, t, dtype, n):
    out = np.zeros(n, dtype=dtype)
    capi.check(capi.lib.heron_tensor_to_host(t, capi.ffi.from_buffer(out), out.nbytes))
    return out


def test_rank_size_and_every_collective(capi):
    lib, C, ffi = capi.lib, capi.C, capi.ffi

    def body(r, g):
        out = ffi.new("int32_t*")
        capi.check(lib.heron_dist_rank(g, out))
        assert out[0] == r
        capi.check(lib.heron_dist_size(g, out))
        assert out[0] == 2
        ts = []
        try:
            t = new(capi, np.full(5, r + 1, np.float32)); ts.append(t)
            capi.check(lib.heron_dist_all_reduce(g, t, C.HERON_REDUCE_SUM))
            assert read(capi, t, np.float32, 5).tolist() == [3.0] * 5
            capi.check(lib.heron_dist_all_reduce(g, t, C.HERON_REDUCE_AVG))
            assert read(capi, t, np.float32, 5).tolist() == [3.0] * 5
            b = new(capi, np.full(3, r, np.int64)); ts.append(b)
            capi.check(lib.heron_dist_broadcast(g, b, 1))
            assert read(capi, b, np.int64, 3).tolist() == [1, 1, 1]
            d = new(capi, np.full(3, r + 5, np.int32)); ts.append(d)
            capi.check(lib.heron_dist_reduce(g, d, 0, C.HERON_REDUCE_MAX))
            assert read(capi, d, np.int32, 3).tolist() == ([6] * 3 if r == 0 else [5 + r] * 3)
            outs = [new(capi, np.zeros(2, np.float64)) for _ in range(2)]; ts += outs
            inp = new(capi, np.full(2, 10.0 * r)); ts.append(inp)
            capi.check(lib.heron_dist_all_gather(g, ffi.new("heron_tensor*[]", outs), 2, inp))
            assert [read(capi, o, np.float64, 2).tolist() for o in outs] == [[0.0, 0.0], [10.0, 10.0]]
            ins = [new(capi, np.full(2, k + r, np.int8)) for k in range(2)]; ts += ins
            rs = new(capi, np.zeros(2, np.int8)); ts.append(rs)
            capi.check(lib.heron_dist_reduce_scatter(g, rs, ffi.new("heron_tensor*[]", ins), 2, C.HERON_REDUCE_SUM))
            assert read(capi, rs, np.int8, 2).tolist() == [2 * r + 1] * 2
            a_in = [new(capi, np.full(1, 10 * r + k, np.int64)) for k in range(2)]; ts += a_in
            a_out = [new(capi, np.zeros(1, np.int64)) for _ in range(2)]; ts += a_out
            capi.check(lib.heron_dist_all_to_all(g, ffi.new("heron_tensor*[]", a_out), 2, ffi.new("heron_tensor*[]", a_in), 2))
            assert [read(capi, o, np.int64, 1)[0] for o in a_out] == [r, 10 + r]
            capi.check(lib.heron_dist_barrier(g))
            p = new(capi, np.full(4, 7 if r == 0 else 0, np.uint8)); ts.append(p)
            if r == 0:
                capi.check(lib.heron_dist_send(g, p, 1, 9))
            else:
                capi.check(lib.heron_dist_recv(g, p, 0, 9))
                assert read(capi, p, np.uint8, 4).tolist() == [7] * 4
            sub = ffi.new("heron_process_group**")
            capi.check(lib.heron_dist_new_group(g, ffi.new("int32_t[]", [1]), 1, sub))
            capi.check(lib.heron_dist_rank(sub[0], out))
            assert out[0] == (0 if r == 1 else -1)
            lib.heron_dist_release(sub[0])
            # Errors keep their codes and say why.
            assert lib.heron_dist_all_reduce(g, t, 99) == C.HERON_ERR_INVALID_ARGUMENT
            assert "unknown reduce op" in capi.message()
            assert lib.heron_dist_broadcast(g, t, 5) == C.HERON_ERR_INDEX
            assert lib.heron_dist_all_reduce(g, ffi.NULL, C.HERON_REDUCE_SUM) == C.HERON_ERR_NULL_HANDLE
            assert lib.heron_dist_all_gather(g, ffi.NULL, 2, t) == C.HERON_ERR_NULL_HANDLE
            iv = new(capi, np.ones(2, np.int32)); ts.append(iv)
            assert lib.heron_dist_all_reduce(g, iv, C.HERON_REDUCE_AVG) == C.HERON_ERR_TYPE
            capi.check(lib.heron_dist_barrier(g))
        finally:
            for x in ts:
                lib.heron_tensor_release(x)
        return True

    assert run2(capi, body) == [True, True]


def test_null_and_dead_handles(capi):
    lib, C, ffi = capi.lib, capi.C, capi.ffi
    out = ffi.new("int32_t*")
    capi.expect(lib.heron_dist_rank(ffi.NULL, out), C.HERON_ERR_NULL_HANDLE, "group")
    capi.expect(lib.heron_dist_size(ffi.NULL, out), C.HERON_ERR_NULL_HANDLE)
    capi.expect(lib.heron_dist_barrier(ffi.NULL), C.HERON_ERR_NULL_HANDLE)
    capi.expect(lib.heron_dist_destroy(ffi.NULL), C.HERON_ERR_NULL_HANDLE)
    lib.heron_dist_release(ffi.NULL)
    g = ffi.new("heron_process_group**")
    capi.expect(lib.heron_dist_init(b"bogus://x", 0, 1, 1000, g), C.HERON_ERR_INVALID_ARGUMENT, "init_method")
    capi.expect(lib.heron_dist_init(b"file:///tmp/x", 3, 2, 1000, g), C.HERON_ERR_INDEX, "out of range")
    capi.expect(lib.heron_dist_init(ffi.NULL, 0, 1, 0, g), C.HERON_ERR_INVALID_ARGUMENT, "timeout")


def test_world_of_one_then_destroyed_group_is_a_comm_error(capi):
    lib, C, ffi = capi.lib, capi.C, capi.ffi
    path = f"/tmp/heron_capi_dist_{uuid.uuid4().hex}"
    g = ffi.new("heron_process_group**")
    capi.check(lib.heron_dist_init(f"file://{path}".encode(), 0, 1, 5000, g))
    t = capi.from_numpy(np.arange(3, dtype=np.float32))
    capi.check(lib.heron_dist_all_reduce(g[0], t, C.HERON_REDUCE_SUM))
    capi.check(lib.heron_dist_destroy(g[0]))
    capi.check(lib.heron_dist_destroy(g[0]))  # idempotent
    capi.expect(lib.heron_dist_barrier(g[0]), C.HERON_ERR_COMM, "destroyed")
    lib.heron_dist_release(g[0])


def test_rendezvous_missing_a_rank_is_a_timeout(capi):
    lib, C, ffi = capi.lib, capi.C, capi.ffi
    path = f"/tmp/heron_capi_dist_{uuid.uuid4().hex}"
    g = ffi.new("heron_process_group**")
    st = lib.heron_dist_init(f"file://{path}".encode(), 0, 2, 300, g)
    capi.expect(st, C.HERON_ERR_TIMEOUT, "timed out", "rank(s) 1")
    if os.path.exists(path):
        os.remove(path)
