"""MNIST in the IDX format, with MNIST-10k bundled inside the package (nothing is downloaded)."""
import gzip
import os

import numpy as np

from .. import _creation
from .. import _ops
from ..utils.data.dataset import Dataset

_HERE = os.path.dirname(os.path.abspath(__file__))
BUNDLED_ROOT = os.path.join(_HERE, "data", "mnist10k")
IMAGES_FILE = "images-idx3-ubyte.gz"
LABELS_FILE = "labels-idx1-ubyte.gz"

# IDX element-type codes (third byte of the magic) -> (numpy big-endian dtype, name).
_IDX_TYPES = {
    0x08: (np.dtype(">u1"), "unsigned byte"),
    0x09: (np.dtype(">i1"), "signed byte"),
    0x0B: (np.dtype(">i2"), "short"),
    0x0C: (np.dtype(">i4"), "int"),
    0x0D: (np.dtype(">f4"), "float"),
    0x0E: (np.dtype(">f8"), "double"),
}


class IDXError(ValueError):
    """A file that is not a well-formed IDX file (bad magic, dims or size)."""


def _read_bytes(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":  # gzip magic, whatever the file is called
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, ValueError) as e:  # gzip.BadGzipFile is an OSError
            raise IDXError(f"IDX file {path}: corrupt gzip stream ({e})") from None
    return raw


def read_idx(path, expected_ndim=None):
    """Reads an IDX file (gzip'd or raw) into a numpy array of its native element type.

    Validates the magic number (two zero bytes, a known type code, the number of dims), that the
    header is complete and that the payload holds exactly prod(dims) elements.
    """
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise IDXError(f"IDX file {path}: {len(raw)} bytes is too short for the 4-byte magic number")
    if raw[0] != 0 or raw[1] != 0:
        raise IDXError(f"IDX file {path}: bad magic number 0x{raw[:4].hex()} (expected 0x0000TTNN: "
                       "two zero bytes, the type code, the number of dims)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        raise IDXError(f"IDX file {path}: unknown element type code 0x{code:02x} in magic 0x{raw[:4].hex()} "
                       f"(known: {', '.join(f'0x{c:02x}' for c in _IDX_TYPES)})")
    if expected_ndim is not None and ndim != expected_ndim:
        raise IDXError(f"IDX file {path}: expected {expected_ndim} dims, got {ndim} (magic 0x{raw[:4].hex()})")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IDXError(f"IDX file {path}: truncated header: {ndim} dims need {header} bytes, file has {len(raw)}")
    dims = [int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4)]
    dt, _ = _IDX_TYPES[code]
    count = int(np.prod(dims, dtype=np.int64)) if dims else 1
    want = header + count * dt.itemsize
    if len(raw) != want:
        what = "truncated" if len(raw) < want else "trailing bytes"
        raise IDXError(f"IDX file {path}: {what}: dims {tuple(dims)} of {dt.itemsize}-byte elements need "
                       f"{want} bytes, file has {len(raw)}")
    arr = np.frombuffer(raw, dtype=dt, count=count, offset=header).reshape(dims)
    return arr.astype(dt.newbyteorder("="))


def read_mnist_arrays(root=None):
    """(images uint8 (N, 28, 28), labels int64 (N,)) from `root` (default: the bundled MNIST-10k).

    `root` holds images-idx3-ubyte[.gz] and labels-idx1-ubyte[.gz] (the original names
    train-images-idx3-ubyte / t10k-... are accepted too when the short ones are absent).
    """
    root = BUNDLED_ROOT if root is None else os.fspath(root)
    img_path = _find(root, ("images-idx3-ubyte", "train-images-idx3-ubyte", "train-images.idx3-ubyte"))
    lbl_path = _find(root, ("labels-idx1-ubyte", "train-labels-idx1-ubyte", "train-labels.idx1-ubyte"))
    images = read_idx(img_path, expected_ndim=3)
    labels = read_idx(lbl_path, expected_ndim=1)
    if images.dtype != np.uint8:
        raise IDXError(f"IDX file {img_path}: MNIST images must be unsigned bytes, got {images.dtype}")
    if images.shape[1:] != (28, 28):
        raise IDXError(f"IDX file {img_path}: MNIST images must be 28x28, got {images.shape[1]}x{images.shape[2]}")
    if labels.shape[0] != images.shape[0]:
        raise IDXError(f"MNIST: {lbl_path} has {labels.shape[0]} labels but {img_path} has {images.shape[0]} images")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise IDXError(f"IDX file {lbl_path}: MNIST labels must be in 0..9, got values in "
                       f"{int(labels.min())}..{int(labels.max())}")
    return images, labels.astype(np.int64)


def _find(root, stems):
    for stem in stems:
        for name in (stem + ".gz", stem):
            p = os.path.join(root, name)
            if os.path.isfile(p):
                return p
    raise FileNotFoundError(f"MNIST: none of {', '.join(s + '[.gz]' for s in stems)} found in {root}")


class MNIST(Dataset):
    """MNIST digits: (image float32 (1, 28, 28) in [0, 1], label int64).

    Args:
        root: directory with images-idx3-ubyte[.gz] and labels-idx1-ubyte[.gz]; None uses MNIST-10k,
            bundled inside the package (10,000 digits; see datasets/data/mnist10k/README.md).
        train: the first `split` images (True) or the rest (False).
        split: where the training part ends (8,500 of MNIST-10k by default).
        transform, target_transform: callables applied to each image / label on access.

    `.data` (float32 (N, 1, 28, 28)) and `.targets` (int64 (N,)) hold the whole split as tensors,
    and a DataLoader over an MNIST without transforms slices batches straight out of them.
    """

    def __init__(self, root=None, train=True, split=8500, transform=None, target_transform=None):
        images, labels = read_mnist_arrays(root)
        n = images.shape[0]
        if not isinstance(split, int) or isinstance(split, bool) or not 0 <= split <= n:
            raise ValueError(f"MNIST: split must be an int in [0, {n}] (the number of training images), got {split!r}")
        sl = slice(0, split) if train else slice(split, n)
        self.root = BUNDLED_ROOT if root is None else os.fspath(root)
        self.train = train
        self.split = split
        self.transform = transform
        self.target_transform = target_transform
        imgs = images[sl].astype(np.float32)
        imgs *= np.float32(1.0 / 255.0)
        self.data = _creation.tensor(imgs.reshape(-1, 1, 28, 28))
        self.targets = _creation.tensor(np.ascontiguousarray(labels[sl]))
        self.classes = [f"{i} - {w}" for i, w in enumerate(
            ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"])]

    def __len__(self):
        return self.data.shape[0]

    def __getitem__(self, index):
        index = int(index)
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"MNIST: index {index} is out of range for {len(self)} images")
        img = _ops.select(self.data, 0, index)
        target = int(_ops.select(self.targets, 0, index).item())
        if self.transform is not None:
            img = self.transform(img)
        if self.target_transform is not None:
            target = self.target_transform(target)
        return img, target

    def _fetch_batch(self, index):
        """The collated batch [images, labels] for the int64 index tensor, or None with transforms."""
        if self.transform is not None or self.target_transform is not None:
            return None
        return [_ops.index_select(self.data, index=index, dim=0), _ops.index_select(self.targets, index=index, dim=0)]

    def __repr__(self):
        return (f"Dataset MNIST\n    Number of datapoints: {len(self)}\n    Root location: {self.root}\n"
                f"    Split: {'Train' if self.train else 'Test'}")

