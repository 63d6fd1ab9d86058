// Test kernels for the emulated device that synchronise threads: shared memory + __syncthreads,
// warp shuffles and votes, dynamic shared memory. The host build runs their threads as fibers.
// Compiled by nvcc (fatbin) and by emulator/build.sh (host).

__device__ float warp_sum(float v) {
  for (int offset = 16; offset > 0; offset /= 2) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

// Sum of x[0..n) into *out: grid-stride loads, a shared-memory tree down to one warp, a shuffle
// reduction in that warp, one atomicAdd per block. blockDim.x must be a power of two >= 64.
extern "C" __global__ void emu_block_sum(const float* x, int n, float* out) {
  __shared__ float partial[1024];
  float acc = 0.0f;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) acc += x[i];
  partial[threadIdx.x] = acc;
  __syncthreads();
  for (int s = blockDim.x / 2; s >= 32; s /= 2) {
    if (threadIdx.x < s) partial[threadIdx.x] += partial[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x < 32) {
    float v = warp_sum(partial[threadIdx.x]);
    if (threadIdx.x == 0) atomicAdd(out, v);
  }
}

// Reverses each block's slice of `in` through dynamic shared memory (size: blockDim.x ints):
// out[i] = in[j] with j mirrored inside the block, where both i and j are below n.
extern "C" __global__ void emu_dyn_reverse(const int* in, int* out, int n) {
  extern __shared__ int tile[];
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) tile[threadIdx.x] = in[i];
  __syncthreads();
  int j = blockIdx.x * blockDim.x + (blockDim.x - 1 - threadIdx.x);
  if (i < n && j < n) out[i] = tile[blockDim.x - 1 - threadIdx.x];
}

// Two dynamic shared arrays carved from one extern buffer (float then int), aligned declaration.
extern "C" __global__ void emu_dyn_two(const float* in, float* out, int n) {
  extern __shared__ __align__(16) unsigned char smem[];
  float* f = reinterpret_cast<float*>(smem);
  int* k = reinterpret_cast<int*>(smem + blockDim.x * sizeof(float));
  int t = threadIdx.x;
  f[t] = t < n ? in[t] : 0.0f;
  k[t] = t * 3;
  __syncthreads();
  if (t < n) out[t] = f[(t + 1) % blockDim.x] + (float)k[blockDim.x - 1 - t];
}

// Warp shuffles and votes; 8 results per thread: xor-butterfly sum, broadcast from lane 5,
// up by 1, down by 3 with width 16, ballot of odd values, any(v > 60), all(v >= 0),
// __syncthreads_count(v even).
extern "C" __global__ void emu_warp_ops(const int* in, int* out) {
  int t = blockIdx.x * blockDim.x + threadIdx.x;
  int v = in[t];
  int s = v;
  for (int m = 16; m > 0; m >>= 1) s += __shfl_xor_sync(0xffffffffu, s, m);
  int* o = out + 8 * t;
  o[0] = s;
  o[1] = __shfl_sync(0xffffffffu, v, 5);
  o[2] = __shfl_up_sync(0xffffffffu, v, 1);
  o[3] = __shfl_down_sync(0xffffffffu, v, 3, 16);
  o[4] = (int)__ballot_sync(0xffffffffu, v & 1);
  o[5] = __any_sync(0xffffffffu, v > 60);
  o[6] = __all_sync(0xffffffffu, v >= 0);
  o[7] = __syncthreads_count((v & 1) == 0);
}

// Block-wide inclusive scan in shared memory (Hillis-Steele, double-buffered), then a per-block
// histogram of (value % 8) with shared-memory atomics.
extern "C" __global__ void emu_scan_hist(const int* in, int* scan, int* hist) {
  __shared__ int buf[2][256];
  __shared__ int bins[8];
  int t = threadIdx.x;
  int g = blockIdx.x * blockDim.x + t;
  if (t < 8) bins[t] = 0;
  buf[0][t] = in[g];
  __syncthreads();
  int src = 0;
  for (int off = 1; off < blockDim.x; off *= 2) {
    buf[1 - src][t] = buf[src][t] + (t >= off ? buf[src][t - off] : 0);
    src = 1 - src;
    __syncthreads();
  }
  scan[g] = buf[src][t];
  atomicAdd(&bins[in[g] % 8], 1);
  __syncthreads();
  if (t < 8) hist[blockIdx.x * 8 + t] = bins[t];
}

// Reads shared memory before any thread wrote it: the result is undefined on the device, and the
// emulator fills shared memory with 0xFF bytes so that such a read is visible (NaN / -1).
extern "C" __global__ void emu_uninit_shared(int* out) {
  __shared__ int s[64];
  out[threadIdx.x] = s[threadIdx.x];
  __syncthreads();
}
