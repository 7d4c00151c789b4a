// What the autograd kernels keep in their AutogradContext besides tensors, saved and read back
// one way by every op: which tensor arguments have autograd edges, and the conv geometry.
//
// AutogradContext::needs_input_grad(i) indexes the tensor arguments that were actually passed:
// an optional tensor given as None has no autograd edge and shifts every later index. ArgEdges
// maps a forward argument's position to its edge, so backward can ask about arguments by position.
#pragma once
#include <torch/autograd.h>

#include <initializer_list>
#include <optional>
#include <vector>

namespace sepconv {

inline bool is_given(const std::optional<at::Tensor>& t) { return t.has_value() && t->defined(); }

// Call in forward with one flag per tensor argument (in order): was it passed?
inline void save_arg_edges(torch::autograd::AutogradContext* ctx,
                           std::initializer_list<bool> given) {
  std::vector<int64_t> edges;
  int64_t next = 0;
  for (bool g : given) edges.push_back(g ? next++ : -1);
  ctx->saved_data["arg_edges"] = edges;
}

// Call in backward: does tensor argument `arg` (its position among the tensor arguments) need a
// gradient?
inline bool needs_grad(torch::autograd::AutogradContext* ctx, size_t arg) {
  const auto edges = ctx->saved_data["arg_edges"].toIntVector();
  return edges.at(arg) >= 0 && ctx->needs_input_grad(edges[arg]);
}

// stride, padding and dilation of a conv op, saved in forward and read back in backward.
inline void save_geometry(torch::autograd::AutogradContext* ctx, at::IntArrayRef stride,
                          at::IntArrayRef padding, at::IntArrayRef dilation) {
  ctx->saved_data["stride"] = stride;
  ctx->saved_data["padding"] = padding;
  ctx->saved_data["dilation"] = dilation;
}

struct SavedGeometry {
  std::vector<int64_t> stride, padding, dilation;
  explicit SavedGeometry(torch::autograd::AutogradContext* ctx)
      : stride(ctx->saved_data["stride"].toIntVector()),
        padding(ctx->saved_data["padding"].toIntVector()),
        dilation(ctx->saved_data["dilation"].toIntVector()) {}
};

}  // namespace sepconv
