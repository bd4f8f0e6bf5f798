"""DistributedDataParallel over heron.distributed.

    model = DistributedDataParallel(model)          # after init_process_group()
    loss = loss_fn(model(x), y); loss.backward()     # gradients are averaged over the ranks here
    optimizer.step()

At construction the parameters and buffers of rank 0 are broadcast so every replica starts equal.
The parameters are split into buckets of about `bucket_cap_mb` (same-dtype parameters, in reverse
registration order, which is roughly the order backward produces their gradients). During each
backward() that follows a forward of this module, a post-accumulate-grad hook on every parameter
marks its gradient ready; as soon as every gradient of a bucket is ready (and every earlier bucket
has been launched: all ranks issue the same collectives in the same order) the bucket's gradients
are flattened and handed to a background thread that all-reduces them (average for floating
dtypes), while backward goes on computing the other gradients. When backward() returns, the
buckets still waiting (parameters that received no gradient, or gradients that arrived without the
hook, e.g. backward(inputs=...)) are reduced from the parameters that have a gradient, every
all-reduce is waited for, and the averaged gradients are copied back into `.grad`, so every replica
takes the same optimizer step. With the same global batch the result matches a single-process run.

`overlap_backward=False` (Heron-specific) reduces everything after backward() returns instead; the
buckets and the arithmetic are the same, so the results are identical bit for bit.
"""
from __future__ import annotations

import queue
import threading
import weakref

from ... import autograd as _autograd
from ... import distributed as dist
from ..module import Module


def _grad_ready_hook(ddp_ref, index):
    def hook(_tensor):
        ddp = ddp_ref()
        if ddp is not None:
            ddp._mark_ready(index)
    return hook


class _Reducer:
    """A background thread running the bucket all-reduces in submission order."""

    def __init__(self, group):
        self.group = group
        self.jobs = queue.Queue()
        self.lock = threading.Lock()
        self.done = threading.Condition(self.lock)
        self.submitted = 0
        self.finished = 0
        self.error = None
        self.thread = threading.Thread(target=self._run, name="heron-ddp-reducer", daemon=True)
        self.thread.start()

    def submit(self, flat):
        with self.lock:
            self.submitted += 1
        self.jobs.put(flat)

    def _run(self):
        while True:
            flat = self.jobs.get()
            if flat is None:
                return
            err = None
            with self.lock:
                skip = self.error is not None  # the group is broken: do not start more collectives
            if not skip:
                try:
                    dist.all_reduce(flat, op=dist.ReduceOp.AVG if flat.dtype.is_floating_point else dist.ReduceOp.SUM,
                                    group=self.group)
                except BaseException as e:  # noqa: BLE001 - handed to the waiting thread
                    err = e
            with self.lock:
                if err is not None and self.error is None:
                    self.error = err
                self.finished += 1
                self.done.notify_all()

    def wait(self):
        """Waits for every submitted all-reduce; raises the first error (and forgets it)."""
        with self.lock:
            while self.finished < self.submitted:
                self.done.wait()
            err, self.error = self.error, None
        if err is not None:
            raise err

    def close(self):
        self.jobs.put(None)


class DistributedDataParallel(Module):
    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True,
                 process_group=None, bucket_cap_mb=25.0, find_unused_parameters=False, overlap_backward=True,
                 **kwargs):
        super().__init__()
        if not dist.is_initialized():
            raise RuntimeError("DistributedDataParallel: call heron.distributed.init_process_group() first")
        if not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be positive, got {bucket_cap_mb}")
        self.module = module
        self.process_group = process_group
        self.broadcast_buffers = broadcast_buffers
        self.bucket_cap_bytes = int(bucket_cap_mb * 1024 * 1024)
        self.require_backward_grad_sync = True
        self.overlap_backward = bool(overlap_backward)
        self._pending = False
        src = 0 if process_group is None else process_group._global_ranks[0]
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.detach(), src=src, group=process_group)
        # The static bucket plan (indices into _params), in reduction order.
        self._params = [p for p in module.parameters() if p.requires_grad]
        self._plan = self._make_buckets(list(range(len(self._params)))[::-1],
                                        lambda i: self._params[i].numel() * self._params[i].element_size(),
                                        lambda i: self._params[i].dtype)
        self._bucket_of = {}
        for b, idx in enumerate(self._plan):
            for i in idx:
                self._bucket_of[i] = b
        self._armed = False
        self._reducer = None
        self._hook_handles = []
        if self.overlap_backward:
            ref = weakref.ref(self)
            self._hook_handles = [p.register_post_accumulate_grad_hook(_grad_ready_hook(ref, i))
                                  for i, p in enumerate(self._params)]

    def _make_buckets(self, items, nbytes_of, dtype_of):
        out, cur, size, dtype = [], [], 0, None
        for it in items:
            nbytes = nbytes_of(it)
            if cur and (dtype_of(it) != dtype or size + nbytes > self.bucket_cap_bytes):
                out.append(cur)
                cur, size = [], 0
            cur.append(it)
            size += nbytes
            dtype = dtype_of(it)
        if cur:
            out.append(cur)
        return out

    def forward(self, *args, **kwargs):
        if self.broadcast_buffers:
            src = 0 if self.process_group is None else self.process_group._global_ranks[0]
            for b in self.module.buffers():
                dist.broadcast(b, src=src, group=self.process_group)
        out = self.module(*args, **kwargs)
        if self.require_backward_grad_sync:
            if not self._pending:
                self._pending = True
                _autograd._post_backward.append(self._sync_gradients)
            # A fresh round (also after a backward that raised and left a round half done).
            self._start_backward_round()
        return out

    def no_sync(self):
        """Context manager: gradients accumulate locally (no all-reduce) inside the block."""
        ddp = self

        class _NoSync:
            def __enter__(self):
                self.prev = ddp.require_backward_grad_sync
                ddp.require_backward_grad_sync = False

            def __exit__(self, *exc):
                ddp.require_backward_grad_sync = self.prev

        return _NoSync()

    def buckets(self):
        """The parameter buckets (lists of parameters with gradients), in reduction order."""
        params = [p for p in self.module.parameters() if p.requires_grad and p.grad is not None]
        return self._make_buckets(params[::-1], lambda p: p.grad.numel() * p.grad.element_size(),
                                  lambda p: p.grad.dtype)

    # ------------------------------------------------------------------ overlapped reduction
    def _start_backward_round(self):
        if self._reducer is not None:
            try:
                self._reducer.wait()  # all-reduces left by a backward that raised
            except Exception:  # noqa: BLE001 - that backward already failed
                pass
        self._remaining = [len(b) for b in self._plan]
        self._launched = []  # (bucket index, params, flat) in launch order
        self._next = 0
        self._overlapped_buckets = 0  # launched from the hooks, while backward was still running
        self._armed = self.overlap_backward

    def _mark_ready(self, index):
        if not self._armed:
            return
        b = self._bucket_of.get(index)
        if b is None:
            return
        self._remaining[b] -= 1
        while self._next < len(self._plan) and self._remaining[self._next] == 0:
            self._launch(self._next, [self._params[i] for i in self._plan[self._next]])
            self._next += 1
            self._overlapped_buckets += 1

    def _launch(self, b, params):
        from ... import _ops
        flat = _ops.concat([p.grad.reshape(-1) for p in params], 0).contiguous()
        if self._reducer is None:
            self._reducer = _Reducer(self.process_group)
        self._launched.append((params, flat))
        self._reducer.submit(flat)

    def _sync_gradients(self):
        self._pending = False
        self._armed = False
        if self.overlap_backward:
            launched = self._launched
            # Buckets whose gradients did not all arrive through the hook: the parameters that have one.
            rest = [self._params[i] for b in range(self._next, len(self._plan)) for i in self._plan[b]]
            rest = [p for p in rest if p.grad is not None]
            for params in self._make_buckets(rest, lambda p: p.grad.numel() * p.grad.element_size(),
                                             lambda p: p.grad.dtype):
                self._launch(None, params)
            self._launched = []
            if self._reducer is not None:
                self._reducer.wait()
            for params, flat in launched:
                self._unflatten(params, flat)
            return False
        from ... import _ops
        for bucket in self.buckets():
            flat = _ops.concat([p.grad.reshape(-1) for p in bucket], 0).contiguous()
            dist.all_reduce(flat, op=dist.ReduceOp.AVG if flat.dtype.is_floating_point else dist.ReduceOp.SUM,
                            group=self.process_group)
            self._unflatten(bucket, flat)
        return False  # one-shot

    @staticmethod
    def _unflatten(params, flat):
        offset = 0
        for p in params:
            n = p.grad.numel()
            p.grad.copy_(flat[offset:offset + n].reshape(p.grad.shape))
            offset += n

    def __del__(self):
        for h in getattr(self, "_hook_handles", []):
            try:
                h.remove()
            except Exception:  # noqa: BLE001 - interpreter shutdown
                pass
        r = getattr(self, "_reducer", None)
        if r is not None:
            r.close()
