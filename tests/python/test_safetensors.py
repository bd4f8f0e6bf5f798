"""safetensors in the core: round trips of every dtype (files and bytes), 0-d, empty and
non-contiguous tensors, metadata, heron.save/heron.load; a file written by hand from the spec
(byte for byte); a file written by the reference `safetensors` package (tests/data); zero-copy
loading that never writes the file; and a corpus of malformed files, each a clear error.
"""
import importlib.util
import json
import os
import pathlib
import struct

import numpy as np
import pytest

import heron
from heron import safetensors as st
from dtype_helpers import ALL, BF16, BOOL, F16, F32, F64, H, I8, I32, I64, N, NP, U8, ids

DATA = pathlib.Path(__file__).resolve().parents[1] / "data"
rng = np.random.default_rng(7)


def sample(dtype, shape):
    if dtype == BOOL:
        return rng.integers(0, 2, shape).astype(bool)
    if dtype in (F32, F64, F16, BF16):
        return rng.standard_normal(shape)
    lo, hi = {I8: (-128, 128), U8: (0, 256), I32: (-2**31, 2**31), I64: (-2**62, 2**62)}[dtype]
    return rng.integers(lo, hi, shape)


def same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(N(a), N(b))


# ------------------------------------------------------------------ round trips
@pytest.mark.parametrize("dtype", ALL, ids=ids(ALL))
@pytest.mark.parametrize("shape", [(2, 3), (), (0,), (3, 0, 2), (1, 1, 5)])
def test_round_trip_every_dtype_file_and_bytes(tmp_path, dtype, shape):
    t = H(sample(dtype, shape), dtype)
    path = tmp_path / "t.safetensors"
    st.save_file({"x": t, "other": H(sample(dtype, (4,)), dtype)}, path)
    back = st.load_file(path)
    assert list(back) == ["other", "x"]
    same(back["x"], t)
    back2 = st.load(st.save({"x": t}))
    same(back2["x"], t)


def test_many_tensors_mixed_dtypes_sorted_by_name(tmp_path):
    tensors = {f"t{i:02d}.{d.name}": H(sample(d, (i % 4 + 1, 3)), d) for i, d in enumerate(ALL * 3)}
    path = tmp_path / "m.safetensors"
    st.save_file(tensors, str(path))
    back = st.load_file(path)
    assert list(back) == sorted(tensors)
    for k in tensors:
        same(back[k], tensors[k])


def test_non_contiguous_inputs_are_written_contiguously(tmp_path):
    base = heron.tensor(np.arange(24, dtype=np.float32).reshape(4, 6))
    tr = heron.transpose(base, 0, 1)
    sl = base[:, ::2]
    exp = heron.expand(heron.tensor(np.array([1.0, 2.0])), [3, 2])
    back = st.load(st.save({"tr": tr, "sl": sl, "exp": exp}))
    np.testing.assert_array_equal(N(back["tr"]), N(base).T)
    np.testing.assert_array_equal(N(back["sl"]), N(base)[:, ::2])
    np.testing.assert_array_equal(N(back["exp"]), [[1.0, 2.0]] * 3)


def test_metadata_round_trip(tmp_path):
    md = {"format": "pt", "note": "héron ✓", "empty": ""}
    path = tmp_path / "md.safetensors"
    st.save_file({"a": heron.zeros([2])}, path, metadata=md)
    assert st.load_metadata(path) == md
    assert st.load_metadata(st.save({"a": heron.zeros([2])}, metadata=md)) == md
    assert st.load_metadata(st.save({"a": heron.zeros([2])})) == {}
    with pytest.raises(TypeError, match="metadata must be a dict of str -> str"):
        st.save({"a": heron.zeros([2])}, metadata={"n": 1})


def test_heron_save_and_load_state_dict(tmp_path):
    sd = {"fc.weight": heron.randn([3, 4]), "fc.bias": heron.zeros([3]), "bn.num_batches_tracked": heron.tensor(5)}
    path = tmp_path / "model.safetensors"
    heron.save(sd, path)
    back = heron.load(path)
    assert list(back) == ["bn.num_batches_tracked", "fc.bias", "fc.weight"]
    for k in sd:
        same(back[k], sd[k])


def test_bad_arguments():
    with pytest.raises(TypeError, match="expected a dict"):
        st.save([heron.zeros([1])])
    with pytest.raises(TypeError, match="must be a heron.Tensor"):
        st.save({"a": np.zeros(2)})
    with pytest.raises(TypeError, match="names must be str"):
        st.save({1: heron.zeros([1])})
    with pytest.raises(ValueError, match="__metadata__"):
        st.save({"__metadata__": heron.zeros([1])})
    with pytest.raises(TypeError):
        st.load("not bytes")
    with pytest.raises(RuntimeError, match="cannot open"):
        st.load_file("/nonexistent/dir/x.safetensors")


# ------------------------------------------------------------------ the format, byte for byte
def spec_file(entries, metadata=None, order=None):
    """A safetensors file written from the spec: entries = [(name, dtype string, shape, raw bytes)] in data order."""
    header, off, blob = {}, 0, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dt, shape, raw in entries:
        header[name] = {"dtype": dt, "shape": list(shape), "data_offsets": [off, off + len(raw)]}
        off += len(raw)
        blob += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + blob


def test_bytes_match_a_file_written_from_the_spec():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([1, -2], dtype=np.int64)
    c = np.array([True, False, True])
    d = np.array(2.5, dtype=np.float64)
    # data order: descending dtype alignment (I64, F64, F32, ..., BOOL), then name, as the reference writes it
    want = spec_file([("b", "I64", (2,), b.tobytes()), ("d", "F64", (), d.tobytes()), ("a", "F32", (2, 3), a.tobytes()),
                      ("c", "BOOL", (3,), c.tobytes())], metadata={"k": "v"})
    got = st.save({"a": heron.tensor(a), "b": heron.tensor(b), "c": heron.tensor(c), "d": heron.tensor(d)}, metadata={"k": "v"})
    assert got == want
    assert len(struct.unpack("<Q", got[:8])) == 1 and struct.unpack("<Q", got[:8])[0] % 8 == 0
    back = st.load(want)
    np.testing.assert_array_equal(N(back["a"]), a)
    np.testing.assert_array_equal(N(back["b"]), b)
    np.testing.assert_array_equal(N(back["c"]), c)
    assert N(back["d"]).shape == () and float(N(back["d"])) == 2.5
    # the empty map
    assert st.save({}) == struct.pack("<Q", 8) + b"{}      "
    assert st.load(st.save({})) == {}


def _reference_module():
    spec = importlib.util.spec_from_file_location("make_ref", DATA / "make_safetensors_reference.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_reads_a_file_written_by_the_reference_implementation():
    ref = _reference_module().reference_tensors()
    path = DATA / "reference.safetensors"
    back = heron.load(path)
    assert sorted(back) == sorted(ref) and list(back) == sorted(ref)
    assert st.load_metadata(path) == {"format": "pt"}
    to_dtype = {"F32": F32, "F64": F64, "F16": F16, "BF16": BF16, "I8": I8, "U8": U8, "I32": I32, "I64": I64, "BOOL": BOOL}
    for name, (dt, shape, arr) in ref.items():
        t = back[name]
        assert t.dtype == to_dtype[dt], name
        assert tuple(t.shape) == tuple(shape), name
        if dt == "BF16":
            want = (arr.astype(np.uint32) << 16).view(np.float32)
            np.testing.assert_array_equal(N(t), want)
        else:
            np.testing.assert_array_equal(N(t), arr)
    # Heron writes the same bytes as the reference for the same tensors and metadata.
    assert st.save(back, metadata={"format": "pt"}) == path.read_bytes()


# ------------------------------------------------------------------ zero-copy loading
def test_loaded_tensors_outlive_the_file_and_never_write_it(tmp_path):
    path = tmp_path / "w.safetensors"
    st.save_file({"w": heron.tensor(np.arange(1024, dtype=np.float32)), "b": heron.tensor(np.ones(3))}, path)
    raw = path.read_bytes()
    back = st.load_file(path)
    w = back["w"]
    del back
    w.copy_(heron.zeros([1024]))  # private mapping: copy-on-write
    assert path.read_bytes() == raw
    os.remove(path)
    np.testing.assert_array_equal(N(w), np.zeros(1024))
    again = st.load(raw)
    np.testing.assert_array_equal(N(again["w"]), np.arange(1024))


def test_misaligned_data_is_copied_not_wrapped(tmp_path):
    # a 1-byte U8 tensor first, so the F32 data starts at an odd address
    f32 = np.array([1.5, -2.0, 3.25], dtype=np.float32)
    raw = spec_file([("a", "U8", (1,), b"\x07"), ("b", "F32", (3,), f32.tobytes())])
    path = tmp_path / "odd.safetensors"
    path.write_bytes(raw)
    back = st.load_file(path)
    np.testing.assert_array_equal(N(back["b"]), f32)
    assert int(N(back["a"])[0]) == 7


# ------------------------------------------------------------------ malformed files
def with_header(header_bytes, data=b"", n=None):
    return struct.pack("<Q", len(header_bytes) if n is None else n) + header_bytes + data


F4 = np.ones(4, np.float32).tobytes()
GOOD = spec_file([("w", "F32", (4,), F4)])

MALFORMED = {
    "empty": (b"", r"too few for the 8-byte header length"),
    "truncated length": (b"\x10\x00\x00", r"too few for the 8-byte header length"),
    "truncated header": (GOOD[:20], r"header length \d+ runs past the end"),
    "truncated data": (GOOD[:-1], r"'w'.*run past the end of the byte buffer"),
    "header length too big": (struct.pack("<Q", 2**63) + b"{}", r"larger than the limit"),
    "header length past the end": (struct.pack("<Q", 1000) + b"{}      ", r"runs past the end"),
    "not json": (with_header(b"{not json}"), r"not valid JSON"),
    "not an object": (with_header(b"[1, 2]   "), r"not a JSON object"),
    "trailing garbage": (with_header(b'{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}} x', F4), r"not valid JSON"),
    "unknown dtype": (with_header(b'{"w":{"dtype":"F7","shape":[4],"data_offsets":[0,16]}}', F4), r"'w'.*unknown or unsupported dtype 'F7'"),
    "unsupported dtype": (with_header(b'{"w":{"dtype":"U16","shape":[8],"data_offsets":[0,16]}}', F4), r"unsupported dtype 'U16'"),
    "wrong span": (with_header(b'{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,16]}}', F4), r"'w'.*needs 12 bytes but data_offsets \[0, 16\] span 16"),
    "overlap": (with_header(b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[3],"data_offsets":[4,16]}}', F4),
                r"'b'.*overlap"),
    "gap": (with_header(b'{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}', F4),
            r"'b'.*gap"),
    "not covering": (with_header(b'{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', F4), r"cover 8 bytes but the byte buffer has 16"),
    "offsets out of range": (with_header(b'{"w":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}}', F4), r"'w'.*run past the end"),
    "offsets reversed": (with_header(b'{"w":{"dtype":"F32","shape":[0],"data_offsets":[16,0]}}', F4), r"'w'.*end before they begin"),
    "negative dim": (with_header(b'{"w":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}}', F4), r"'w'.*not a non-negative integer"),
    "float dim": (with_header(b'{"w":{"dtype":"F32","shape":[4.0],"data_offsets":[0,16]}}', F4), r"'w'.*not a non-negative integer"),
    "huge shape": (with_header(b'{"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}', F4), r"'w'.*too many elements"),
    "missing field": (with_header(b'{"w":{"dtype":"F32","shape":[4]}}', F4), r"'w'.*needs the fields"),
    "entry not object": (with_header(b'{"w":[1,2]}', F4), r"'w'.*not an object"),
    "offsets not pair": (with_header(b'{"w":{"dtype":"F32","shape":[4],"data_offsets":[0]}}', F4), r"'w'.*two non-negative integers"),
    "duplicate name": (with_header(b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}', F4),
                       r"'w' appears more than once"),
    "bad metadata": (with_header(b'{"__metadata__":{"a":1}}'), r"__metadata__ value of 'a' is not a string"),
    "bad utf8": (with_header(b'{"\xff":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', F4), r"not valid JSON"),
}


@pytest.mark.parametrize("name", list(MALFORMED))
def test_malformed_files_are_clear_errors(tmp_path, name):
    raw, pattern = MALFORMED[name]
    with pytest.raises(ValueError, match=pattern) as e:
        st.load(raw)
    assert "safetensors" in str(e.value)
    path = tmp_path / "bad.safetensors"
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=pattern) as e:
        st.load_file(path)
    assert str(path) in str(e.value)  # the error names the file


def test_the_good_corpus_file_loads():
    back = st.load(GOOD)
    np.testing.assert_array_equal(N(back["w"]), np.ones(4, np.float32))
