"""In-place ops bump the storage version of exactly the inputs they write (schema `writes:`), so a
tensor only read by an in-place op (index_put_'s values and indices) stays usable by the backward
of other ops that saved it, while writes are still caught."""
import numpy as np
import pytest

import heron


def test_index_put_reads_its_indices_and_values_without_bumping_them():
    x = heron.tensor(np.arange(12.0).reshape(4, 3), requires_grad=True)
    idx = heron.tensor([0, 2], dtype=heron.int64)
    v = heron.tensor(np.ones((2, 3)), requires_grad=True)
    y = heron.index_select(x, idx, dim=0) * v          # saves idx and v for backward
    z = heron.zeros(4, 3, dtype=heron.float64)
    with heron.no_grad():
        heron.index_put_(z, v.detach(), [idx])         # reads idx (and a view of v's storage)
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy()[:, 0], [1.0, 0.0, 1.0, 0.0])
    np.testing.assert_array_equal(v.grad.numpy(), np.arange(12.0).reshape(4, 3)[[0, 2]])
    np.testing.assert_array_equal(z.numpy()[[0, 2]], np.ones((2, 3)))


def test_writing_a_saved_tensor_is_still_caught():
    x = heron.tensor([1.0, 2.0], requires_grad=True)
    w = heron.tensor([3.0, 4.0])
    y = (x * w).sum()                                   # saves w
    with heron.no_grad():
        heron.index_put_(w, heron.tensor([9.0]), [heron.tensor([0], dtype=heron.int64)])  # writes w
    with pytest.raises(heron.InvalidArgumentError, match="modified by an in-place operation"):
        y.backward()


def test_fused_optimizer_steps_bump_every_tensor_they_update():
    p = heron.tensor([1.0, 2.0], requires_grad=True)
    buf = heron.zeros(2)
    y = (buf * p).sum()                                 # saves buf (a momentum buffer, say)
    p.grad = heron.ones(2)
    with heron.no_grad():
        heron.sgd_step_([p, p.grad, buf], lr=0.1, momentum=0.9, first_step=True)   # writes p and buf
    with pytest.raises(heron.InvalidArgumentError, match="modified by an in-place operation"):
        y.backward()
