"""Named tensor maps and safetensors through the C ABI: map handles (create, set retains, size, key,
tensor, get, metadata, release), load/save of files and buffers, ownership of returned buffers and
handles (the leak check fixture covers maps too), NULL arguments and malformed input."""
import json
import struct

import numpy as np


def new_map(capi):
    out = capi.ffi.new("heron_tensor_map**")
    capi.check(capi.lib.heron_tensor_map_create(out))
    return out[0]


def key(capi, m, i):
    out = capi.ffi.new("const char**")
    capi.check(capi.lib.heron_tensor_map_key(m, i, out))
    return capi.ffi.string(out[0]).decode()


def size(capi, m):
    out = capi.ffi.new("size_t*")
    capi.check(capi.lib.heron_tensor_map_size(m, out))
    return out[0]


def tensor_at(capi, m, i):
    out = capi.ffi.new("heron_tensor**")
    capi.check(capi.lib.heron_tensor_map_tensor(m, i, out))
    return capi.track(out[0])


def get(capi, m, name):
    out = capi.ffi.new("heron_tensor**")
    capi.check(capi.lib.heron_tensor_map_get(m, name.encode(), out))
    return capi.track(out[0])


def metadata(capi, m):
    out = capi.ffi.new("const char**")
    capi.check(capi.lib.heron_tensor_map_metadata_json(m, out))
    return json.loads(capi.ffi.string(out[0]).decode())


def save_buffer(capi, m, md=None):
    ffi = capi.ffi
    buf = ffi.new("uint8_t**")
    n = ffi.new("size_t*")
    capi.check(capi.lib.heron_safetensors_save_buffer(m, md.encode() if md else ffi.NULL, buf, n))
    data = bytes(ffi.buffer(buf[0], n[0]))
    capi.lib.heron_safetensors_free_buffer(buf[0])
    return data


def load_buffer(capi, data):
    out = capi.ffi.new("heron_tensor_map**")
    capi.check(capi.lib.heron_safetensors_load_buffer(data, len(data), out))
    return out[0]


def test_map_basics_and_ownership(capi):
    lib = capi.lib
    m = new_map(capi)
    try:
        assert size(capi, m) == 0
        a = capi.from_numpy(np.arange(6, dtype=np.float32).reshape(2, 3))
        b = capi.from_numpy(np.array([1, 2], dtype=np.int64))
        capi.check(lib.heron_tensor_map_set(m, b"zeta", a))
        capi.check(lib.heron_tensor_map_set(m, b"alpha", b))
        capi.release(a)  # the map retains its own reference
        assert size(capi, m) == 2
        assert [key(capi, m, 0), key(capi, m, 1)] == ["alpha", "zeta"]  # name order
        np.testing.assert_array_equal(capi.to_numpy(tensor_at(capi, m, 1)), np.arange(6).reshape(2, 3))
        np.testing.assert_array_equal(capi.to_numpy(get(capi, m, "alpha")), [1, 2])
        capi.check(lib.heron_tensor_map_set(m, b"alpha", b))  # replace keeps one entry
        assert size(capi, m) == 2
        out = capi.ffi.new("heron_tensor**")
        capi.expect(lib.heron_tensor_map_get(m, b"missing", out), capi.C.HERON_ERR_NOT_FOUND, "missing")
        capi.expect(lib.heron_tensor_map_tensor(m, 2, out), capi.C.HERON_ERR_INDEX, "index 2")
        k = capi.ffi.new("const char**")
        capi.expect(lib.heron_tensor_map_key(m, 5, k), capi.C.HERON_ERR_INDEX, "out of range")
        assert metadata(capi, m) == {}
        capi.check(lib.heron_tensor_map_set_metadata_json(m, b'{"a": "b"}'))
        assert metadata(capi, m) == {"a": "b"}
        capi.expect(lib.heron_tensor_map_set_metadata_json(m, b'{"a": 1}'), capi.C.HERON_ERR_INVALID_ARGUMENT, "not a string")
        capi.expect(lib.heron_tensor_map_set_metadata_json(m, b"[1"), capi.C.HERON_ERR_INVALID_ARGUMENT, "JSON object")
        capi.check(lib.heron_tensor_map_set_metadata_json(m, capi.ffi.NULL))
        assert metadata(capi, m) == {}
    finally:
        lib.heron_tensor_map_release(m)
    lib.heron_tensor_map_release(m)  # an already-released map is ignored
    lib.heron_tensor_map_release(capi.ffi.NULL)


def test_null_arguments(capi):
    lib, ffi, C = capi.lib, capi.ffi, capi.C
    capi.expect(lib.heron_tensor_map_create(ffi.NULL), C.HERON_ERR_NULL_HANDLE, "out")
    n = ffi.new("size_t*")
    capi.expect(lib.heron_tensor_map_size(ffi.NULL, n), C.HERON_ERR_NULL_HANDLE, "map")
    m = new_map(capi)
    try:
        capi.expect(lib.heron_tensor_map_set(m, b"x", ffi.NULL), C.HERON_ERR_NULL_HANDLE, "tensor")
        t = capi.from_numpy(np.zeros(2))
        capi.expect(lib.heron_tensor_map_set(m, ffi.NULL, t), C.HERON_ERR_NULL_HANDLE, "name")
        capi.expect(lib.heron_tensor_map_size(m, ffi.NULL), C.HERON_ERR_NULL_HANDLE, "out")
        out = ffi.new("heron_tensor_map**")
        capi.expect(lib.heron_safetensors_load_file(ffi.NULL, out), C.HERON_ERR_NULL_HANDLE, "path")
        capi.expect(lib.heron_safetensors_load_buffer(ffi.NULL, 8, out), C.HERON_ERR_NULL_HANDLE, "data")
        capi.expect(lib.heron_safetensors_save_file(ffi.NULL, m, ffi.NULL), C.HERON_ERR_NULL_HANDLE, "path")
        capi.expect(lib.heron_safetensors_save_buffer(m, ffi.NULL, ffi.NULL, n), C.HERON_ERR_NULL_HANDLE, "out_bytes")
    finally:
        lib.heron_tensor_map_release(m)
    lib.heron_safetensors_free_buffer(ffi.NULL)


def test_buffer_round_trip_every_dtype(capi):
    lib = capi.lib
    m = new_map(capi)
    arrays = {
        "f32": np.arange(6, dtype=np.float32).reshape(3, 2), "f64": np.array(2.5), "i8": np.array([-3, 4], np.int8),
        "u8": np.array([255], np.uint8), "i32": np.zeros((0, 3), np.int32), "i64": np.array([2**40], np.int64),
        "b": np.array([True, False]), "f16": np.array([0.5, -1.0], np.float16),
    }
    try:
        for k, a in arrays.items():
            capi.check(lib.heron_tensor_map_set(m, k.encode(), capi.from_numpy(a)))
        data = save_buffer(capi, m, '{"format": "np"}')
        n = struct.unpack("<Q", data[:8])[0]
        assert n % 8 == 0 and json.loads(data[8:8 + n])["__metadata__"] == {"format": "np"}
        m2 = load_buffer(capi, data)
        try:
            assert size(capi, m2) == len(arrays)
            assert [key(capi, m2, i) for i in range(len(arrays))] == sorted(arrays)
            for k, a in arrays.items():
                got = capi.to_numpy(get(capi, m2, k))
                assert got.dtype == a.dtype and got.shape == a.shape
                np.testing.assert_array_equal(got, a)
            assert metadata(capi, m2) == {"format": "np"}
            # saving with NULL metadata writes the map's own metadata
            assert save_buffer(capi, m2) == data
        finally:
            lib.heron_tensor_map_release(m2)
    finally:
        lib.heron_tensor_map_release(m)


def test_file_round_trip_and_zero_copy_lifetime(capi, tmp_path):
    lib = capi.lib
    path = str(tmp_path / "w.safetensors").encode()
    m = new_map(capi)
    a = np.arange(12, dtype=np.float32)
    try:
        capi.check(lib.heron_tensor_map_set(m, b"w", capi.from_numpy(a)))
        capi.check(lib.heron_safetensors_save_file(path, m, b'{"k": "v"}'))
    finally:
        lib.heron_tensor_map_release(m)
    out = capi.ffi.new("heron_tensor_map**")
    capi.check(lib.heron_safetensors_load_file(path, out))
    t = tensor_at(capi, out[0], 0)
    assert metadata(capi, out[0]) == {"k": "v"}
    lib.heron_tensor_map_release(out[0])  # the tensor keeps the mapping alive
    np.testing.assert_array_equal(capi.to_numpy(t), a)


def test_malformed_input_is_a_clear_error(capi, tmp_path):
    lib, C = capi.lib, capi.C
    out = capi.ffi.new("heron_tensor_map**")
    bad = struct.pack("<Q", 16) + b'{"w":{"dtype":"X'
    capi.expect(lib.heron_safetensors_load_buffer(bad, len(bad), out), C.HERON_ERR_INVALID_ARGUMENT, "<buffer>", "not valid JSON")
    p = tmp_path / "bad.safetensors"
    p.write_bytes(struct.pack("<Q", 99))
    capi.expect(lib.heron_safetensors_load_file(str(p).encode(), out), C.HERON_ERR_INVALID_ARGUMENT, str(p), "runs past the end")
    capi.expect(lib.heron_safetensors_load_file(str(tmp_path / "none").encode(), out), C.HERON_ERR_RUNTIME, "cannot open")
    m = new_map(capi)
    try:
        n = capi.ffi.new("size_t*")
        buf = capi.ffi.new("uint8_t**")
        capi.expect(lib.heron_safetensors_save_buffer(m, b"[]", buf, n), C.HERON_ERR_INVALID_ARGUMENT, "metadata")
        capi.expect(lib.heron_safetensors_save_file(str(tmp_path / "no" / "dir").encode(), m, capi.ffi.NULL), C.HERON_ERR_RUNTIME,
                    "cannot open")
    finally:
        lib.heron_tensor_map_release(m)
