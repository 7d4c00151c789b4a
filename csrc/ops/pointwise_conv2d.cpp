// Schemas of the pointwise (1x1) ops. The input gradient is pointwise_conv2d itself with the
// transposed weight, so only the weight gradient needs a backward op.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(sepconv, m) {
  m.def("pointwise_conv2d(Tensor input, Tensor weight, Tensor? bias=None) -> Tensor");
  // Returns (Cout, Cin), summed over the batch.
  m.def("_pointwise_conv2d_backward_weight(Tensor grad_output, Tensor input) -> Tensor");
}
