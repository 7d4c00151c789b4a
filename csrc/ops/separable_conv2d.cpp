// Schemas of the separable op: pointwise_conv2d(depthwise_conv2d(input, ...), ...) as one op, so
// a backend can fuse the two and never write the intermediate tensor out whole, and of its
// backward, fused the same way.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(sepconv, m) {
  m.def(
      "separable_conv2d(Tensor input, Tensor depthwise_weight, Tensor pointwise_weight, "
      "Tensor? depthwise_bias=None, Tensor? pointwise_bias=None, int[2] stride=1, "
      "int[4] padding=0, int[2] dilation=1) -> Tensor");
  // Gradients of separable_conv2d (all but the pointwise bias's, a plain sum of grad_output):
  // output_mask picks (grad_input, the depthwise weight and bias grads, the pointwise weight
  // grad); one not asked for is returned as an empty tensor. Not differentiable itself: the
  // autograd kernel calls it only where no graph of the backward is recorded.
  m.def(
      "_separable_conv2d_backward(Tensor grad_output, Tensor input, Tensor depthwise_weight, "
      "Tensor pointwise_weight, Tensor? depthwise_bias, int[2] stride, int[4] padding, "
      "int[2] dilation, bool[3] output_mask) -> (Tensor, Tensor, Tensor, Tensor)");
}
