// matmul with numpy semantics. Device-generic: shapes, broadcasting and dtype here; the
// batched product is the device's kernel (impl/linalg.h).
#include "core/ops/impl/linalg.h"

#include "core/ops/impl/common.h"

namespace heron {
namespace {
using namespace ops;

HERON_IMPL(matmul, MatmulAttrs) {
  const Tensor& a0 = ctx.in(0);
  const Tensor& b0 = ctx.in(1);
  Device dev = common_device("matmul", ctx.inputs(), 2);
  if (a0.dim() == 0 || b0.dim() == 0)
    throw Error(ErrorCode::InvalidArgument,
                str_cat("matmul: both arguments must have at least 1 dimension, got shapes ", a0.shape().str(), " and ",
                        b0.shape().str()),
                "matmul");
  DType dt = result_type(a0, b0);
  if (dt == DType::Bool)
    throw Error(ErrorCode::TypeError, "matmul: bool tensors are not supported (cast them to a numeric dtype first)", "matmul");

  // 1-d operands: a (k) -> (1, k), b (k) -> (k, 1); the added dims are dropped from the result.
  const int64_t na = a0.dim(), nb = b0.dim();
  const int64_t m = na == 1 ? 1 : a0.shape()[na - 2];
  const int64_t k = a0.shape()[na - 1];
  const int64_t k2 = nb == 1 ? b0.shape()[0] : b0.shape()[nb - 2];
  const int64_t n = nb == 1 ? 1 : b0.shape()[nb - 1];
  if (k != k2)
    throw Error(ErrorCode::InvalidArgument,
                str_cat("matmul: shapes ", a0.shape().str(), " and ", b0.shape().str(), " are not aligned (", k, " != ", k2, ")"),
                "matmul");

  // Broadcast the batch dims.
  const int64_t bra = std::max<int64_t>(na - 2, 0), brb = std::max<int64_t>(nb - 2, 0);
  const int64_t nbatch = std::max(bra, brb);
  Dims batch(nbatch, 1);
  for (int64_t i = 0; i < nbatch; ++i) {
    int64_t ia = i - (nbatch - bra), ib = i - (nbatch - brb);
    int64_t sa = ia >= 0 ? a0.shape()[ia] : 1, sb = ib >= 0 ? b0.shape()[ib] : 1;
    if (sa != sb && sa != 1 && sb != 1)
      throw Error(ErrorCode::InvalidArgument,
                  str_cat("matmul: the batch dims of shapes ", a0.shape().str(), " and ", b0.shape().str(),
                          " cannot be broadcast together (", sa, " vs ", sb, " at batch dim ", i, ")"),
                  "matmul");
    batch[i] = sa == 1 ? sb : sa;
  }

  auto fn = kernel<MatmulKernelFn>(OpId::matmul, dev, dt);
  Tensor a = a0.to(dt);
  Tensor b = b0.to(dt);
  if (na == 1) a = a.unsqueeze(0);
  if (nb == 1) b = b.unsqueeze(1);
  Dims ash = batch, bsh = batch, osh = batch;
  ash.push_back(m), ash.push_back(k);
  bsh.push_back(k), bsh.push_back(n);
  osh.push_back(m), osh.push_back(n);
  if (a.shape() != ash) a = a.expand(ash);
  if (b.shape() != bsh) b = b.expand(bsh);
  Tensor out = Tensor::empty(osh, dt, dev);
  if (out.numel() > 0) fn(a, b, out);

  if (na == 1 || nb == 1) {
    Dims res = batch;
    if (na != 1) res.push_back(m);
    if (nb != 1) res.push_back(n);
    out = out.view(res);
  }
  ctx.set(out);
}

}  // namespace
}  // namespace heron
