"""Join/split, indexing and movement ops against numpy, for every dtype.

bfloat16 has no numpy twin: its inputs are small integers (exact in bfloat16) and results are
compared as float32.
"""
import itertools

import numpy as np
import pytest

import heron

DTYPES = [heron.float32, heron.float64, heron.float16, heron.bfloat16, heron.int8, heron.uint8, heron.int32,
          heron.int64, heron.bool]
NP = {heron.float32: np.float32, heron.float64: np.float64, heron.float16: np.float16, heron.bfloat16: np.float32,
      heron.int8: np.int8, heron.uint8: np.uint8, heron.int32: np.int32, heron.int64: np.int64, heron.bool: np.bool_}
ids = [str(d) for d in DTYPES]


def arr(shape, dtype, start=0):
    """Distinct small values (0, 1, 2, ... mod 100; 0/1 alternating for bool) of the numpy twin of dtype."""
    a = (np.arange(int(np.prod(shape))) + start).reshape(shape)
    if dtype == heron.bool:
        return (a % 3 != 0)
    return (a % 100).astype(NP[dtype])


def T(a, dtype=None):
    """A heron tensor of numpy array a (in `dtype` when given, e.g. bfloat16)."""
    return heron.tensor(np.asarray(a), dtype=dtype)


def N(t):
    """A heron tensor as numpy (bfloat16 as float32)."""
    if t.dtype == heron.bfloat16:
        t = heron.cast(t, heron.float32)
    return t.numpy().copy()


def check(t, expected, dtype=None):
    expected = np.asarray(expected)
    assert tuple(t.shape) == expected.shape, (t.shape, expected.shape)
    if dtype is not None:
        assert t.dtype == dtype, (t.dtype, dtype)
    np.testing.assert_array_equal(N(t), expected.astype(N(t).dtype))


def idx(a):
    return heron.tensor(np.asarray(a, dtype=np.int64))


# ------------------------------------------------------------------ concat / stack / split / chunk
@pytest.mark.parametrize("dt", DTYPES, ids=ids)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_concat(dt, dim):
    a, b, c = arr((2, 3), dt), arr((2, 3), dt, 7), arr((2, 3), dt, 3)
    if dim == 0:
        b = arr((1, 3), dt, 7)
    out = heron.concat([T(a, dt), T(b, dt), T(c, dt)], dim=dim)
    check(out, np.concatenate([a, b, c], axis=dim), dt)


@pytest.mark.parametrize("d1,d2", [(heron.int32, heron.float32), (heron.int8, heron.uint8), (heron.bool, heron.int64),
                                   (heron.float16, heron.float64), (heron.bfloat16, heron.float16)])
def test_concat_promotes(d1, d2):
    a, b = arr((2, 2), d1), arr((1, 2), d2, 5)
    out = heron.concat([T(a, d1), T(b, d2)])
    want = heron.promote_types(d1, d2)
    assert out.dtype == want
    check(out, np.concatenate([a.astype(np.float64), b.astype(np.float64)]))


def test_concat_noncontiguous_and_empty():
    a = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    ta = T(a)
    out = heron.concat([heron.transpose(ta, 0, 1), T(np.zeros((0, 3), np.float32)), T(a[:, ::2].T.copy())])
    check(out, np.concatenate([a.T, np.zeros((0, 3)), a[:, ::2].T]))


def test_concat_errors():
    a = T(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"\[2, 4\]"):
        heron.concat([a, T(np.zeros((2, 4), np.float32))])
    with pytest.raises(ValueError):
        heron.concat([a, T(np.zeros(6, np.float32))])
    with pytest.raises(ValueError):
        heron.concat([T(np.float32(1)), T(np.float32(2))])
    with pytest.raises(IndexError):
        heron.concat([a, a], dim=2)


@pytest.mark.parametrize("dt", DTYPES, ids=ids)
@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_stack(dt, dim):
    xs = [arr((2, 3), dt, k) for k in range(3)]
    check(heron.stack([T(x, dt) for x in xs], dim=dim), np.stack(xs, axis=dim), dt)


def test_stack_errors():
    with pytest.raises(ValueError):
        heron.stack([T(np.zeros(2)), T(np.zeros(3))])
    with pytest.raises(IndexError):
        heron.stack([T(np.zeros(2)), T(np.zeros(2))], dim=3)


@pytest.mark.parametrize("dt", DTYPES, ids=ids)
def test_split(dt):
    a = arr((7, 4), dt)
    t = T(a, dt)
    parts = heron.split(t, 3)
    expected = [a[0:3], a[3:6], a[6:7]]
    assert len(parts) == 3
    for p, e in zip(parts, expected):
        check(p, e, dt)
    parts = heron.split(t, sizes=[1, 3], dim=1)
    for p, e in zip(parts, np.split(a, [1], axis=1)):
        check(p, e, dt)
    with pytest.raises(ValueError):
        heron.split(t, sizes=[1, 2], dim=1)
    with pytest.raises(ValueError):
        heron.split(t)
    with pytest.raises(ValueError):
        heron.split(t, 0)


def test_split_returns_views():
    t = T(np.zeros((4, 2), np.float32))
    a, b = heron.split(t, 2)
    heron.copy_(b, T(np.ones((2, 2), np.float32)))
    check(t, np.array([[0, 0], [0, 0], [1, 1], [1, 1]]))


@pytest.mark.parametrize("n,chunks", [(5, 3), (6, 4), (2, 5), (9, 3), (1, 1), (0, 3)])
def test_chunk(n, chunks):
    a = np.arange(n * 2).reshape(n, 2)
    parts = heron.chunk(T(a), chunks)
    step = -(-n // chunks) if n else 0
    expected = [a[i:i + step] for i in range(0, n, step)] if n else [a[0:0]] * chunks
    assert len(parts) == len(expected)
    for p, e in zip(parts, expected):
        check(p, e)
    with pytest.raises(ValueError):
        heron.chunk(T(a), 0)


# ------------------------------------------------------------------ gather / scatter / index_select / take_along_dim
@pytest.mark.parametrize("dt", DTYPES, ids=ids)
@pytest.mark.parametrize("dim", [0, 1, 2])
def test_gather(dt, dim):
    rng = np.random.default_rng(dim)
    a = arr((3, 4, 5), dt)
    ishape = [2, 3, 4]
    ishape[dim] = 6
    i = rng.integers(0, a.shape[dim], size=ishape)
    # gather == take_along_axis on the input cut to the index's shape (outside dim)
    cut = tuple(slice(0, s) if d != dim else slice(None) for d, s in enumerate(ishape))
    check(heron.gather(T(a, dt), idx(i), dim), np.take_along_axis(a[cut], i, axis=dim), dt)
    check(heron.gather(T(a, dt), idx(i).to(heron.int32), dim), np.take_along_axis(a[cut], i, axis=dim), dt)


def test_gather_errors():
    x = T(np.zeros((2, 3), np.float32))
    with pytest.raises(IndexError, match=r"index 3 is out of bounds for dimension 1 with size 3"):
        heron.gather(x, idx([[3], [0]]), 1)
    with pytest.raises(IndexError):
        heron.gather(x, idx([[-1], [0]]), 1)
    with pytest.raises(TypeError):
        heron.gather(x, T(np.zeros((2, 1), np.float32)), 1)
    with pytest.raises(ValueError):
        heron.gather(x, idx([0, 0]), 1)
    with pytest.raises(IndexError):
        heron.gather(x, idx([[0], [0]]), 2)


def scatter_oracle(a, dim, i, src, op):
    out = a.copy()
    for pos in np.ndindex(*i.shape):
        tgt = list(pos)
        tgt[dim] = i[pos]
        tgt = tuple(tgt)
        v = src[pos]
        if op == "set":
            out[tgt] = v
        elif op == "add":
            out[tgt] = (out[tgt] + v) if out.dtype != np.bool_ else (out[tgt] or v)
        else:
            out[tgt] = (out[tgt] * v) if out.dtype != np.bool_ else (out[tgt] and v)
    return out


@pytest.mark.parametrize("dt", DTYPES, ids=ids)
@pytest.mark.parametrize("dim", [0, 1])
@pytest.mark.parametrize("reduce", [None, "add", "multiply"])
def test_scatter(dt, dim, reduce):
    rng = np.random.default_rng(3)
    a = arr((4, 5), dt)
    src = arr((3, 4), dt, 11)
    if dt not in (heron.bool,):
        src = (src % 3).astype(a.dtype)  # small, so products stay exact in every dtype
        a = (a % 4).astype(a.dtype)
    ishape = (3, 4)
    if reduce is None:
        # unique targets per line, so that assignment order does not matter
        i = np.stack([rng.permutation(a.shape[dim])[:ishape[dim]] for _ in range(ishape[1 - dim])], axis=1 - dim)
    else:
        i = rng.integers(0, a.shape[dim], size=ishape)
    x = T(a, dt)
    out = heron.scatter(x, idx(i), T(src, dt), dim, reduce)
    check(out, scatter_oracle(a, dim, i, src, {None: "set", "add": "add", "multiply": "mul"}[reduce]), dt)
    check(x, a)  # not in place


@pytest.mark.parametrize("dt", [d for d in DTYPES if d != heron.bool], ids=[str(d) for d in DTYPES if d != heron.bool])
def test_scatter_add(dt):
    rng = np.random.default_rng(5)
    a = (arr((3, 6), dt) % 5).astype(NP[dt])
    src = (arr((3, 10), dt, 1) % 4).astype(NP[dt])
    i = rng.integers(0, 6, size=(3, 10))  # many repeats
    check(heron.scatter_add(T(a, dt), idx(i), T(src, dt), 1), scatter_oracle(a, 1, i, src, "add"), dt)


def test_scatter_errors():
    x = T(np.ones((2, 3), np.float32))
    with pytest.raises(IndexError, match="index 3"):
        heron.scatter(x, idx([[0, 3]]), T(np.ones((1, 2), np.float32)), 1)
    check(x, np.ones((2, 3)))
    with pytest.raises(ValueError):
        heron.scatter(x, idx([[0, 1]]), T(np.ones((1, 1), np.float32)), 1)
    with pytest.raises(ValueError):
        heron.scatter(x, idx([[0, 1]]), T(np.ones((1, 2), np.float32)), 1, "max")
    with pytest.raises(TypeError):
        heron.scatter_add(T(np.ones(3, bool)), idx([0]), T(np.ones(1, bool)), 0)


@pytest.mark.parametrize("dt", DTYPES, ids=ids)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_index_select(dt, dim):
    a = arr((4, 5, 3), dt)
    i = np.array([2, 0, 2, a.shape[dim] - 1])
    check(heron.index_select(T(a, dt), idx(i), dim), np.take(a, i, axis=dim), dt)
    empty = np.zeros(0, np.int64)
    check(heron.index_select(T(a, dt), idx(empty), dim), np.take(a, empty, axis=dim), dt)


def test_index_select_errors():
    x = T(np.zeros((2, 3), np.float32))
    with pytest.raises(IndexError, match="index_select"):
        heron.index_select(x, idx([2]), 0)
    with pytest.raises(ValueError):
        heron.index_select(x, idx([[0]]), 0)
    with pytest.raises(TypeError):
        heron.index_select(x, T(np.zeros(1, np.float32)), 0)


@pytest.mark.parametrize("dt", DTYPES, ids=ids)
def test_take_along_dim(dt):
    rng = np.random.default_rng(7)
    a = arr((3, 4, 5), dt)
    for dim in (0, 1, 2):
        ishape = [3, 4, 5]
        ishape[dim] = 2
        i = rng.integers(-a.shape[dim], a.shape[dim], size=ishape)
        check(heron.take_along_dim(T(a, dt), idx(i), dim), np.take_along_axis(a, i, axis=dim), dt)
    # broadcasting indices and input
    i = rng.integers(0, 4, size=(1, 2, 5))
    check(heron.take_along_dim(T(a, dt), idx(i), 1), np.take_along_axis(a, i, axis=1), dt)
    i = rng.integers(0, 4, size=(3, 2, 5))
    b = np.ascontiguousarray(a[:, :, :1])
    check(heron.take_along_dim(T(b, dt), idx(i), 1), np.take_along_axis(b, i, axis=1), dt)
    # dim none flattens
    i = rng.integers(-60, 60, size=(7,))
    check(heron.take_along_dim(T(a, dt), idx(i)), np.take(a.ravel(), i), dt)


def test_take_along_dim_errors():
    x = T(np.zeros((2, 3), np.float32))
    with pytest.raises(IndexError):
        heron.take_along_dim(x, idx([6]))
    with pytest.raises(ValueError):
        heron.take_along_dim(x, idx(np.zeros((3, 2))), 1)


# ------------------------------------------------------------------ index / index_put_ / nonzero
KEYS = [
    (np.array([2, 0]),),
    (None, np.array([1, -1])),
    (np.array([0, 2]), None, np.array([1, 3])),
    (np.array([[0], [1]]), np.array([0, 1, 2])),
    (None, np.array([0, 1]), np.array([4, 4])),
    (np.array(1),),
    (np.array([[0, 2], [1, 1]]), None, np.array(-1)),
    (np.array([-3, 2]), np.array([[3], [0]]), np.array([0, 4])),
    (np.zeros(0, np.int64),),
    (),
]


def np_key(key):
    return tuple(slice(None) if k is None else k for k in key)


@pytest.mark.parametrize("dt", DTYPES, ids=ids)
@pytest.mark.parametrize("key", KEYS, ids=[str(i) for i in range(len(KEYS))])
def test_index(dt, key):
    a = arr((3, 4, 5), dt)
    hkey = [None if k is None else idx(k) for k in key]
    check(heron.index(T(a, dt), hkey), a[np_key(key)], dt)


def test_index_strided_input_and_int32():
    a = np.arange(60.0).reshape(3, 4, 5)
    t = heron.flip(T(a), [1])  # a copy; take a negative-stride view via slice as well
    view = heron.slice(T(a), 2, None, None, -2)
    check(heron.index(t, [None, idx([0, 3])]), a[:, ::-1][:, [0, 3]])
    check(heron.index(view, [idx([2, 0]), None, idx([1, 0])]), a[:, :, ::-2][[2, 0], :, [1, 0]])
    check(heron.index(T(a), [idx([1, 2]).to(heron.int32)]), a[[1, 2]])


def test_index_errors():
    x = T(np.zeros((3, 4), np.float32))
    with pytest.raises(IndexError, match=r"index 4 is out of bounds for dimension 1 with size 4"):
        heron.index(x, [None, idx([1, 4])])
    with pytest.raises(IndexError):
        heron.index(x, [idx([-4])])
    with pytest.raises(TypeError):
        heron.index(x, [T(np.zeros(2, np.float32))])
    with pytest.raises(IndexError):
        heron.index(x, [idx([0]), idx([0]), idx([0])])
    with pytest.raises(ValueError, match="broadcast"):
        heron.index(x, [idx([0, 1]), idx([0, 1, 2])])


@pytest.mark.parametrize("dt", DTYPES, ids=ids)
@pytest.mark.parametrize("key", KEYS, ids=[str(i) for i in range(len(KEYS))])
def test_index_put(dt, key):
    a = arr((3, 4, 5), dt)
    k = np_key(key)
    shape = a[k].shape
    v = arr(shape, dt, 17)
    expected = a.copy()
    expected[k] = v
    t = T(a, dt)
    hkey = [None if kk is None else idx(kk) for kk in key]
    out = heron.index_put_(t, T(v, dt), hkey)
    # repeated targets (key 3 and 7 have none; others none either) -> plain assignment is well defined
    check(t, expected, dt)
    check(out, expected, dt)


@pytest.mark.parametrize("dt", DTYPES, ids=ids)
def test_index_put_accumulate(dt):
    a = arr((4, 3), dt)
    if dt != heron.bool:
        a = (a % 5).astype(a.dtype)
    rows = np.array([0, 2, 0, 0, 3])
    v = arr((5, 3), dt, 1)
    if dt != heron.bool:
        v = (v % 4).astype(v.dtype)
    expected = a.copy()
    if dt == heron.bool:
        for r, vv in zip(rows, v):
            expected[r] |= vv
    else:
        np.add.at(expected, rows, v)
    t = T(a, dt)
    heron.index_put_(t, T(v, dt), [idx(rows)], accumulate=True)
    check(t, expected, dt)


def test_index_put_broadcast_values_and_errors():
    a = np.zeros((3, 4), np.float32)
    t = T(a)
    heron.index_put_(t, T(np.float32(7)), [None, idx([1, 3])])
    a[:, [1, 3]] = 7
    check(t, a)
    heron.index_put_(t, T(np.arange(4, dtype=np.float32)), [idx([0, 2])])
    a[[0, 2]] = np.arange(4)
    check(t, a)
    before = a.copy()
    with pytest.raises(IndexError):
        heron.index_put_(t, T(np.float32(1)), [idx([0, 1]), idx([0, 4])])
    check(t, before)  # a failing op writes nothing
    with pytest.raises(ValueError):
        heron.index_put_(t, T(np.zeros(3, np.float32)), [idx([0, 2])])
    check(t, before)


@pytest.mark.parametrize("dt", DTYPES, ids=ids)
@pytest.mark.parametrize("shape", [(7,), (3, 4), (2, 3, 4), (), (0, 3)])
def test_nonzero(dt, shape):
    rng = np.random.default_rng(1)
    a = (rng.integers(0, 3, size=shape) * (rng.integers(0, 2, size=shape))).astype(NP[dt])
    out = heron.nonzero(T(a, dt))
    assert out.dtype == heron.int64
    check(out, np.argwhere(a))


def test_nonzero_nan_and_strided():
    a = np.array([[0.0, np.nan], [1.0, 0.0]], np.float32)
    check(heron.nonzero(T(a)), np.argwhere(a))
    check(heron.nonzero(heron.transpose(T(a), 0, 1)), np.argwhere(a.T))


# ------------------------------------------------------------------ movement
@pytest.mark.parametrize("dt", DTYPES, ids=ids)
@pytest.mark.parametrize("dims", [[0], [1], [-1], [0, 2], [0, 1, 2], []])
def test_flip(dt, dims):
    a = arr((2, 3, 4), dt)
    check(heron.flip(T(a, dt), dims), np.flip(a, axis=tuple(dims)) if dims else a, dt)


def test_flip_errors():
    with pytest.raises(ValueError):
        heron.flip(T(np.zeros((2, 2))), [0, 0])
    with pytest.raises(IndexError):
        heron.flip(T(np.zeros((2, 2))), [2])


@pytest.mark.parametrize("dt", DTYPES, ids=ids)
@pytest.mark.parametrize("shifts,dims", [([1], None), ([-7], None), ([2], [0]), ([1, -2], [0, 2]), ([5, 5], [1, 1]),
                                         ([3], [-1])])
def test_roll(dt, shifts, dims):
    a = arr((2, 3, 4), dt)
    want = np.roll(a, shifts[0]) if dims is None else np.roll(a, shifts, axis=dims)
    check(heron.roll(T(a, dt), shifts, dims), want, dt)


def test_roll_errors():
    with pytest.raises(ValueError):
        heron.roll(T(np.zeros((2, 2))), [1, 2], [0])
    with pytest.raises(ValueError):
        heron.roll(T(np.zeros((2, 2))), [1, 2])


@pytest.mark.parametrize("dt", DTYPES, ids=ids)
@pytest.mark.parametrize("k", [0, 1, -1, 3, -5])
@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (2, 4, 3)])
def test_tril_triu(dt, k, shape):
    a = arr(shape, dt, 1)
    check(heron.tril(T(a, dt), k), np.tril(a, k), dt)
    check(heron.triu(T(a, dt), k), np.triu(a, k), dt)


def test_tril_errors_and_strided():
    a = np.arange(12.0).reshape(3, 4)
    check(heron.tril(heron.transpose(T(a), 0, 1)), np.tril(a.T))
    with pytest.raises(ValueError):
        heron.tril(T(np.zeros(3)))


def np_pad_width(ndim, pad):
    width = [(0, 0)] * ndim
    for i in range(len(pad) // 2):
        width[ndim - 1 - i] = (pad[2 * i], pad[2 * i + 1])
    return width


NP_MODE = {"constant": "constant", "reflect": "reflect", "replicate": "edge"}


@pytest.mark.parametrize("dt", DTYPES, ids=ids)
@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate"])
@pytest.mark.parametrize("pad", [[1, 2], [0, 0, 2, 1], [2, 2, 1, 1, 1, 0], [3, 0]])
def test_pad(dt, mode, pad):
    a = arr((2, 3, 4), dt)
    kw = {"constant_values": 1} if mode == "constant" else {}
    want = np.pad(a, np_pad_width(3, pad), mode=NP_MODE[mode], **kw)
    check(heron.pad(T(a, dt), pad, mode, 1.0), want, dt)


def test_pad_negative_crops():
    a = np.arange(24.0).reshape(2, 3, 4)
    check(heron.pad(T(a), [-1, 2]), np.pad(a[:, :, 1:], np_pad_width(3, [0, 2])))
    check(heron.pad(T(a), [1, -2, -1, 0]), np.pad(a[:, 1:, :2], np_pad_width(3, [1, 0])))
    check(heron.pad(T(a), [-1, 1], "replicate"), np.pad(a[:, :, 1:], np_pad_width(3, [0, 1]), mode="edge"))
    check(heron.pad(T(a), [2, -1], "reflect"), np.pad(a[:, :, :3], np_pad_width(3, [2, 0]), mode="reflect"))


def test_pad_errors():
    x = T(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="reflect"):
        heron.pad(x, [3, 0], "reflect")
    with pytest.raises(ValueError):
        heron.pad(x, [1])
    with pytest.raises(ValueError):
        heron.pad(x, [1, 1, 1, 1, 1, 1])
    with pytest.raises(ValueError):
        heron.pad(x, [-2, -2])
    with pytest.raises(ValueError):
        heron.pad(x, [1, 1], "wrap")
