// AutogradContext::needs_input_grad(i) indexes the tensor arguments that were actually passed:
// an optional tensor given as None has no autograd edge and shifts every later index. ArgEdges
// maps a forward argument's position to its edge, so backward can ask about arguments by position.
#pragma once
#include <torch/autograd.h>

#include <initializer_list>
#include <optional>

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

}  // namespace sepconv
