"""Reading and writing through basic and advanced indexing, with numpy (same data, same key) as the oracle.

Heron's __getitem__/__setitem__ follow numpy's rules; where PyTorch differs (an int next to an index
array separated by a slice: numpy moves the advanced dims first) numpy is the reference."""
import numpy as np
import pytest

import heron

NP_OF = {heron.float32: np.float32, heron.float64: np.float64, heron.float16: np.float16, heron.int8: np.int8,
         heron.uint8: np.uint8, heron.int32: np.int32, heron.int64: np.int64, heron.bool: np.bool_}


def np_of(t):
    return np.array(t.tolist(), dtype=NP_OF[t.dtype]).reshape(t.shape)


def assert_same(t, a):
    a = np.asarray(a)
    assert isinstance(t, heron.Tensor), type(t)
    assert t.shape == a.shape, (t.shape, a.shape)
    assert NP_OF[t.dtype] == a.dtype.type, (t.dtype, a.dtype)
    np.testing.assert_array_equal(np_of(t), a)


def data(shape=(3, 4, 5), dtype=np.int64):
    return np.arange(int(np.prod(shape))).astype(dtype).reshape(shape)


def to_heron_key(key):
    """The same key with every numpy array (and nested list) as a heron tensor."""
    def conv(k):
        if isinstance(k, (list, np.ndarray)):
            k = np.asarray(k)
            return heron.tensor(k.astype(np.int64) if k.size == 0 else k)
        return k
    if isinstance(key, tuple):
        return tuple(conv(k) for k in key)
    return conv(key)


def has_advanced(key):
    ks = key if isinstance(key, tuple) else (key,)
    return any(isinstance(k, (list, np.ndarray, bool, np.bool_, heron.Tensor)) for k in ks)


def check_get(a, key):
    t = heron.tensor(a)
    expected = a[key]
    for k in ([key, to_heron_key(key)] if has_advanced(key) else [key]):
        got = t[k]
        assert_same(got, expected)
        if not has_advanced(key):
            assert got._shares_storage(t)  # basic indexing gives views
        elif got.numel() and k is key:
            assert not got._shares_storage(t)  # advanced indexing copies (0-d heron int tensors act like ints)
    return t


def check_set(a, key, value, heron_value=None):
    expected = a.copy()
    expected[key] = value
    for k in ([key, to_heron_key(key)] if has_advanced(key) else [key]):
        t = heron.tensor(a)
        t[k] = value if heron_value is None else heron_value
        assert_same(t, expected)


# ------------------------------------------------------------------ basic indexing
BASIC_KEYS = [
    0, 2, -1, -3,
    (1, 2), (-1, -2, -3), (0, 0, 0), (2, 3, 4),
    slice(None), slice(None, None, 2), slice(1, None), slice(-2, None), slice(None, -1), slice(10, 20),
    slice(-20, 2), slice(2, 1), slice(0, 0), slice(None, None, 5), slice(1, 100, 2),
    (slice(1, 3), slice(None, None, 2)), (slice(None), slice(None), slice(1, 4, 2)),
    (slice(None, None, -1),), (slice(None, None, -2), slice(3, 0, -1)), (slice(-1, -10, -2),),
    Ellipsis, (Ellipsis, 0), (0, Ellipsis), (Ellipsis, slice(1, 3)), (1, Ellipsis, 2), (Ellipsis, 1, 2, 3),
    (0, 1, Ellipsis, 2),
    None, (None, 0), (slice(None), None, 1), (Ellipsis, None), (None, Ellipsis, None), (None, None),
    (1, None, slice(None, None, 2), None, -1), (None, 1, 2, 3),
    (),
]


@pytest.mark.parametrize("key", BASIC_KEYS, ids=repr)
def test_basic_get(key):
    check_get(data(), key)


@pytest.mark.parametrize("key", BASIC_KEYS, ids=repr)
def test_basic_get_on_non_contiguous(key):
    base = data((5, 6, 10))
    a = base.transpose(2, 0, 1)[::2, 1:, ::-1]  # (5, 4, 6), strided
    t = heron.tensor(base).permute(2, 0, 1)[::2, 1:, ::-1]
    assert_same(t, a)
    assert_same(t[key], a[key])


def test_basic_get_zero_d_results():
    a = data()
    t = heron.tensor(a)
    r = t[1, 2, 3]
    assert isinstance(r, heron.Tensor) and r.shape == () and r.item() == a[1, 2, 3]
    assert r._shares_storage(t)
    assert t[-1, -1, -1].item() == a[-1, -1, -1]
    s = heron.tensor(5.0)
    assert s[()].shape == () and s[...].shape == () and s[None].shape == (1,)
    assert s[..., None].shape == (1,)


def test_basic_get_is_a_view():
    a = data().astype(np.float32)
    t = heron.tensor(a)
    v = t[1:, ::2, -1]
    v.fill_(-1.0)
    a[1:, ::2, -1] = -1.0
    assert_same(t, a)


def test_integer_like_keys():
    a = data()
    t = heron.tensor(a)
    assert_same(t[np.int64(1)], a[1])
    assert_same(t[np.int32(-1), np.uint8(2)], a[-1, 2])
    v = t[heron.tensor(1)]  # a 0-d integer tensor acts like an int
    assert_same(v, a[1])
    assert v._shares_storage(t)
    assert_same(t[heron.tensor(1, dtype=heron.int32), 2], a[1, 2])
    assert_same(t[slice(np.int64(1), np.int64(3))], a[1:3])
    assert_same(t[heron.tensor(1):heron.tensor(3)], a[1:3])


# ------------------------------------------------------------------ advanced indexing
ADVANCED_KEYS = [
    [0, 2],
    [-1, 0, -3],
    [2, 2, 0],
    [[0, 1], [2, 0]],
    np.array([1, 2], dtype=np.int32),
    np.array([[2], [0]], dtype=np.int64),
    ([0, 1], [1, 2]),
    ([0, 1], [1, 2], [3, 4]),
    ([[0], [1]], [0, 2, 1]),  # broadcasting index arrays
    (np.array([[0], [2]]), slice(None), np.array([[1, 4]])),
    (slice(None), [0, 2]),
    (slice(None), [0, 2], slice(1, 3)),
    (Ellipsis, [0, -1]),
    (Ellipsis, [[0, 1], [2, 3]]),
    (slice(1, None), [[0], [3]], [1, 2]),
    ([0, 1], slice(None), [1, 2]),  # separated by a slice: advanced dims go first
    ([0, 2], Ellipsis, [1, 4]),
    ([0, 1], 1),  # ints next to arrays are advanced indices too
    (1, [0, 2]),
    (1, slice(None), [0, 1]),  # numpy: (2, 4); PyTorch would give (4, 2)
    ([0, 1], 1, [2, 3]),
    ([2], [3], [4]),
    (np.array(1), np.array(2), np.array(3)),
    ([0, 1], None),
    (None, [0, 1]),
    ([0, 1], None, [1, 2]),
    (None, [0, 1], [1, 2]),
    (slice(None), None, [0, 1]),
    (slice(None, None, -1), [0, 3]),
    [],
    np.array([], dtype=np.int64),
    (slice(None), []),
    ([[]], slice(None)),
]


@pytest.mark.parametrize("key", ADVANCED_KEYS, ids=repr)
def test_advanced_get(key):
    check_get(data(), key)


@pytest.mark.parametrize("key", ADVANCED_KEYS, ids=repr)
def test_advanced_get_on_non_contiguous(key):
    base = data((4, 5, 3))
    a = base.transpose(2, 0, 1)
    t = heron.tensor(base).permute(2, 0, 1)
    assert_same(t[key], a[key])
    assert_same(t[to_heron_key(key)], a[key])


@pytest.mark.parametrize("np_dtype", [np.float32, np.float64, np.float16, np.int8, np.uint8, np.int32, np.bool_])
def test_advanced_get_every_dtype(np_dtype):
    a = data().astype(np_dtype)
    check_get(a, ([0, 2], slice(None), [1, 3]))
    check_get(a, a.astype(np.int64) % 3 == 0 if np_dtype != np.bool_ else a)


@pytest.mark.parametrize("index_dtype", [np.int64, np.int32, np.int8, np.uint8, np.int16])
def test_index_array_dtypes(index_dtype):
    a = data()
    idx = np.array([2, 0, 1], dtype=index_dtype)
    t = heron.tensor(a)
    assert_same(t[idx], a[idx])
    assert_same(t[:, idx], a[:, idx])
    if index_dtype not in (np.uint8, np.int16):  # heron uint8 tensors are masks, as in PyTorch
        assert_same(t[heron.tensor(idx)], a[idx])


def test_index_with_tuple_inside_list():
    a = data()
    t = heron.tensor(a)
    assert_same(t[[(0, 1), (2, 0)]], a[np.array([(0, 1), (2, 0)])])


# ------------------------------------------------------------------ boolean masks
def masks(a):
    return [
        a % 3 == 0,  # full
        a > 1000,  # all false
        a >= 0,  # all true
        (a % 2 == 0)[:, :, 0],  # first two dims
        np.array([True, False, True]),  # first dim
        np.array([False, False, False]),
    ]


@pytest.mark.parametrize("which", range(6))
def test_mask_get(which):
    a = data()
    check_get(a, masks(a)[which])


@pytest.mark.parametrize("key", [
    (slice(None), np.array([True, False, True, True])),  # middle dim
    (Ellipsis, np.array([False, True, False, True, True])),  # last dim
    (np.array([True, False, True]), 1),
    (np.array([True, False, True]), slice(None), [0, 4]),  # mask + index array broadcast (2 == 2)
    (1, np.array([[True, False, True, False, False]] * 4)),
    (np.array([True, False, True]), None),
    (None, np.array([True, False, True])),
    (np.array([[True, False, True, False]] * 3), slice(1, 3)),
    True, False, (True, 0), (Ellipsis, False),
])
def test_mask_get_partial(key):
    check_get(data(), key)


def test_mask_from_heron_comparison():
    a = data().astype(np.float32)
    t = heron.tensor(a)
    assert_same(t[t > 20], a[a > 20])
    assert_same(t[t[:, 0, 0] > 10], a[a[:, 0, 0] > 10])


def test_mask_of_zero_d():
    t = heron.tensor(3.0)
    assert_same(t[heron.tensor(True)], np.array(3.0, dtype=np.float32)[np.True_])
    assert_same(t[heron.tensor(False)], np.array(3.0, dtype=np.float32)[np.False_])


# ------------------------------------------------------------------ errors
@pytest.mark.parametrize("key", [
    3, -4, (0, 4), (0, -5), (0, 0, 5), (0, 0, -6), (0, 0, 0, 0), (Ellipsis, 0, 0, 0, 0),
    [0, 3], [-4], ([0, 1], [0, 4]), (slice(None), [5]), np.array([1, 7]),
])
def test_out_of_range_raises_index_error(key):
    a = data()
    with pytest.raises(IndexError):
        a[key]  # the oracle agrees
    t = heron.tensor(a)
    with pytest.raises(IndexError):
        t[key]
    if has_advanced(key):
        with pytest.raises(IndexError):
            t[to_heron_key(key)]


def test_out_of_range_message_names_the_dim():
    t = heron.tensor(data())
    with pytest.raises(IndexError, match=r"index -5 is out of bounds for dimension 1 with size 4"):
        t[0, -5]
    with pytest.raises(IndexError, match=r"too many indices"):
        t[0, 0, 0, 0]


@pytest.mark.parametrize("key", [
    1.5, (0, 1.0), [0.5, 1.0], np.array([1.0]), "a", (0, "b"), {0: 1}, object(), [[0], ["a"]],
    (Ellipsis, Ellipsis),
])
def test_bad_keys_raise_index_error(key):
    t = heron.tensor(data())
    with pytest.raises(IndexError):
        t[key]


def test_float_tensor_index_raises():
    t = heron.tensor(data())
    with pytest.raises(IndexError):
        t[heron.tensor([0.0, 1.0])]
    with pytest.raises(IndexError):
        t[heron.tensor(1.0)]


def test_mask_shape_mismatch_raises():
    t = heron.tensor(data())
    with pytest.raises(IndexError):
        t[np.array([True, False])]
    with pytest.raises(IndexError):
        t[heron.tensor([[True, False]])]
    with pytest.raises(IndexError):
        t[:, np.array([True] * 5)]


def test_incompatible_index_shapes_raise():
    t = heron.tensor(data())
    with pytest.raises((IndexError, ValueError)):
        t[[0, 1], [0, 1, 2]]
    with pytest.raises((IndexError, ValueError)):
        t[np.array([True, False, True]), [0, 1, 2]]


def test_zero_step_raises():
    t = heron.tensor(data())
    with pytest.raises(ValueError):
        t[::0]


# ------------------------------------------------------------------ __setitem__ through basic indices
@pytest.mark.parametrize("key", [
    0, -1, (1, 2), (1, 2, 3), slice(None, None, 2), (slice(1, None), slice(None, None, -2)), (Ellipsis, 0),
    (None, 1), (slice(None), None, 1, slice(2, 4)), Ellipsis, (), (0, Ellipsis, -1), slice(10, 20),
])
@pytest.mark.parametrize("value", [7, -2.5, True, np.float64(3.0), np.int32(4)], ids=repr)
def test_set_basic_scalar(key, value):
    check_set(data().astype(np.float64), key, value)
    check_set(data(), key, value)


@pytest.mark.parametrize("key,shape", [
    (0, (4, 5)), (0, (5,)), (0, (4, 1)), (0, ()), ((Ellipsis, 1), (3, 4)), ((Ellipsis, 1), (4,)),
    ((slice(None), None, 1), (3, 1, 5)), ((slice(None), None, 1), (5,)), (slice(None, None, -1), (3, 4, 5)),
    (slice(1, 3), (1, 4, 1)), (Ellipsis, (5,)), ((1, 2, 3), ()), ((1, 2, 3, Ellipsis), (1,)),
    (0, (1, 4, 5)), (0, (1, 1, 5)), ((0, 0), (1, 1, 5)),  # leading size-1 dims of the value are dropped
])
def test_set_basic_broadcasting_tensor(key, shape):
    a = data().astype(np.float32)
    value = (np.arange(int(np.prod(shape))) * -1.5 - 1).astype(np.float32).reshape(shape)
    check_set(a, key, value)  # numpy array value
    check_set(a, key, value, heron.tensor(value))  # heron tensor value
    check_set(a, key, value, heron.tensor(value, dtype=heron.float64))  # converted on the way in
    if shape:
        check_set(a, key, value, value.tolist())  # nested list value


def test_set_element_from_one_element_tensor():
    t = heron.tensor(data().astype(np.float32))
    t[1, 2, 3] = heron.tensor([5.0])  # as in PyTorch
    t[0, 0, 0] = heron.tensor([[6.0]])
    assert t[1, 2, 3].item() == 5.0 and t[0, 0, 0].item() == 6.0


def test_set_converts_value_dtype():
    a = data()
    check_set(a, 0, np.full((4, 5), 2.7), heron.tensor(np.full((4, 5), 2.7)))  # float into int64: truncates
    b = np.zeros((2, 3), dtype=np.bool_)
    t = heron.tensor(b)
    t[0] = 5
    t[1, 1] = heron.tensor(0.0)
    assert t.tolist() == [[True, True, True], [False, False, False]]
    u = heron.tensor(np.zeros(3, dtype=np.uint8))
    u[1] = 200
    assert u.tolist() == [0, 200, 0]


def test_set_through_view_reaches_numpy_base():
    a = np.zeros((3, 4), dtype=np.float32)
    t = heron.from_numpy(a)
    t[1:, ::2] = heron.tensor([1.0, 2.0])
    t[0, -1] = 9
    expected = np.zeros((3, 4), dtype=np.float32)
    expected[1:, ::2] = [1.0, 2.0]
    expected[0, -1] = 9
    np.testing.assert_array_equal(a, expected)
    v = t.T
    v[0] = 5
    assert (a[:, 0] == 5).all()


def test_set_shape_mismatch_raises_and_writes_nothing():
    a = data().astype(np.float32)
    t = heron.tensor(a)
    with pytest.raises(ValueError):
        a.copy()[0] = np.ones(3)  # the oracle raises too
    with pytest.raises((RuntimeError, ValueError)):
        t[0] = heron.tensor([1.0, 2.0, 3.0])
    with pytest.raises((RuntimeError, ValueError)):
        t[0] = [[1.0, 2.0]] * 3
    with pytest.raises(IndexError):
        t[3] = 1.0
    assert_same(t, a)


def test_set_self_overlapping():
    a = data().astype(np.float32)
    t = heron.tensor(a)
    t[1:] = t[:-1].clone()
    a[1:] = a[:-1].copy()
    assert_same(t, a)


# ------------------------------------------------------------------ __setitem__ through advanced indices
ADV_SET_KEYS = [
    [0, 2],
    [-1],
    ([0, 1], [1, 2]),
    ([[0], [2]], [1, 3]),
    (slice(None), [0, 3]),
    ([0, 2], slice(None), [1, 4]),
    (1, slice(None), [0, 1]),
    ([0, 1], 1),
    (Ellipsis, [4, 0]),
    (None, [0, 1]),
    [],
]


@pytest.mark.parametrize("key", ADV_SET_KEYS, ids=repr)
def test_set_advanced_scalar(key):
    check_set(data(), key, -7)
    check_set(data().astype(np.float32), key, 2.5)


@pytest.mark.parametrize("key", ADV_SET_KEYS, ids=repr)
def test_set_advanced_values(key):
    a = data().astype(np.float64)
    shape = a[key].shape
    value = -(np.arange(int(np.prod(shape))) + 1.0).reshape(shape)
    check_set(a, key, value, heron.tensor(value))
    check_set(a, key, value, heron.tensor(value, dtype=heron.float32))
    if value.size and len(shape) > 1:
        last = value[(0,) * (len(shape) - 1)]
        check_set(a, key, last, heron.tensor(last))  # broadcast the last dim
    if len(shape):
        check_set(a, key, value[..., :1], heron.tensor(value[..., :1]))  # broadcast a size-1 last dim


@pytest.mark.parametrize("which", range(6))
def test_set_mask_scalar(which):
    a = data()
    check_set(a, masks(a)[which], 0)
    check_set(a.astype(np.float32), masks(a)[which], -1.5)


def test_set_mask_values():
    a = data().astype(np.float32)
    m = a % 4 == 1
    vals = -np.arange(m.sum(), dtype=np.float32)
    check_set(a, m, vals, heron.tensor(vals))
    rows = np.array([True, False, True])
    row_vals = -np.ones((2, 4, 5), dtype=np.float32)
    check_set(a, rows, row_vals, heron.tensor(row_vals))
    check_set(a, rows, row_vals[0, 0], heron.tensor(row_vals[0, 0]))  # broadcast
    t = heron.tensor(a)
    t[t > 30] = 0.0
    b = a.copy()
    b[b > 30] = 0.0
    assert_same(t, b)


def test_set_advanced_on_non_contiguous_writes_base():
    base = np.zeros((4, 3), dtype=np.int64)
    t = heron.from_numpy(base)
    v = t.T
    v[[0, 2], 1] = heron.tensor([5, 6])
    expected = np.zeros((4, 3), dtype=np.int64)
    expected.T[[0, 2], 1] = [5, 6]
    np.testing.assert_array_equal(base, expected)
    t[:, [1]] = 9
    expected[:, [1]] = 9
    np.testing.assert_array_equal(base, expected)


def test_set_advanced_errors_write_nothing():
    a = data().astype(np.float32)
    t = heron.tensor(a)
    with pytest.raises(IndexError):
        t[[0, 5]] = 1.0
    with pytest.raises((RuntimeError, ValueError)):
        t[[0, 1]] = heron.tensor(np.ones((3, 4, 5), dtype=np.float32))
    with pytest.raises(IndexError):
        t[np.array([True, False])] = 1.0
    assert_same(t, a)


@pytest.mark.parametrize("np_dtype", [np.float32, np.float64, np.float16, np.int8, np.uint8, np.int32, np.int64,
                                      np.bool_])
def test_set_every_dtype(np_dtype):
    a = (data() % 7).astype(np_dtype)
    v = np.array(1, dtype=np_dtype)
    check_set(a, (slice(None), 1), v)
    check_set(a, ([0, 2], slice(None), [1, 3]), v)
    check_set(a, a.astype(np.int64) % 2 == 1, v)
