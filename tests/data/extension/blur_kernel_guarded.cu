torch::Tensor blur_cuda(torch::Tensor x) {
  const at::cuda::OptionalCUDAGuard guard(device_of(x));
  return x;
}
