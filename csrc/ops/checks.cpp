#include "checks.h"

#include <cmath>
#include <string>

#include <c10/core/SymBool.h>
#include <c10/util/Exception.h>

namespace sepconv {
namespace {

bool is_supported_dtype(const at::Tensor& t) {
  const auto dt = t.scalar_type();
  if (dt == at::kFloat || dt == at::kDouble) return true;
  // Half and bfloat16 are CUDA-only (accumulated in float32); meta tensors stand in for either.
  const bool reduced = dt == at::kHalf || dt == at::kBFloat16;
  return reduced && (t.is_cuda() || t.is_meta());
}

void check_dtype(const char* op, const char* name, const at::Tensor& t) {
  TORCH_CHECK_TYPE(is_supported_dtype(t), op, ": expected ", name,
                   " to be float32 or float64 (or float16/bfloat16 on CUDA), got ", t.scalar_type(),
                   " on ", t.device());
}

// `t` must share dtype and device with the reference tensor `ref` (no silent casts or copies).
void check_same(const char* op, const char* name, const at::Tensor& t, const char* ref_name,
                const at::Tensor& ref) {
  TORCH_CHECK_TYPE(t.scalar_type() == ref.scalar_type(), op, ": expected ", name,
                   " to have the same dtype as ", ref_name, " (", ref.scalar_type(), "), got ",
                   t.scalar_type());
  TORCH_CHECK(t.device() == ref.device(), op, ": expected ", name, " on the same device as ",
              ref_name, " (", ref.device(), "), got ", t.device());
}

void check_rank4(const char* op, const char* name, const at::Tensor& t, const char* layout) {
  TORCH_CHECK_VALUE(t.dim() == 4, op, ": expected ", name, " of shape ", layout, ", got a ",
                    t.dim(), "-D tensor of shape ", t.sym_sizes());
}

void check_bias(const char* op, const char* name, const std::optional<at::Tensor>& bias,
                const at::Tensor& input, const c10::SymInt& out_channels) {
  if (!bias.has_value() || !bias->defined()) return;
  check_same(op, name, *bias, "input", input);
  TORCH_CHECK_VALUE(bias->dim() == 1 && bias->sym_size(0) == out_channels, op, ": expected ", name,
                    " of shape (", out_channels, ",), got ", bias->sym_sizes());
}

// Output length along one spatial dim; the dilated kernel must fit in the padded input.
c10::SymInt output_length(const char* op, const char* dim, const c10::SymInt& in, int64_t kernel,
                          int64_t stride, int64_t pad_begin, int64_t pad_end, int64_t dilation) {
  const c10::SymInt padded = in + pad_begin + pad_end;
  const int64_t span = dilation * (kernel - 1) + 1;
  TORCH_SYM_CHECK(padded.sym_ge(span), op, ": input ", dim, " after padding is ", padded,
                  " but the dilated kernel spans ", span,
                  " (kernel size can't be greater than the padded input size)");
  return (padded - span) / stride + 1;
}

// Shape rules of a depthwise conv on sizes alone, so the backward ops can check the forward
// they differentiate without building tensors.
std::vector<c10::SymInt> depthwise_output_size(const char* op, c10::SymIntArrayRef input,
                                               c10::SymIntArrayRef weight, const ConvGeometry& g,
                                               const char* weight_name = "weight") {
  const c10::SymInt& channels = input[1];
  TORCH_SYM_CHECK(channels.sym_ge(1), op, ": expected input with at least one channel, got shape ",
                  input);
  TORCH_CHECK_VALUE(weight.size() == 4, op, ": expected ", weight_name,
                    " of shape (C * multiplier, 1, kH, kW), got ", weight);
  TORCH_SYM_CHECK(
      weight[1].sym_eq(1) & weight[0].sym_ge(channels) & (weight[0] % channels).sym_eq(0), op,
      ": expected ", weight_name, " of shape (C * multiplier, 1, kH, kW) with C = ", channels,
      " input channels, got ", weight);
  TORCH_SYM_CHECK(weight[2].sym_ge(1) & weight[3].sym_ge(1), op,
                  ": expected a kernel of at least 1x1, got ", weight_name, " of shape ", weight);
  const int64_t kh = weight[2].guard_int(__FILE__, __LINE__);
  const int64_t kw = weight[3].guard_int(__FILE__, __LINE__);
  return {
      input[0], weight[0],
      output_length(op, "height", input[2], kh, g.stride_h, g.pad_top, g.pad_bottom, g.dilation_h),
      output_length(op, "width", input[3], kw, g.stride_w, g.pad_left, g.pad_right, g.dilation_w)};
}

void check_grad_output_size(const char* op, const at::Tensor& grad_output,
                            const std::vector<c10::SymInt>& expected) {
  bool same = grad_output.dim() == 4;
  for (int d = 0; same && d < 4; ++d)
    same = grad_output.sym_size(d).sym_eq(expected[d]).guard_bool(__FILE__, __LINE__);
  TORCH_CHECK_VALUE(same, op, ": expected grad_output of shape ", c10::SymIntArrayRef(expected),
                    ", got ", grad_output.sym_sizes());
}

// Pointwise weight (Cout, Cin, 1, 1) or (Cout, Cin) applied to `in_channels` channels.
void check_pointwise_weight(const char* op, const char* name, const at::Tensor& weight,
                            const c10::SymInt& in_channels, const at::Tensor& input) {
  check_same(op, name, weight, "input", input);
  const bool shape_ok = weight.dim() == 2 ||
                        (weight.dim() == 4 && weight.sym_size(2) == 1 && weight.sym_size(3) == 1);
  TORCH_CHECK_VALUE(shape_ok, op, ": expected ", name,
                    " of shape (Cout, Cin, 1, 1) or (Cout, Cin), got ", weight.sym_sizes());
  TORCH_SYM_CHECK(weight.sym_size(1).sym_eq(in_channels), op, ": expected ", name,
                  " with Cin = ", in_channels, " (the channels it is applied to), got shape ",
                  weight.sym_sizes());
}

}  // namespace

ConvGeometry check_geometry(const char* op, at::IntArrayRef stride, at::IntArrayRef padding,
                            at::IntArrayRef dilation) {
  TORCH_CHECK_VALUE(stride.size() == 2 && stride[0] >= 1 && stride[1] >= 1, op,
                    ": expected stride to be two integers >= 1, got ", stride);
  TORCH_CHECK_VALUE(
      padding.size() == 4 && padding[0] >= 0 && padding[1] >= 0 && padding[2] >= 0 &&
          padding[3] >= 0,
      op, ": expected padding to be four integers >= 0 (top, bottom, left, right), got ", padding);
  TORCH_CHECK_VALUE(dilation.size() == 2 && dilation[0] >= 1 && dilation[1] >= 1, op,
                    ": expected dilation to be two integers >= 1, got ", dilation);
  return {stride[0],  stride[1],  padding[0],  padding[1],
          padding[2], padding[3], dilation[0], dilation[1]};
}

std::vector<c10::SymInt> check_depthwise_forward(const char* op, const at::Tensor& input,
                                                 const at::Tensor& weight,
                                                 const std::optional<at::Tensor>& bias,
                                                 const ConvGeometry& g) {
  check_rank4(op, "input", input, "(N, C, H, W)");
  check_dtype(op, "input", input);
  check_same(op, "weight", weight, "input", input);
  auto out = depthwise_output_size(op, input.sym_sizes(), weight.sym_sizes(), g);
  check_bias(op, "bias", bias, input, out[1]);
  return out;
}

std::vector<c10::SymInt> check_pointwise_forward(const char* op, const at::Tensor& input,
                                                 const at::Tensor& weight,
                                                 const std::optional<at::Tensor>& bias) {
  check_rank4(op, "input", input, "(N, C, H, W)");
  check_dtype(op, "input", input);
  check_pointwise_weight(op, "weight", weight, input.sym_size(1), input);
  check_bias(op, "bias", bias, input, weight.sym_size(0));
  return {input.sym_size(0), weight.sym_size(0), input.sym_size(2), input.sym_size(3)};
}

std::vector<c10::SymInt> check_separable_forward(const char* op, const at::Tensor& input,
                                                 const at::Tensor& depthwise_weight,
                                                 const at::Tensor& pointwise_weight,
                                                 const std::optional<at::Tensor>& depthwise_bias,
                                                 const std::optional<at::Tensor>& pointwise_bias,
                                                 const ConvGeometry& g) {
  check_rank4(op, "input", input, "(N, C, H, W)");
  check_dtype(op, "input", input);
  check_same(op, "depthwise_weight", depthwise_weight, "input", input);
  auto out = depthwise_output_size(op, input.sym_sizes(), depthwise_weight.sym_sizes(), g,
                                   "depthwise_weight");
  check_bias(op, "depthwise_bias", depthwise_bias, input, out[1]);
  check_pointwise_weight(op, "pointwise_weight", pointwise_weight, out[1], input);
  out[1] = pointwise_weight.sym_size(0);
  check_bias(op, "pointwise_bias", pointwise_bias, input, out[1]);
  return out;
}

void check_depthwise_backward_input(const char* op, const at::Tensor& grad_output,
                                    const at::Tensor& weight, c10::SymIntArrayRef input_size,
                                    const ConvGeometry& g) {
  TORCH_CHECK_VALUE(input_size.size() == 4, op, ": expected input_size of 4 values, got ",
                    input_size);
  check_dtype(op, "grad_output", grad_output);
  check_same(op, "weight", weight, "grad_output", grad_output);
  check_grad_output_size(op, grad_output,
                         depthwise_output_size(op, input_size, weight.sym_sizes(), g));
}

void check_depthwise_backward_weight(const char* op, const at::Tensor& grad_output,
                                     const at::Tensor& input, at::IntArrayRef kernel_size,
                                     const ConvGeometry& g) {
  TORCH_CHECK_VALUE(kernel_size.size() == 2 && kernel_size[0] >= 1 && kernel_size[1] >= 1, op,
                    ": expected kernel_size to be two integers >= 1, got ", kernel_size);
  check_rank4(op, "input", input, "(N, C, H, W)");
  check_dtype(op, "input", input);
  check_rank4(op, "grad_output", grad_output, "(N, C * multiplier, Ho, Wo)");
  check_same(op, "grad_output", grad_output, "input", input);
  const std::vector<c10::SymInt> weight_size = {grad_output.sym_size(1), 1, kernel_size[0],
                                                kernel_size[1]};
  check_grad_output_size(op, grad_output,
                         depthwise_output_size(op, input.sym_sizes(), weight_size, g));
}

void check_pointwise_backward_weight(const char* op, const at::Tensor& grad_output,
                                     const at::Tensor& input) {
  check_rank4(op, "input", input, "(N, Cin, H, W)");
  check_dtype(op, "input", input);
  check_rank4(op, "grad_output", grad_output, "(N, Cout, H, W)");
  check_same(op, "grad_output", grad_output, "input", input);
  for (int d : {0, 2, 3})
    TORCH_SYM_CHECK(grad_output.sym_size(d).sym_eq(input.sym_size(d)), op,
                    ": expected grad_output of shape (N, Cout, H, W) matching input ",
                    input.sym_sizes(), ", got ", grad_output.sym_sizes());
}

void check_separable_backward(const char* op, const at::Tensor& grad_output,
                              const at::Tensor& input, const at::Tensor& depthwise_weight,
                              const at::Tensor& pointwise_weight,
                              const std::optional<at::Tensor>& depthwise_bias,
                              const ConvGeometry& g) {
  const auto out = check_separable_forward(op, input, depthwise_weight, pointwise_weight,
                                           depthwise_bias, std::nullopt, g);
  check_dtype(op, "grad_output", grad_output);
  check_same(op, "grad_output", grad_output, "input", input);
  check_grad_output_size(op, grad_output, out);
}

at::MemoryFormat output_memory_format(const at::Tensor& like) {
  return like.suggest_memory_format() == at::MemoryFormat::ChannelsLast
             ? at::MemoryFormat::ChannelsLast
             : at::MemoryFormat::Contiguous;
}

namespace {
constexpr const char* kActivationNames[] = {"none",        "relu",    "hardtanh", "hardswish",
                                            "hardsigmoid", "sigmoid", "silu",     "gelu"};
}  // namespace

const char* activation_name(cpu::Activation::Kind kind) { return kActivationNames[kind]; }

cpu::Activation check_activation(const char* op, std::string_view activation, double min_val,
                                 double max_val) {
  cpu::Activation a;
  constexpr int kinds = sizeof(kActivationNames) / sizeof(kActivationNames[0]);
  int kind = 0;
  while (kind < kinds && activation != kActivationNames[kind]) ++kind;
  TORCH_CHECK_VALUE(kind < kinds, op,
                    ": expected activation 'none', 'relu', 'hardtanh', 'hardswish', "
                    "'hardsigmoid', 'sigmoid', 'silu' or 'gelu', got '",
                    std::string(activation), "'");
  a.kind = static_cast<cpu::Activation::Kind>(kind);
  if (a.kind == cpu::Activation::kHardtanh) {
    TORCH_CHECK_VALUE(std::isfinite(min_val) && std::isfinite(max_val) && min_val <= max_val, op,
                      ": expected hardtanh bounds min_val <= max_val, both finite, got min_val=",
                      min_val, ", max_val=", max_val);
    a.min_val = min_val, a.max_val = max_val;
  }
  return a;
}

}  // namespace sepconv
