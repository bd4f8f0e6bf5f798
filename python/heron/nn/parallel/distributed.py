"""DistributedDataParallel over heron.distributed.

    model = DistributedDataParallel(model)          # after init_process_group()
    loss = loss_fn(model(x), y); loss.backward()     # gradients are averaged over the ranks here
    optimizer.step()

At construction the parameters and buffers of rank 0 are broadcast so every replica starts equal.
After each backward() that follows a forward of this module, the gradients are averaged across the
ranks in buckets of about `bucket_cap_mb` (one all-reduce per bucket of same-dtype gradients,
flattened), so every replica takes the same optimizer step. With the same global batch the result
matches a single-process run. The reduction runs when backward() returns (Heron's autograd has no
per-gradient hooks yet, so it does not overlap with the backward pass).
"""
from __future__ import annotations

from ... import autograd as _autograd
from ... import distributed as dist
from ..module import Module


class DistributedDataParallel(Module):
    def __init__(self, module, device_ids=None, output_device=None, dim=0, broadcast_buffers=True,
                 process_group=None, bucket_cap_mb=25.0, find_unused_parameters=False, **kwargs):
        super().__init__()
        if not dist.is_initialized():
            raise RuntimeError("DistributedDataParallel: call heron.distributed.init_process_group() first")
        if bucket_cap_mb <= 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be positive, got {bucket_cap_mb}")
        self.module = module
        self.process_group = process_group
        self.broadcast_buffers = broadcast_buffers
        self.bucket_cap_bytes = int(bucket_cap_mb * 1024 * 1024)
        self.require_backward_grad_sync = True
        self._pending = False
        src = 0 if process_group is None else process_group._global_ranks[0]
        for t in list(module.parameters()) + list(module.buffers()):
            dist.broadcast(t.detach(), src=src, group=process_group)

    def forward(self, *args, **kwargs):
        if self.broadcast_buffers:
            src = 0 if self.process_group is None else self.process_group._global_ranks[0]
            for b in self.module.buffers():
                dist.broadcast(b, src=src, group=self.process_group)
        out = self.module(*args, **kwargs)
        if self.require_backward_grad_sync and not self._pending:
            self._pending = True
            _autograd._post_backward.append(self._sync_gradients)
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
        out, cur, size, dtype = [], [], 0, None
        for p in reversed([p for p in self.module.parameters() if p.requires_grad and p.grad is not None]):
            nbytes = p.grad.numel() * p.grad.element_size()
            if cur and (p.grad.dtype != dtype or size + nbytes > self.bucket_cap_bytes):
                out.append(cur)
                cur, size = [], 0
            cur.append(p)
            size += nbytes
            dtype = p.grad.dtype
        if cur:
            out.append(cur)
        return out

    def _sync_gradients(self):
        self._pending = False
        from ... import _ops
        for bucket in self.buckets():
            flat = _ops.concat([p.grad.reshape(-1) for p in bucket], 0).contiguous()
            dist.all_reduce(flat, op=dist.ReduceOp.AVG if flat.dtype.is_floating_point else dist.ReduceOp.SUM,
                            group=self.process_group)
            offset = 0
            for p in bucket:
                n = p.grad.numel()
                p.grad.copy_(flat[offset:offset + n].reshape(p.grad.shape))
                offset += n
        return False  # one-shot
