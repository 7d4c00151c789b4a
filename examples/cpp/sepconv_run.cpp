// sepconv_run: runs a TorchScript model that uses torch.ops.sepconv.* from C++, with no Python
// in the process, forward and one backward pass.
//
//   sepconv_run MODEL.pt INPUT.pt OUTPUT.pt INPUT_GRAD.pt [PARAM_GRADS.pt]
//
// MODEL.pt is a torch.jit.script(...).save(...) file. INPUT.pt holds one tensor written by
// Python's torch.save (strides, so channels_last, are kept). The program writes the model's
// output, then runs output.sum().backward() and writes d(sum)/d(input) and, if asked, the
// parameters' gradients as ((name, gradient), ...); Python reads them back with torch.load.
#include <torch/script.h>

#include <ATen/core/dispatch/Dispatcher.h>

#include <cstdio>
#include <exception>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

std::vector<char> read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open '" + path + "' for reading");
  return std::vector<char>(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void write_file(const std::string& path, const std::vector<char>& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("cannot write '" + path + "'");
}

// torch.save / torch.load use the same zip + pickle format as torch::jit::pickle_save/_load.
at::Tensor load_tensor(const std::string& path) {
  c10::IValue value = torch::jit::pickle_load(read_file(path));
  if (!value.isTensor()) {
    throw std::runtime_error("'" + path + "' holds a " + value.tagKind() +
                             ", expected one tensor (torch.save(tensor, path))");
  }
  return value.toTensor();
}

void save(const c10::IValue& value, const std::string& path) {
  write_file(path, torch::jit::pickle_save(value));
}

// The ops register when libsepconv_ops is loaded; if the linker dropped the library, say so
// instead of failing later with "unknown builtin op" while loading the model.
void require_sepconv_ops() {
  if (!c10::Dispatcher::singleton().findSchema({"sepconv::depthwise_conv2d", ""})) {
    throw std::runtime_error(
        "torch.ops.sepconv.* are not registered: libsepconv_ops was not loaded. Link the "
        "program with SepconvExt::sepconv_ops (which keeps the library under --as-needed).");
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5 && argc != 6) {
    std::fprintf(stderr, "usage: %s MODEL.pt INPUT.pt OUTPUT.pt INPUT_GRAD.pt [PARAM_GRADS.pt]\n",
                 argv[0]);
    return 2;
  }
  try {
    require_sepconv_ops();
    torch::jit::Module model = torch::jit::load(argv[1]);

    at::Tensor input = load_tensor(argv[2]).detach().requires_grad_(true);
    at::Tensor output = model.forward({input}).toTensor();
    save(output.detach(), argv[3]);

    output.sum().backward();
    if (!input.grad().defined()) throw std::runtime_error("backward produced no input gradient");
    save(input.grad(), argv[4]);

    if (argc == 6) {
      // A tuple of (name, gradient) pairs: unlike a typed Dict it needs no TorchScript type
      // tags, so torch.load's default weights_only=True reads it; dict(...) of it in Python.
      std::vector<c10::IValue> grads;
      for (const auto& param : model.named_parameters()) {
        at::Tensor grad = param.value.grad();
        grads.emplace_back(c10::ivalue::Tuple::create(
            {param.name, grad.defined() ? grad : at::zeros_like(param.value)}));
      }
      save(c10::ivalue::Tuple::create(std::move(grads)), argv[5]);
    }

    std::printf("output %s, input grad %s\n", c10::str(output.sizes()).c_str(),
                c10::str(input.grad().sizes()).c_str());
    return 0;
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "sepconv_run: %s\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "sepconv_run: %s\n", e.what());
    return 1;
  }
}
