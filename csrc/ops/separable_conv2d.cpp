// Schema of the separable op: pointwise_conv2d(depthwise_conv2d(input, ...), ...) as one op, so
// a backend can fuse the two and never write the intermediate tensor out whole.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(sepconv, m) {
  m.def(
      "separable_conv2d(Tensor input, Tensor depthwise_weight, Tensor pointwise_weight, "
      "Tensor? depthwise_bias=None, Tensor? pointwise_bias=None, int[2] stride=1, "
      "int[4] padding=0, int[2] dilation=1) -> Tensor");
}
