"""A short tour of Heron from Python: tensors, views, ops, dtypes, DLPack with numpy."""
import numpy as np

import heron

print(f"heron {heron.__version__}: {len(heron._C._op_names())} ops, devices {heron.device_types()}, "
      f"{heron.get_num_threads()} threads")

# Tensors and views (views share memory, like PyTorch)
x = heron.arange(12, dtype=heron.float32).reshape(3, 4)
print("x =", x)
print("x.T is a view:", x.T._shares_storage(x), "contiguous:", x.T.is_contiguous())
print("x[1:, ::2] =", x[1:, ::2])

# Ops with broadcasting and PyTorch's type promotion
b = heron.tensor([1, 2, 3, 4])  # int64
y = x * 2 + b
print("x * 2 + b =", y, "dtype:", y.dtype)
print("row sums:", y.sum(dim=1), " mean:", y.mean().item())
print("softmax of the first row:", heron.softmax(y[0], dim=0))
print("x @ x.T =", x @ x.T)

# numpy interop without copies (DLPack)
a = np.linspace(0, 1, 5, dtype=np.float32)
t = heron.from_numpy(a)
t[0] = 42.0
print("numpy sees the write through heron:", a[0] == 42.0)
print("back to numpy:", np.from_dlpack(heron.exp(t[1:])))

# Reproducible random numbers (Philox: same numbers on every platform and thread count)
heron.manual_seed(0)
print("randn:", heron.randn(4))

# Errors are Python exceptions with the op's message
try:
    heron.ones(2, 3) + heron.ones(4)
except heron.InvalidArgumentError as e:  # also a ValueError and a RuntimeError
    print("error:", e)
