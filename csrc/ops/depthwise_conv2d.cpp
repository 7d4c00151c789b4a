// Schemas of the depthwise ops. padding is (top, bottom, left, right) so 'same' with an even
// kernel needs no padded copy of the input. The backward ops are private (leading underscore)
// but are real, differentiable ops: the forward's backward is written in terms of them, which
// is what makes double backward work from Python, TorchScript and C++ alike.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(sepconv, m) {
  m.def(
      "depthwise_conv2d(Tensor input, Tensor weight, Tensor? bias=None, int[2] stride=1, "
      "int[4] padding=0, int[2] dilation=1) -> Tensor");
  m.def(
      "_depthwise_conv2d_backward_input(Tensor grad_output, Tensor weight, SymInt[4] input_size, "
      "int[2] stride, int[4] padding, int[2] dilation) -> Tensor");
  m.def(
      "_depthwise_conv2d_backward_weight(Tensor grad_output, Tensor input, int[2] kernel_size, "
      "int[2] stride, int[4] padding, int[2] dilation) -> Tensor");
}
