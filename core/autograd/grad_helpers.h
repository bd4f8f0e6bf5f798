// Helpers callable from the gradient formulas in ops.yaml (compiled into generated/grad_gen.cpp).
// They run with grad mode off.
#pragma once
#include <cmath>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/autograd/autograd.h"
#include "core/ops/generated/ops_gen.h"

namespace heron {
namespace autograd {

// A wrapped-number scalar: combines with a tensor without changing its dtype.
Tensor sc(double v);
Tensor zeros_meta(const Dims& shape, DType dtype, Device device);
Tensor scale(const Tensor& g, const Scalar& s);
// Undoes a reduction over `dim` (all dims when none): g broadcast back to `shape`.
Tensor unreduce(const Tensor& g, const Dims& shape, const std::optional<Dims>& dim, bool keepdim);
int64_t reduced_count(const Dims& shape, const std::optional<Dims>& dim);
// The gradient of a loss reduced by `reduction` ("none", "mean", "sum") as one value per element of
// x: g itself for none, else g broadcast to x's shape (divided by x's size for mean).
Tensor loss_grad_elementwise(const Tensor& g, const Tensor& x, const std::string& reduction);
Tensor relu_backward(const Tensor& g, const Tensor& result);
Tensor gelu_backward(const Tensor& g, const Tensor& x, const std::string& approximate);
Tensor silu_backward(const Tensor& g, const Tensor& x);
Tensor softplus_backward(const Tensor& g, const Tensor& x, double beta, double threshold);
Tensor erf_backward(const Tensor& g, const Tensor& x);
Tensor pow_backward_input(const Tensor& g, const Tensor& x, const Tensor& e);
Tensor pow_backward_exponent(const Tensor& g, const Tensor& x, const Tensor& result);
Tensor minmax_backward(const Tensor& g, const Tensor& self, const Tensor& other, bool is_max);
Tensor clamp_backward(const Tensor& g, const Tensor& x, const std::optional<Scalar>& lo, const std::optional<Scalar>& hi);
Tensor prod_backward(const Tensor& g, const Tensor& x, const Tensor& result, const std::optional<Dims>& dim, bool keepdim);
Tensor amax_backward(const Tensor& g, const Tensor& x, const Tensor& result, const std::optional<Dims>& dim, bool keepdim);
Tensor var_backward(const Tensor& g, const Tensor& x, const std::optional<Dims>& dim, double correction, bool keepdim);
Tensor std_backward(const Tensor& g, const Tensor& x, const Tensor& result, const std::optional<Dims>& dim,
                    double correction, bool keepdim);
Tensor logsumexp_backward(const Tensor& g, const Tensor& x, const Tensor& result, const std::optional<Dims>& dim,
                          bool keepdim);
Tensor cumsum_backward(const Tensor& g, int64_t dim);
Tensor cumprod_backward(const Tensor& g, const Tensor& x, const Tensor& result, int64_t dim);
std::vector<Tensor> matmul_backward(const Tensor& g, const Tensor& a, const Tensor& b, bool need_a, bool need_b);
Tensor softmax_backward(const Tensor& g, const Tensor& y, int64_t dim);
Tensor log_softmax_backward(const Tensor& g, const Tensor& y, int64_t dim);
Tensor permute_backward(const Tensor& g, const Dims& dims);
Tensor slice_backward(const Tensor& g, const Dims& shape, DType dt, Device dev, const ops::SliceAttrs& a);
Tensor select_backward(const Tensor& g, const Dims& shape, DType dt, Device dev, int64_t dim, int64_t index);
Tensor as_strided_backward(const Tensor& g, const Tensor& x, const ops::AsStridedAttrs& a);
std::vector<Tensor> concat_backward(const Tensor& g, const std::vector<Dims>& shapes, int64_t dim, size_t first);
std::vector<Tensor> stack_backward(const Tensor& g, size_t n, int64_t dim);
Tensor gather_backward(const Tensor& g, const Dims& shape, DType dt, Device dev, const Tensor& index, int64_t dim);
Tensor index_select_backward(const Tensor& g, const Dims& shape, DType dt, Device dev, const Tensor& index, int64_t dim);
Tensor take_along_dim_backward(const Tensor& g, const Dims& shape, DType dt, Device dev, const Tensor& indices,
                               const std::optional<int64_t>& dim);
Tensor index_backward(const Tensor& g, const Dims& shape, DType dt, Device dev, const std::vector<Tensor>& indices);
Tensor pad_backward(const Tensor& g, const Dims& shape, const ops::PadAttrs& a);
Tensor sort_backward(const Tensor& g, const Dims& shape, DType dt, Device dev, const Tensor& indices, int64_t dim);
Tensor scatter_backward_input(const Tensor& g, const Tensor& index, const ops::ScatterAttrs& a);
Tensor as_strided_backward(const Tensor& g, const Tensor& x, const ops::AsStridedAttrs& a);
Tensor roll_backward(const Tensor& g, const ops::RollAttrs& a);
// einsum: each operand's gradient is an einsum of grad with the other operands (core/ops/impl/einsum.cpp).
std::vector<Tensor> einsum_backward(const Tensor& g, const std::vector<Tensor>& operands, const std::string& equation,
                                    const std::function<bool(size_t)>& needs);
[[noreturn]] void not_differentiable(const char* op, const char* why);

// Recurrent layers (ops_rnn.yaml): the gradients of rnn / lstm / gru (mode) for every flat input
// (input, hx, [cx for lstm], lengths, params...) and of the cells (input, hx, [cx], w_ih, w_hh,
// b_ih, b_hh), through rnn_backward.
std::vector<Tensor> rnn_sequence_grad(const std::string& mode, const Tensor& input, const Tensor& hx, const Tensor& cx,
                                      const Tensor& lengths, const std::vector<Tensor>& params, const Tensor& reserve,
                                      const Tensor& grad_output, const Tensor& grad_hn, const Tensor& grad_cn, int64_t hidden_size,
                                      int64_t num_layers, const std::string& nonlinearity, bool bias, bool batch_first,
                                      double dropout, bool training, bool bidirectional, int64_t proj_size);
std::vector<Tensor> rnn_cell_grad(const std::string& mode, const Tensor& input, const Tensor& hx, const Tensor& cx, const Tensor& w_ih,
                                  const Tensor& w_hh, const Tensor& b_ih, const Tensor& b_hh, const Tensor& reserve,
                                  const Tensor& grad_h, const Tensor& grad_c, const std::string& nonlinearity);

}  // namespace autograd
}  // namespace heron
