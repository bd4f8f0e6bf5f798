"""heron.utils.data (datasets, samplers, DataLoader, collate) and heron.datasets.MNIST (IDX reader)."""
import collections
import gzip
import os
import struct

import numpy as np
import pytest

import heron
from heron.datasets import MNIST, IDXError, read_idx
from heron.datasets.mnist import BUNDLED_ROOT
from heron.utils.data import (BatchSampler, ConcatDataset, DataLoader, Dataset, IterableDataset, RandomSampler,
                              SequentialSampler, Subset, TensorDataset, default_collate, random_split)


def np_of(t):
    return np.asarray(t.tolist())


# ---------------------------------------------------------------------- numpy reading of the bundled files
def _np_idx(name):
    with gzip.open(os.path.join(BUNDLED_ROOT, name), "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


@pytest.fixture(scope="module")
def np_mnist():
    return _np_idx("images-idx3-ubyte.gz"), _np_idx("labels-idx1-ubyte.gz").astype(np.int64)


# ---------------------------------------------------------------------- bundled data
def test_bundled_files_ship_with_attribution():
    files = set(os.listdir(BUNDLED_ROOT))
    assert {"README.md", "images-idx3-ubyte.gz", "labels-idx1-ubyte.gz"} <= files
    readme = open(os.path.join(BUNDLED_ROOT, "README.md")).read()
    assert "LeCun" in readme and "MIT License" in readme


def test_mnist_shapes_dtypes_and_split(np_mnist):
    images, labels = np_mnist
    train, test = MNIST(train=True), MNIST(train=False)
    assert len(train) == 8500 and len(test) == 1500
    assert train.data.shape == (8500, 1, 28, 28) and train.data.dtype == heron.float32
    assert train.targets.shape == (8500,) and train.targets.dtype == heron.int64
    assert test.data.shape == (1500, 1, 28, 28)
    x, y = train[0]
    assert x.shape == (1, 28, 28) and x.dtype == heron.float32 and isinstance(y, int)
    # values against numpy's own reading of the .gz files
    np.testing.assert_array_equal(np_of(train.targets), labels[:8500])
    np.testing.assert_array_equal(np_of(test.targets), labels[8500:])
    np.testing.assert_allclose(np_of(train.data[:50]), images[:50, None].astype(np.float32) / 255, rtol=0, atol=1e-7)
    np.testing.assert_allclose(np_of(test.data[-3:]), images[-3:, None].astype(np.float32) / 255, rtol=0, atol=1e-7)
    assert float(heron.amin(train.data).item()) == 0.0 and float(heron.amax(train.data).item()) == 1.0
    assert y == int(labels[0])
    assert test[-1][1] == int(labels[-1])


def test_mnist_label_histogram(np_mnist):
    _, labels = np_mnist
    counts = np.bincount(labels, minlength=10)
    # the class counts documented in the README
    assert counts.tolist() == [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]
    train = MNIST(train=True)
    hist = np.bincount(np_of(train.targets), minlength=10)
    assert hist.sum() == 8500
    assert hist.min() > 8500 / 10 * 0.75 and hist.max() < 8500 / 10 * 1.25  # roughly balanced


def test_mnist_first_labels(np_mnist):
    _, labels = np_mnist
    train = MNIST(train=True)
    assert [train[i][1] for i in range(10)] == labels[:10].tolist()


def test_mnist_custom_split_and_transforms():
    ds = MNIST(split=100, train=False, transform=lambda x: heron.mul(x, 2.0), target_transform=lambda y: y + 100)
    assert len(ds) == 9900
    x, y = ds[0]
    assert 100 <= y <= 109
    assert float(heron.amax(x).item()) <= 2.0
    with pytest.raises(ValueError, match="split"):
        MNIST(split=10001)
    with pytest.raises(IndexError):
        ds[9900]


def test_mnist_reads_raw_files_from_root(tmp_path, np_mnist):
    images, labels = np_mnist
    _write_idx(tmp_path / "images-idx3-ubyte", images[:20], 0x08)
    _write_idx(tmp_path / "labels-idx1-ubyte", labels[:20].astype(np.uint8), 0x08)
    ds = MNIST(root=tmp_path, split=15)
    assert len(ds) == 15 and len(MNIST(root=str(tmp_path), split=15, train=False)) == 5
    np.testing.assert_array_equal(np_of(ds.targets), labels[:15])


# ---------------------------------------------------------------------- IDX reader, malformed files
def _write_idx(path, arr, code, gz=False, ndim=None, dims=None, extra=b"", magic=None):
    arr = np.asarray(arr)
    ndim = arr.ndim if ndim is None else ndim
    dims = arr.shape if dims is None else dims
    header = magic if magic is not None else bytes([0, 0, code, ndim])
    header += struct.pack(">" + "I" * len(dims), *dims)
    be = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    payload = header + arr.astype(be).tobytes() + extra
    with open(path, "wb") as f:
        f.write(gzip.compress(payload) if gz else payload)
    return str(path)


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("code,npdt", [(0x08, np.uint8), (0x09, np.int8), (0x0B, np.int16), (0x0C, np.int32),
                                       (0x0D, np.float32), (0x0E, np.float64)])
def test_read_idx_round_trip(tmp_path, gz, code, npdt):
    arr = (np.arange(2 * 3 * 4) - (0 if npdt == np.uint8 else 7)).astype(npdt).reshape(2, 3, 4)
    path = _write_idx(tmp_path / "x.idx", arr, code, gz=gz)
    out = read_idx(path)
    assert out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, arr)


def test_read_idx_errors(tmp_path):
    arr = np.zeros((2, 3), np.uint8)
    with pytest.raises(IDXError, match="magic"):
        read_idx(_write_idx(tmp_path / "a", arr, 0x08, magic=b"\x01\x00\x08\x02"))
    with pytest.raises(IDXError, match="unknown element type"):
        read_idx(_write_idx(tmp_path / "b", arr, 0x08, magic=b"\x00\x00\x07\x02"))
    with pytest.raises(IDXError, match="truncated"):
        read_idx(_write_idx(tmp_path / "c", arr, 0x08, dims=(2, 4)))
    with pytest.raises(IDXError, match="trailing"):
        read_idx(_write_idx(tmp_path / "d", arr, 0x08, extra=b"\x00"))
    with pytest.raises(IDXError, match="truncated header"):
        read_idx(_write_idx(tmp_path / "e", arr, 0x08, ndim=5, dims=(2, 3)))
    with pytest.raises(IDXError, match="expected 3 dims"):
        read_idx(_write_idx(tmp_path / "f", arr, 0x08), expected_ndim=3)
    (tmp_path / "g").write_bytes(b"\x00\x00")
    with pytest.raises(IDXError, match="too short"):
        read_idx(str(tmp_path / "g"))
    (tmp_path / "h.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01" + struct.pack(">I", 10) + bytes(10))[:-6])
    with pytest.raises(IDXError, match="gzip"):
        read_idx(str(tmp_path / "h.gz"))


def test_mnist_rejects_malformed_sets(tmp_path):
    imgs = np.zeros((4, 28, 28), np.uint8)
    # wrong image size
    _write_idx(tmp_path / "images-idx3-ubyte", np.zeros((4, 27, 28), np.uint8), 0x08)
    _write_idx(tmp_path / "labels-idx1-ubyte", np.zeros(4, np.uint8), 0x08)
    with pytest.raises(IDXError, match="28x28"):
        MNIST(root=tmp_path, split=2)
    # label count mismatch
    _write_idx(tmp_path / "images-idx3-ubyte", imgs, 0x08)
    _write_idx(tmp_path / "labels-idx1-ubyte", np.zeros(3, np.uint8), 0x08)
    with pytest.raises(IDXError, match="3 labels but"):
        MNIST(root=tmp_path, split=2)
    # label out of range
    _write_idx(tmp_path / "labels-idx1-ubyte", np.array([0, 1, 12, 3], np.uint8), 0x08)
    with pytest.raises(IDXError, match="0..9"):
        MNIST(root=tmp_path, split=2)
    # images given as labels (wrong number of dims)
    _write_idx(tmp_path / "labels-idx1-ubyte", imgs, 0x08)
    with pytest.raises(IDXError, match="expected 1 dims"):
        MNIST(root=tmp_path, split=2)
    # missing files
    with pytest.raises(FileNotFoundError, match="images-idx3-ubyte"):
        MNIST(root=tmp_path / "nowhere")


# ---------------------------------------------------------------------- datasets
def test_tensor_dataset_and_subset():
    x = heron.tensor(np.arange(20, dtype=np.float32).reshape(10, 2))
    y = heron.arange(10)
    ds = TensorDataset(x, y)
    assert len(ds) == 10
    a, b = ds[3]
    assert a.tolist() == [6.0, 7.0] and b.item() == 3
    assert ds[-1][1].item() == 9
    with pytest.raises(IndexError):
        ds[10]
    sub = Subset(ds, [9, 0, 4])
    assert len(sub) == 3 and sub[0][1].item() == 9 and sub[2][1].item() == 4
    with pytest.raises(ValueError, match="size mismatch"):
        TensorDataset(x, heron.arange(9))
    with pytest.raises(TypeError, match="Tensor"):
        TensorDataset(x, [1, 2])
    cat = ConcatDataset([ds, sub])
    assert len(cat) == 13 and cat[10][1].item() == 9 and cat[12][1].item() == 4 and cat[-1][1].item() == 4
    assert len(ds + sub) == 13


def test_random_split_lengths_fractions_and_determinism():
    ds = TensorDataset(heron.arange(10))
    a, b = random_split(ds, [7, 3], generator=heron.Generator().manual_seed(1))
    assert len(a) == 7 and len(b) == 3
    assert sorted(a.indices + b.indices) == list(range(10))
    a2, _ = random_split(ds, [7, 3], generator=heron.Generator().manual_seed(1))
    assert a.indices == a2.indices
    c, d, e = random_split(ds, [0.5, 0.3, 0.2], generator=heron.Generator().manual_seed(2))
    assert (len(c), len(d), len(e)) == (5, 3, 2)
    f, g = random_split(TensorDataset(heron.arange(11)), [0.5, 0.5])
    assert (len(f), len(g)) == (6, 5)  # the remainder goes to the first split
    with pytest.raises(ValueError, match="sum of input lengths"):
        random_split(ds, [5, 4])


# ---------------------------------------------------------------------- samplers
def test_samplers():
    ds = list(range(7))
    assert list(SequentialSampler(ds)) == list(range(7))
    r = list(RandomSampler(ds, generator=heron.Generator().manual_seed(3)))
    assert sorted(r) == list(range(7))
    assert r == list(RandomSampler(ds, generator=heron.Generator().manual_seed(3)))
    rr = list(RandomSampler(ds, replacement=True, num_samples=20, generator=heron.Generator().manual_seed(0)))
    assert len(rr) == 20 and all(0 <= i < 7 for i in rr)
    longer = list(RandomSampler(ds, num_samples=10, generator=5))
    assert len(longer) == 10 and sorted(longer[:7]) == list(range(7))
    assert list(BatchSampler(SequentialSampler(ds), 3, False)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(BatchSampler(SequentialSampler(ds), 3, True)) == [[0, 1, 2], [3, 4, 5]]
    assert len(BatchSampler(SequentialSampler(ds), 3, False)) == 3
    assert len(BatchSampler(SequentialSampler(ds), 3, True)) == 2
    with pytest.raises(ValueError, match="batch_size"):
        BatchSampler(SequentialSampler(ds), 0, False)
    with pytest.raises(ValueError, match="num_samples"):
        RandomSampler(ds, num_samples=0)


# ---------------------------------------------------------------------- DataLoader
class Squares(Dataset):
    """A map-style dataset of (float, int, dict) samples, collated per sample."""

    def __len__(self):
        return 10

    def __getitem__(self, i):
        return {"x": heron.full([2], float(i)), "i": i, "f": i / 2, "name": f"s{i}"}


def test_dataloader_sequential_batches_and_len():
    x = heron.tensor(np.arange(30, dtype=np.float32).reshape(10, 3))
    y = heron.arange(10)
    loader = DataLoader(TensorDataset(x, y), batch_size=4)
    assert len(loader) == 3
    batches = list(loader)
    assert [b[1].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert isinstance(batches[0], list) and batches[0][0].shape == (4, 3)
    np.testing.assert_array_equal(np_of(batches[2][0]), np.arange(24, 30).reshape(2, 3))
    dl = DataLoader(TensorDataset(x, y), batch_size=4, drop_last=True)
    assert len(dl) == 2 and [b[1].tolist() for b in dl] == [[0, 1, 2, 3], [4, 5, 6, 7]]


def test_dataloader_fast_path_matches_per_sample_collate():
    x = heron.tensor(np.random.default_rng(0).standard_normal((23, 2, 3)).astype(np.float32))
    y = heron.arange(23)
    ds = TensorDataset(x, y)
    fast = list(DataLoader(ds, batch_size=5, shuffle=True, generator=heron.Generator().manual_seed(7)))
    slow = list(DataLoader(ds, batch_size=5, shuffle=True, generator=heron.Generator().manual_seed(7),
                           collate_fn=lambda b: default_collate(b)))
    assert len(fast) == len(slow) == 5
    for (fx, fy), (sx, sy) in zip(fast, slow):
        assert fy.tolist() == sy.tolist()
        np.testing.assert_array_equal(np_of(fx), np_of(sx))
        np.testing.assert_array_equal(np_of(fx), np_of(x)[np_of(fy)])
    # through a Subset too
    sub = Subset(ds, list(range(22, -1, -2)))
    got = [b[1].tolist() for b in DataLoader(sub, batch_size=4)]
    assert got == [[22, 20, 18, 16], [14, 12, 10, 8], [6, 4, 2, 0]]


def test_dataloader_shuffle_determinism():
    ds = TensorDataset(heron.arange(50))

    def epochs(loader, n=3):
        return [[v for b in loader for v in b[0].tolist()] for _ in range(n)]

    a = epochs(DataLoader(ds, batch_size=8, shuffle=True, generator=heron.Generator().manual_seed(0)))
    b = epochs(DataLoader(ds, batch_size=8, shuffle=True, generator=heron.Generator().manual_seed(0)))
    c = epochs(DataLoader(ds, batch_size=8, shuffle=True, generator=heron.Generator().manual_seed(1)))
    assert a == b
    assert a != c
    assert all(sorted(e) == list(range(50)) for e in a)
    assert a[0] != a[1]  # a new order every epoch
    assert a[0] != list(range(50))
    # without a generator: heron.manual_seed decides
    heron.manual_seed(123)
    d = epochs(DataLoader(ds, batch_size=8, shuffle=True), 2)
    heron.manual_seed(123)
    e = epochs(DataLoader(ds, batch_size=8, shuffle=True), 2)
    assert d == e


def test_dataloader_collate_dicts_numbers_strings():
    loader = DataLoader(Squares(), batch_size=4)
    batch = next(iter(loader))
    assert set(batch) == {"x", "i", "f", "name"}
    assert batch["x"].shape == (4, 2) and batch["x"].dtype == heron.float32
    assert batch["i"].dtype == heron.int64 and batch["i"].tolist() == [0, 1, 2, 3]
    assert batch["f"].dtype == heron.float64 and batch["f"].tolist() == [0.0, 0.5, 1.0, 1.5]
    assert batch["name"] == ["s0", "s1", "s2", "s3"]
    assert [len(b["name"]) for b in loader] == [4, 4, 2]


def test_default_collate_rules():
    Point = collections.namedtuple("Point", ["x", "y"])
    out = default_collate([Point(1, 2.0), Point(3, 4.0)])
    assert isinstance(out, Point) and out.x.tolist() == [1, 3] and out.y.dtype == heron.float64
    out = default_collate([(heron.zeros(2), 1), (heron.ones(2), 0)])
    assert isinstance(out, list) and out[0].tolist() == [[0, 0], [1, 1]] and out[1].tolist() == [1, 0]
    out = default_collate([[1, 2], [3, 4]])
    assert isinstance(out, list) and [t.tolist() for t in out] == [[1, 3], [2, 4]]
    out = default_collate([np.array([1.0, 2.0], np.float32), np.array([3.0, 4.0], np.float32)])
    assert out.dtype == heron.float32 and out.tolist() == [[1, 2], [3, 4]]
    out = default_collate([np.float64(1.5), np.float64(2.5)])
    assert out.dtype == heron.float64 and out.tolist() == [1.5, 2.5]
    assert default_collate([True, False]).dtype == heron.bool
    nested = default_collate([{"a": (1, heron.zeros(1))}, {"a": (2, heron.ones(1))}])
    assert nested["a"][0].tolist() == [1, 2] and nested["a"][1].shape == (2, 1)
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([heron.zeros(2), heron.zeros(3)])
    with pytest.raises(RuntimeError, match="equal size"):
        default_collate([[1, 2], [3]])
    with pytest.raises(TypeError, match="default_collate"):
        default_collate([object(), object()])


def test_dataloader_custom_collate_sampler_batch_sampler_and_no_batching():
    ds = TensorDataset(heron.arange(6))
    got = list(DataLoader(ds, batch_size=2, collate_fn=lambda b: [int(s[0].item()) for s in b]))
    assert got == [[0, 1], [2, 3], [4, 5]]
    got = [b[0].tolist() for b in DataLoader(ds, batch_size=2, sampler=[5, 4, 3, 2, 1, 0])]
    assert got == [[5, 4], [3, 2], [1, 0]]
    got = [b[0].tolist() for b in DataLoader(ds, batch_sampler=[[0, 5], [1], [2, 3, 4]])]
    assert got == [[0, 5], [1], [2, 3, 4]]
    got = [s[0].item() for s in DataLoader(ds, batch_size=None)]
    assert got == list(range(6))
    assert len(DataLoader(ds, batch_size=None)) == 6


def test_dataloader_over_mnist():
    train = MNIST(train=True)
    loader = DataLoader(train, batch_size=64, shuffle=True, generator=heron.Generator().manual_seed(0))
    assert len(loader) == 133
    it = iter(loader)
    assert len(it) == 133
    images, labels = next(it)
    assert images.shape == (64, 1, 28, 28) and labels.shape == (64,) and labels.dtype == heron.int64
    assert sum(1 for _ in it) == 132
    last = list(DataLoader(train, batch_size=64, drop_last=True))
    assert len(last) == 132 and last[-1][1].tolist() == np_of(train.targets)[131 * 64:132 * 64].tolist()
    np.testing.assert_array_equal(np_of(last[5][0]), np_of(train.data)[5 * 64:6 * 64])


class Count(IterableDataset):
    def __init__(self, n):
        self.n = n

    def __iter__(self):
        return iter(range(self.n))

    def __len__(self):
        return self.n


def test_dataloader_iterable_dataset():
    assert [b.tolist() for b in DataLoader(Count(7), batch_size=3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert [b.tolist() for b in DataLoader(Count(7), batch_size=3, drop_last=True)] == [[0, 1, 2], [3, 4, 5]]
    assert len(DataLoader(Count(7), batch_size=3)) == 3
    with pytest.raises(ValueError, match="shuffle"):
        DataLoader(Count(7), shuffle=True)


def test_dataloader_argument_errors():
    ds = TensorDataset(heron.arange(6))
    with pytest.raises(NotImplementedError, match="num_workers=0"):
        DataLoader(ds, num_workers=2)
    with pytest.raises(ValueError, match="num_workers"):
        DataLoader(ds, num_workers=-1)
    with pytest.raises(ValueError, match="mutually exclusive with shuffle"):
        DataLoader(ds, sampler=[0, 1], shuffle=True)
    with pytest.raises(ValueError, match="batch_sampler option is mutually exclusive"):
        DataLoader(ds, batch_sampler=[[0]], batch_size=2)
    with pytest.raises(ValueError, match="drop_last"):
        DataLoader(ds, batch_size=None, drop_last=True)
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(ds, batch_size=0)
    with pytest.raises(TypeError, match="generator"):
        list(DataLoader(ds, shuffle=True, generator="seed"))


def test_generator_api():
    g = heron.Generator().manual_seed(5)
    assert g.initial_seed() == 5
    s1 = [g._next_seed() for _ in range(3)]
    g.manual_seed(5)
    assert [g._next_seed() for _ in range(3)] == s1
    st = g.get_state()
    a = g._next_seed()
    g.set_state(st)
    assert g._next_seed() == a
    assert len(set(s1)) == 3 and all(0 <= s < 2 ** 63 for s in s1)


def test_dataloader_over_mnist_with_transforms_and_splits():
    tf = MNIST(train=False, transform=lambda x: heron.sub(x, 0.5), target_transform=lambda y: y * 10)
    plain = MNIST(train=False)
    xb, yb = next(iter(DataLoader(tf, batch_size=8)))
    px, py = next(iter(DataLoader(plain, batch_size=8)))
    np.testing.assert_allclose(np_of(xb), np_of(px) - 0.5, atol=1e-7)
    assert yb.tolist() == [10 * v for v in py.tolist()]
    # a random split of MNIST batches through Subset's fast path and agrees with per-sample access
    a, b = random_split(plain, [1000, 500], generator=heron.Generator().manual_seed(0))
    xa, ya = next(iter(DataLoader(b, batch_size=16)))
    want = [plain[i] for i in b.indices[:16]]
    assert ya.tolist() == [w[1] for w in want]
    np.testing.assert_array_equal(np_of(xa), np.stack([np_of(w[0]) for w in want]))
