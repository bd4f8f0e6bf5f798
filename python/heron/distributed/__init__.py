"""heron.distributed: process groups and collectives over CommNet, mirroring ``torch.distributed``.

    import heron, heron.distributed as dist
    dist.init_process_group(init_method="env://")          # MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE
    t = heron.ones(4) * dist.get_rank()
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    dist.destroy_process_group()

Collectives run on CPU tensors of every dtype; outputs are written in place (contiguous tensors).
Every call is collective: all ranks of the group call it in the same order. A rank that dies, a
timeout or tensors that differ in size across ranks raise an error on every rank instead of hanging
(``DistBackendError``, ``DistTimeoutError``, ``ValueError``). ``async_op=True`` is accepted and
returns an already-completed ``Work`` (the operations are synchronous).

The module calls libheron's C ABI (``heron_dist_*`` in heron.h) through ctypes.
"""
from __future__ import annotations

import ctypes
import datetime
import enum
import pathlib
from typing import List, Optional, Sequence

from .. import _C  # noqa: F401  (loads libheron)
from .._C import Tensor

__all__ = [
    "ReduceOp", "ProcessGroup", "GroupMember", "Work", "DistBackendError", "DistTimeoutError",
    "is_available", "is_initialized", "init_process_group", "destroy_process_group", "get_rank",
    "get_world_size", "get_backend", "new_group", "all_reduce", "broadcast", "reduce", "all_gather",
    "reduce_scatter", "all_to_all", "barrier", "send", "recv",
]

_LIB_PATH = pathlib.Path(__file__).resolve().parent.parent / "lib" / "libheron.so"
_lib = ctypes.CDLL(str(_LIB_PATH))
_ABI_MINOR_NEEDED = 4
if (_lib.heron_abi_version() & 0xFFFF) < _ABI_MINOR_NEEDED:
    raise ImportError(f"heron.distributed needs libheron ABI >= 1.{_ABI_MINOR_NEEDED}; {_LIB_PATH} is older")

_vp = ctypes.c_void_p
_i32 = ctypes.c_int32
_i64 = ctypes.c_int64
_size = ctypes.c_size_t
for _name, _args in {
    "heron_dist_init": [ctypes.c_char_p, _i32, _i32, _i64, ctypes.POINTER(_vp)],
    "heron_dist_new_group": [_vp, ctypes.POINTER(_i32), _i32, ctypes.POINTER(_vp)],
    "heron_dist_rank": [_vp, ctypes.POINTER(_i32)],
    "heron_dist_size": [_vp, ctypes.POINTER(_i32)],
    "heron_dist_destroy": [_vp],
    "heron_dist_all_reduce": [_vp, _vp, _i32],
    "heron_dist_broadcast": [_vp, _vp, _i32],
    "heron_dist_reduce": [_vp, _vp, _i32, _i32],
    "heron_dist_all_gather": [_vp, ctypes.POINTER(_vp), _size, _vp],
    "heron_dist_reduce_scatter": [_vp, _vp, ctypes.POINTER(_vp), _size, _i32],
    "heron_dist_all_to_all": [_vp, ctypes.POINTER(_vp), _size, ctypes.POINTER(_vp), _size],
    "heron_dist_barrier": [_vp],
    "heron_dist_send": [_vp, _vp, _i32, _i32],
    "heron_dist_recv": [_vp, _vp, _i32, _i32],
    "heron_tensor_from_external": [_vp, _size, _i32, ctypes.POINTER(_i64), ctypes.POINTER(_i64), _i32, _vp, _vp,
                                   ctypes.POINTER(_vp)],
}.items():
    getattr(_lib, _name).argtypes = _args
    getattr(_lib, _name).restype = _i32
_lib.heron_dist_release.argtypes = [_vp]
_lib.heron_dist_release.restype = None
_lib.heron_tensor_release.argtypes = [_vp]
_lib.heron_tensor_release.restype = None
_lib.heron_last_error_message.restype = ctypes.c_char_p


class DistBackendError(RuntimeError):
    """A communication failure: a rank died or left, a malformed message, an aborted group."""


class DistTimeoutError(DistBackendError):
    """A collective, or the rendezvous of init_process_group, timed out."""


_ERRORS = {1: ValueError, 2: TypeError, 3: IndexError, 4: TypeError, 5: ValueError, 6: NotImplementedError,
           7: MemoryError, 8: ValueError, 12: DistBackendError, 13: DistTimeoutError}


def _check(status: int) -> None:
    if status != 0:
        msg = (_lib.heron_last_error_message() or b"").decode("utf-8", "replace")
        raise _ERRORS.get(status, RuntimeError)(msg)


class ReduceOp(enum.IntEnum):
    SUM = 0
    PRODUCT = 1
    MIN = 2
    MAX = 3
    AVG = 4


class Work:
    """The handle async_op=True returns; the operation has already completed."""

    def wait(self, timeout=None) -> bool:
        return True

    def is_completed(self) -> bool:
        return True


class ProcessGroup:
    """A group of ranks (the world, or a subgroup from new_group)."""

    def __init__(self, handle: int, global_ranks: List[int]):
        self._h = _vp(handle)
        self._global_ranks = list(global_ranks)

    def rank(self) -> int:
        r = _i32()
        _check(_lib.heron_dist_rank(self._h, ctypes.byref(r)))
        return r.value

    def size(self) -> int:
        n = _i32()
        _check(_lib.heron_dist_size(self._h, ctypes.byref(n)))
        return n.value

    def _group_rank(self, global_rank: int, what: str) -> int:
        if global_rank not in self._global_ranks:
            raise ValueError(f"{what}: global rank {global_rank} is not in this group (ranks {self._global_ranks})")
        return self._global_ranks.index(global_rank)

    def _release(self):
        if self._h:
            _lib.heron_dist_release(self._h)
            self._h = _vp()

    def __del__(self):
        try:
            self._release()
        except Exception:  # interpreter shutdown
            pass

    def __repr__(self):
        return f"<heron.distributed.ProcessGroup ranks={self._global_ranks}>"


class GroupMember:
    WORLD: Optional[ProcessGroup] = None
    NON_GROUP_MEMBER = object()


_world: Optional[ProcessGroup] = None
_subgroups: List[ProcessGroup] = []


def is_available() -> bool:
    return True


def is_initialized() -> bool:
    return _world is not None


def _timeout_ms(timeout) -> int:
    if timeout is None:
        return 30 * 60 * 1000
    if isinstance(timeout, datetime.timedelta):
        timeout = timeout.total_seconds()
    ms = int(float(timeout) * 1000)
    if ms <= 0:
        raise ValueError(f"timeout must be positive, got {timeout!r}")
    return ms


def init_process_group(backend: Optional[str] = None, init_method: Optional[str] = None, timeout=None,
                       world_size: int = -1, rank: int = -1, store=None, group_name: str = "") -> None:
    """Joins the world. backend: None, "commnet" or "gloo" (the CPU backend name PyTorch scripts use).
    init_method: "env://" (default), "tcp://host:port" or "file:///path"."""
    global _world
    if _world is not None:
        raise RuntimeError("init_process_group: the default process group is already initialized")
    if backend not in (None, "commnet", "gloo", "cpu:gloo", "cpu:commnet"):
        raise ValueError(f"init_process_group: backend {backend!r} is not available (heron has 'commnet')")
    if store is not None:
        raise NotImplementedError("init_process_group: store= is not supported; use init_method")
    h = _vp()
    method = (init_method or "env://").encode()
    _check(_lib.heron_dist_init(method, int(rank), int(world_size), _timeout_ms(timeout), ctypes.byref(h)))
    n = _i32()
    _check(_lib.heron_dist_size(h, ctypes.byref(n)))
    _world = ProcessGroup(h.value, list(range(n.value)))
    GroupMember.WORLD = _world


def _group(group) -> ProcessGroup:
    if _world is None:
        raise RuntimeError("heron.distributed: call init_process_group() first")
    if group is None or group is GroupMember.WORLD:
        return _world
    if group is GroupMember.NON_GROUP_MEMBER:
        raise ValueError("this process is not a member of the group")
    if not isinstance(group, ProcessGroup):
        raise TypeError(f"group must be a ProcessGroup, not {type(group).__name__}")
    return group


def destroy_process_group(group: Optional[ProcessGroup] = None) -> None:
    """Leaves the world (group None) or drops a subgroup."""
    global _world
    if group is None or group is _world:
        if _world is None:
            return
        _check(_lib.heron_dist_destroy(_world._h))
        for g in _subgroups:
            g._release()
        _subgroups.clear()
        _world._release()
        _world = None
        GroupMember.WORLD = None
    else:
        _group(group)._release()


def get_rank(group: Optional[ProcessGroup] = None) -> int:
    return _group(group).rank()


def get_world_size(group: Optional[ProcessGroup] = None) -> int:
    return _group(group).size()


def get_backend(group: Optional[ProcessGroup] = None) -> str:
    _group(group)
    return "commnet"


def new_group(ranks: Optional[Sequence[int]] = None, timeout=None, backend=None, **kwargs):
    """A subgroup of the world's ranks (all ranks when None). Every rank of the world must call it,
    in the same order; non-members get GroupMember.NON_GROUP_MEMBER (as in PyTorch)."""
    world = _group(None)
    rs = sorted(set(range(world.size()) if ranks is None else [int(r) for r in ranks]))
    arr = (_i32 * max(1, len(rs)))(*rs)
    h = _vp()
    _check(_lib.heron_dist_new_group(world._h, arr, len(rs), ctypes.byref(h)))
    g = ProcessGroup(h.value, rs)
    _subgroups.append(g)
    if world.rank() not in rs:
        return GroupMember.NON_GROUP_MEMBER
    return g


# ---------------------------------------------------------------- tensors across the ABI
class _Wrapped:
    """heron_tensor handles over the memory of Python tensors (zero copy), released on exit."""

    def __init__(self):
        self.handles = []
        self.keep = []

    def wrap(self, t, what: str, output: bool) -> _vp:
        if not isinstance(t, Tensor):
            raise TypeError(f"{what} must be a heron.Tensor, not {type(t).__name__}")
        if str(t.device) != "cpu":
            raise NotImplementedError(f"{what} is on {t.device}; heron.distributed works on CPU tensors")
        if not t.is_contiguous():
            if output:
                raise ValueError(f"{what} must be contiguous (it is written in place)")
            t = t.contiguous()
        self.keep.append(t)
        shape = (_i64 * max(1, t.ndim))(*t.shape)
        h = _vp()
        _check(_lib.heron_tensor_from_external(_vp(t.data_ptr()), t.nbytes, t.dtype._code, shape, None, t.ndim,
                                               None, None, ctypes.byref(h)))
        self.handles.append(h)
        return h

    def wrap_list(self, ts, what: str, output: bool):
        if isinstance(ts, Tensor) or not hasattr(ts, "__len__"):
            raise TypeError(f"{what} must be a list of heron.Tensor")
        hs = [self.wrap(t, f"{what}[{i}]", output) for i, t in enumerate(ts)]
        return (_vp * max(1, len(hs)))(*[h.value for h in hs]), len(hs)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for h in self.handles:
            _lib.heron_tensor_release(h)
        self.handles.clear()
        self.keep.clear()


def _done(async_op: bool):
    return Work() if async_op else None


def all_reduce(tensor, op=ReduceOp.SUM, group=None, async_op: bool = False):
    g = _group(group)
    with _Wrapped() as w:
        _check(_lib.heron_dist_all_reduce(g._h, w.wrap(tensor, "tensor", True), int(op)))
    return _done(async_op)


def broadcast(tensor, src: int, group=None, async_op: bool = False):
    """src is a global rank (as in PyTorch)."""
    g = _group(group)
    with _Wrapped() as w:
        _check(_lib.heron_dist_broadcast(g._h, w.wrap(tensor, "tensor", True), g._group_rank(src, "broadcast")))
    return _done(async_op)


def reduce(tensor, dst: int, op=ReduceOp.SUM, group=None, async_op: bool = False):
    """dst is a global rank (as in PyTorch)."""
    g = _group(group)
    with _Wrapped() as w:
        _check(_lib.heron_dist_reduce(g._h, w.wrap(tensor, "tensor", True), g._group_rank(dst, "reduce"), int(op)))
    return _done(async_op)


def all_gather(tensor_list, tensor, group=None, async_op: bool = False):
    g = _group(group)
    with _Wrapped() as w:
        outs, n = w.wrap_list(tensor_list, "tensor_list", True)
        _check(_lib.heron_dist_all_gather(g._h, outs, n, w.wrap(tensor, "tensor", False)))
    return _done(async_op)


def reduce_scatter(output, input_list, op=ReduceOp.SUM, group=None, async_op: bool = False):
    g = _group(group)
    with _Wrapped() as w:
        ins, n = w.wrap_list(input_list, "input_list", False)
        _check(_lib.heron_dist_reduce_scatter(g._h, w.wrap(output, "output", True), ins, n, int(op)))
    return _done(async_op)


def all_to_all(output_tensor_list, input_tensor_list, group=None, async_op: bool = False):
    g = _group(group)
    with _Wrapped() as w:
        outs, no = w.wrap_list(output_tensor_list, "output_tensor_list", True)
        ins, ni = w.wrap_list(input_tensor_list, "input_tensor_list", False)
        _check(_lib.heron_dist_all_to_all(g._h, outs, no, ins, ni))
    return _done(async_op)


def barrier(group=None, async_op: bool = False, device_ids=None):
    _check(_lib.heron_dist_barrier(_group(group)._h))
    return _done(async_op)


def send(tensor, dst: int, group=None, tag: int = 0) -> None:
    """dst is a global rank (as in PyTorch)."""
    g = _group(group)
    with _Wrapped() as w:
        _check(_lib.heron_dist_send(g._h, w.wrap(tensor, "tensor", False), g._group_rank(dst, "send"), int(tag)))


def recv(tensor, src: int, group=None, tag: int = 0) -> int:
    """src is a global rank; returns it (PyTorch returns the sender's rank)."""
    g = _group(group)
    with _Wrapped() as w:
        _check(_lib.heron_dist_recv(g._h, w.wrap(tensor, "tensor", True), g._group_rank(src, "recv"), int(tag)))
    return src
