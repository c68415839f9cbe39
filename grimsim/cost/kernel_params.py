"""Constants of the analytical model that are neither in a device profile nor in the kernels.

Three kinds, each with its source in ``SOURCES``:

* microarchitecture facts the profiles do not carry (FMA latency, load ports, cache-port
  widths), from vendor optimisation guides and instruction tables;
* cycle counts of the kernels' scalar and transform loops, counted from the C++ code
  (``cpp_kernels/src``), so they describe grimsim's own engine;
* per-kernel efficiencies (the share of the cycle model a kernel reaches), measured on the
  development machine with ``benchmarks/analytical_sanity.py`` (AMD EPYC Zen 3 VM, AVX2, 2
  cores). They are the uncalibrated model's only fitted numbers; a device calibration
  (``grimsim calibrate``/``fit``) corrects what they miss on other devices.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

#: Kernel names the CPU model reports (``EstimateBatch.kernel``), in code order.
CPU_KERNELS = ("gemm", "gemv", "im2col+gemm", "winograd", "depthwise", "bcr", "csr", "nm",
               "pattern", "eltwise")

# Measured on the dev VM (benchmarks/analytical_sanity.py, recorded in
# benchmarks/analytical_sanity.md): the share of the cycle model each kernel family reaches,
# single-threaded, warm caches, rounded; the VM was shared and loaded, so the long runs
# (> 5 ms) were discounted.
_EFFICIENCY = MappingProxyType({
    "gemm": 0.85,
    "gemv": 0.85,
    "im2col+gemm": 0.85,
    "winograd": 0.80,
    "depthwise": 0.40,
    "bcr": 0.95,  # with its explicit pass and tile costs; refitted for the K-chunked panels
    "csr": 0.75,
    "nm": 0.35,
    "pattern": 0.45,
    "eltwise": 0.85,  # assumed like gemm; _CHEAP_CYCLES_PER_VALUE holds the measured rest
})

# Fixed cost of one kernel call (argument checks, scratch allocation, dispatch), in cycles of
# the calling core; measured as the time of tiny problems on the dev VM. The sparse kernels'
# from benchmarks/call_overhead.py on the Zen 4 host (2026-11-28): intercepts of 550-1670
# cycles over two runs, of which the model charges the tiles', blocks' and rows' own set-up
# separately. The 3000 measured before on the Zen 3 VM made the model 2x too slow on calls
# under a microsecond, which held-out calibration shapes showed.
_CALL_CYCLES = MappingProxyType({
    "gemm": 3000.0,
    "gemv": 1500.0,
    "im2col+gemm": 4000.0,
    "winograd": 6000.0,
    "depthwise": 2000.0,
    "bcr": 1000.0,
    "csr": 1000.0,
    "nm": 1000.0,
    "pattern": 1000.0,
    "eltwise": 3000.0,
})


# Bytes per cycle one core streams from the last-level cache, by core type ("default" for the
# others); see SOURCES["llc_bytes_per_cycle"].
_LLC_BPC = MappingProxyType({"default": 16.0, "zen3": 24.0})


# Per op kind, the cycles per output value a cheap-op kernel spends beyond its traffic and
# its vectorised element-wise ops (model cycles, before the eltwise efficiency): gathers
# (resize, transposing permutes), exp/log per value (softmax, LRN, activations), window
# reductions over short rows (pooling), several passes (layer norm), a plane per output
# (spatial reduce, about 30 cycles of per-plane work). Fitted on the dev VM
# with benchmarks/cheap_ops.py: every non-GEMM layer of ncnn's 27 benchmark networks, each
# value chosen so the op's median measured / predicted is 1 (recorded in
# benchmarks/cheap_ops.md).
_CHEAP_CYCLES_PER_VALUE = MappingProxyType({
    "pool": 2.2, "global_pool": 1.6, "reduce": 30.0, "softmax": 3.4, "lrn": 3.4, "resize": 1.0,
    "layernorm": 0.54, "permute": 0.51, "pad": 0.46, "concat": 0.23, "slice": 0.22,
    "split": 0.22, "eltwise": 0.18, "activation": 0.13,
})


@dataclass(frozen=True)
class KernelParams:
    """Every constant of the analytical CPU and GPU models (see ``SOURCES`` per field)."""

    fma_latency_cycles: float = 4.0
    loads_per_cycle_ooo: float = 2.0
    loads_per_cycle_in_order: float = 1.0
    l2_bytes_per_cycle_ooo: float = 32.0
    l2_bytes_per_cycle_in_order: float = 16.0
    llc_bytes_per_cycle: Mapping[str, float] = field(default_factory=lambda: _LLC_BPC)
    scalar_copy_cycles: float = 1.0
    deinterleave_copy_cycles: float = 4.5
    pack_a_cycles: float = 1.0
    im2col_cycles: float = 2.0
    im2col_copy_cycles: float = 1.1
    im2col_gather_cycles: float = 2.6
    winograd_input_cycles: float = 96.0
    winograd_output_cycles: float = 64.0
    depthwise_vector_cycles: float = 0.5625
    depthwise_block_cycles: float = 24.0
    depthwise_plane_cycles: float = 150.0
    row_overhead_cycles: float = 6.0
    block_overhead_cycles: float = 20.0
    bcr_tile_cycles: float = 10.0
    y_vector_cycles: float = 2.0
    narrow_tile_cycles: float = 8.0
    narrow_expand_cycles: float = 3.0
    narrow_expand16_cycles: float = 0.5
    fold_tile_cycles: float = 24.0
    split_load_cycles: float = 0.5
    nm_group_cycles: float = 1.0
    pattern_kernel_cycles: float = 2.0
    cheap_ops_per_lane_cycle: float = 1.0
    cheap_cycles_per_value: Mapping[str, float] = field(
        default_factory=lambda: _CHEAP_CYCLES_PER_VALUE)
    transcendental_cycles: float = 8.0
    transcendental_cycles_avx512: float = 1.2
    python_kernel_call_cycles: float = 3500.0
    numpy_call_cycles: float = 2300.0
    recurrent_numpy_calls: Mapping[str, int] = field(
        default_factory=lambda: MappingProxyType({"gru": 12, "lstm": 14}))
    overlap_penalty: float = 0.2
    dram_write_allocate: float = 2.0
    band: tuple[float, float] = (0.5, 2.0)
    efficiency: Mapping[str, float] = field(default_factory=lambda: _EFFICIENCY)
    call_cycles: Mapping[str, float] = field(default_factory=lambda: _CALL_CYCLES)
    narrow_call_cycles: float = 300.0
    im2col_call_cycles: float = 7000.0
    im2col_reused_copy_cycles: float = 0.2
    im2col_row_cycles: float = 15.0
    im2col_stride2_cycles: float = 0.6
    # GPU
    gpu_workgroup_tile: int = 32
    gpu_workgroups_per_core: int = 4
    gpu_alus_per_core: int = 64
    gpu_efficiency: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({
        "gemm": 0.5, "bcr": 0.3, "csr": 0.1, "nm": 0.25, "pattern": 0.3, "eltwise": 0.5}))
    gpu_band: tuple[float, float] = (0.2, 5.0)


DEFAULT_PARAMS = KernelParams()

SOURCES: Mapping[str, str] = MappingProxyType({
    "fma_latency_cycles": "Agner Fog, instruction tables (Zen 3: VFMADD 256-bit latency 4); Arm "
    "Cortex-A76/A78/X1 Software Optimization Guides (FMLA vector latency 4); Cortex-A55 SWOG "
    "(FMLA latency 4)",
    "loads_per_cycle_ooo": "Zen 3: two 256-bit loads per cycle (AMD Software Optimization "
    "Guide for Family 19h, 2.11); Cortex-A76 SWOG: two load pipelines",
    "loads_per_cycle_in_order": "Cortex-A55 SWOG: one load pipeline",
    "l2_bytes_per_cycle_ooo": "Zen 3 L2->L1 32 B/cycle (AMD Family 19h SOG); Cortex-A76 L2 "
    "64 B/cycle read interface (Arm TRM) of which a streaming kernel sees about half; measured "
    "30 B/cycle on the dev VM (measure_read_bandwidth, 256 KiB buffer)",
    "l2_bytes_per_cycle_in_order": "Cortex-A55 TRM: 128-bit L1-L2 read path = 16 B/cycle",
    "llc_bytes_per_cycle": "per-core last-level-cache stream: Arm DSU-class L3 about 16 "
    "B/cycle (assumed, default); Zen 3 measured 24 B/cycle on the dev VM "
    "(measure_read_bandwidth, 4 MiB buffer, 78 GB/s at 3.22 GHz)",
    "scalar_copy_cycles": "counted: the scalar gather/scatter loops (Winograd tile gather and "
    "output scatter, GEMM edge tiles) move one float per load+store pair (1 store/cycle)",
    "deinterleave_copy_cycles": "a stride-2 copy (depthwise phase planes) per output "
    "vector: counted two loads, one two-source permute (vpermt2ps; NEON's vld2 de-interleaves "
    "in the load) and one store, ~2 cycles; measured 4.3-5.1 on the dev VM (2026-11-28, "
    "bench_depthwise 3x3 stride 2 on 96x112x112 and 144x56x56, the rest of the plane as "
    "modelled): the loads of the fresh phase rows wait on their stores; 4.5 taken",
    "pack_a_cycles": "counted: pack_a_panel transposes W with strided scalar loads, 1 float per "
    "store",
    "im2col_cycles": "im2col at strides over 2 (conv.cpp: one strided load and store per "
    "float, index "
    "math): measured 2.4-3.0 cycles/float on the dev VM (im2col of 3x224x224 k7 s2, 64x56x56 "
    "k3 s2), fresh output buffer included; 2.0 taken (the VM was loaded)",
    "im2col_copy_cycles": "stride-1 im2col copies whole rows (memcpy) into a freshly allocated "
    "buffer (conv2d_gemm allocates one per call): measured 1.1 cycles/float on the dev VM "
    "(im2col of 64x56x56 k3 s1, first touch of the buffer included)",
    "im2col_gather_cycles": "im2col of narrow outputs gathers every float through a table "
    "(conv.cpp im2col_narrow): measured 2.5-2.9 cycles/float on the Sapphire Rapids VM, "
    "2026-11-27 (512x7x7 k3 s1, 198x4x4 k3 s2, the Python call taken out)",
    "narrow_tile_cycles": "counted: bcr_stream_narrow per tile: header parse, pointer set-up, "
    "the row scatter loop set-up",
    "narrow_expand_cycles": "counted: bcr.simd.cpp expand_add, per tile and column of X: the "
    "tile's sums placed on the band's 16 rows (two vpermps, a vpaddd, two vandps, two vaddps "
    "and three table loads on two or three FP pipes)",
    "narrow_expand16_cycles": "measured: the same with 16-lane vectors, where the band's rows "
    "are one vector and a tile's sums go onto them with one vexpandps and an add: replacing "
    "the permutes took 3.4-3.5 cycles off a tile (16x32 BCR, N = 1, 1024 and 3072 x 1024 at "
    "75 and 90 %: 40.2 -> 36.8 and 22.4 -> 19.0 cycles a tile; EPYC Zen 4 VM, 2026-11-27, "
    "alternating builds)",
    "split_load_cycles": "measured: extra cycles per X vector load of packed BCR that "
    "crosses a cache line (X rows not starting on a line). Sapphire Rapids VM, 2026-11-27, "
    "16x32 BCR, 1 thread, X offset by one float against aligned: 1.09-1.10x at 50 %, "
    "1.13-1.23x at 90 % (1024x1024 and 512x4608, N = 16-64); half a load slot per split "
    "load matches those ratios in the model",
    "fold_tile_cycles": "measured: fold_tile (a ragged end of 1-7 columns folded into packed "
    "BCR's panel pass) per tile, beyond its columns' multiply-adds: a perf profile of "
    "512x4608x49 16x32 BCR at 90 % on the Sapphire Rapids VM (2026-11-27) put fold_tile<1> at "
    "14 % of 350 us over 4608 tiles, ~38 cycles a tile, ~12 of them the 10 columns' FMAs; "
    "rounded down for the profiler's skid onto the call",
    "winograd_input_cycles": "counted: input_transform per channel and vector of tiles does "
    "12 B^T passes (~14 vector ops each) and 36 loads + 36 stores: ~96 cycles at ~3 vector "
    "ops/cycle and one store per cycle",
    "winograd_output_cycles": "counted: output_transform per row and vector: 10 A^T passes "
    "(~10 ops each), 36 loads, 16 stores: ~64 cycles",
    "depthwise_vector_cycles": "counted: depthwise_plane per tap and output vector: one load "
    "and one FMA, plus the tap's broadcast weight shared by a block of up to 8 vectors: "
    "1.125 loads at 2 loads/cycle (loads_per_cycle_ooo) = 0.5625 cycles",
    "depthwise_block_cycles": "counted: depthwise_plane per block of up to 8 output vectors: "
    "the call, the accumulators' set-up and their stores, the tap loop's own steps: ~24 "
    "cycles",
    "depthwise_plane_cycles": "measured on the dev VM: a fixed cost per channel plane (its "
    "task, the SIMD-tier dispatch, the phase planes' set-up). 2026-11-26 (bench_depthwise on "
    "15 MobileNet/EfficientNet planes, 7x7 to 112x112, 3x3 and 5x5, stride 1 and 2): ~375 "
    "cycles, fitted jointly with the depthwise efficiency (0.40). Refitted 2026-11-28 (Zen 4, "
    "the host calibration's 16 depthwise planes re-timed after the planes' zero padding "
    "moved out of the per-channel work; efficiency kept): 150 cycles, median model/measured "
    "0.99, every plane within -24/+31 %",
    "row_overhead_cycles": "counted: per row and register chunk of the CSR/N:M/pattern panel "
    "kernels (accumulator init, 1-4 stores, loop) ",
    "bcr_tile_cycles": "counted with callgrind (2026-11-26, 128x1152x784 at 75 %): the "
    "packed BCR panel kernel spends ~320 instructions per tile record and N tile outside its "
    "register-tile passes (header, row mask, X row pointers, split), which run out of order "
    "beside the passes' FMAs; fitted with efficiency['bcr'] to the 20 single-thread BCR rows "
    "of benchmarks/analytical_sanity.py (0-40 cycles fit alike, RMS log error 0.20)",
    "block_overhead_cycles": "the BCR kernel's own estimate (bcr.simd.cpp row_cost): 20 "
    "cycles per register tile for its set-up (header, Y row pointers, accumulator init)",
    "y_vector_cycles": "the BCR kernel's own estimate (bcr.simd.cpp row_cost): 2 cycles per Y "
    "vector of a register tile (load, add, store)",
    "nm_group_cycles": "counted: nm_row's per-group loop (base offset, slot loop)",
    "pattern_kernel_cycles": "counted: pattern_row per kept kernel: channel*9 and the "
    "library lookup",
    "cheap_ops_per_lane_cycle": "element-wise ops are vectorised, about one op per lane per "
    "cycle (assumed; numpy/engine loops)",
    "cheap_cycles_per_value": "fitted on the dev VM (benchmarks/cheap_ops.py, recorded in "
    "benchmarks/cheap_ops.md): per op kind, the median measured / predicted of ncnn's 27 "
    "benchmark networks' layers made 1",
    "transcendental_cycles": "one float32 tanh (a sigmoid is one tanh) as the numpy "
    "stand-ins run it: np.tanh over 200K float32 measured 9.5 cycles/value on the dev VM "
    "(numpy 2.4, AVX2, 3.22 GHz); stored as model cycles before the eltwise efficiency "
    "(9.5 x 0.85). A native engine's polynomial tanh costs ~2-3 cycles/value",
    "transcendental_cycles_avx512": "the same on an AVX-512 core, where numpy's float32 tanh "
    "is its SVML vector routine (numpy 2.4 reports X86_V4/AVX512_SPR in np.show_runtime): "
    "np.tanh over 200K float32 measured 1.40 cycles/value on the Sapphire Rapids dev VM "
    "(2026-11-27, 2.96 GHz) -> 1.4 x 0.85",
    "python_kernel_call_cycles": "one kernel call made from Python per recurrent step "
    "(binding + PreparedGemm.run), on top of the kernel's own call_cycles: 1.5 us per call "
    "through PreparedGemm.run vs 0.3 us inside the C++ harness for an 8x8 GEMV, measured on "
    "the dev VM at 3.22 GHz -> ~1.1 us",
    "numpy_call_cycles": "one numpy ufunc call on a small array (the recurrent gate math): "
    "the runner's GRU gate math at hidden 8 measured 8.8 us for its 12 calls on the dev VM "
    "(0.73 us per call at 3.22 GHz)",
    "recurrent_numpy_calls": "counted: numpy calls per step of grimsim.execute.runner._GateMath "
    "(GRU 12, LSTM 14; a test keeps the two in step)",
    "dram_write_allocate": "DRAM bytes moved per byte stored with ordinary stores to lines "
    "not in cache: a write-allocate cache first reads the line, then writes it back, so 2 "
    "(J. McCalpin, STREAM reference, 'Counting Bytes and FLOPS', "
    "http://www.cs.virginia.edu/stream/ref.html; G. Hager, 'The McCalpin STREAM benchmark: "
    "how to do it right', https://blogs.fau.de/hager/archives/8263); grimsim's kernels store "
    "with ordinary (not non-temporal) stores",
    "overlap_penalty": "share of min(compute, memory) not hidden behind the larger one "
    "(assumed; 0 = perfect roofline overlap)",
    "band": "uncalibrated analytical band x0.5..x2 (stated; the learned correction narrows it)",
    "efficiency": "measured on the dev VM: benchmarks/analytical_sanity.py",
    "call_cycles": "measured on the dev VM: tiny problems, benchmarks/analytical_sanity.py; "
    "the sparse kernels' with benchmarks/call_overhead.py (Zen 4 host, 2026-11-28)",
    "im2col_reused_copy_cycles": "stride-1 im2col into a buffer reused from call to call "
    "(the engine's sparse convs), per float, and im2col_row_cycles per output row copied "
    "(memcpy and fills): fitted to im2col of 64x56x56, 128x28x28 and 256x14x14 k3 s1 on one "
    "thread of the dev VM (Zen 4, 2026-11-28: 229, 176, 157 us; rows of 56, 28, 14 floats)",
    "im2col_row_cycles": "see im2col_reused_copy_cycles",
    "im2col_stride2_cycles": "stride-2 im2col rows de-interleaved with vector permutes "
    "(conv.simd.cpp copy_stride2), per float, plus im2col_row_cycles per output row: fitted "
    "to im2col of 3x224x224 k3/k7, 32x112x112, 64x56x56 and 144x56x56 k3 s2 on one thread "
    "of the dev VM (Zen 4, 2026-11-28: 0.63-0.96 cycles a float in all, rows of 112 to 28 "
    "floats; a fresh buffer under 4 MB costs the same)",
    "im2col_call_cycles": "a sparse conv's im2col, called from Python ahead of the kernel "
    "(binding with keyword arguments and array checks), measured on the dev VM (Zen 4, "
    "2026-11-28): pattern convs of 1-5 input channels on 2x2-4x4 maps took 2.2-2.6 us in "
    "calibration, about 1.9 us above the kernel and unfold work",
    "narrow_call_cycles": "a sparse kernel's narrow pass (N under a vector: no N tiles, no "
    "scratch buffers), measured on the dev VM (Zen 4, 2026-11-28): 16x32 and 13x29 BCR and "
    "CSR at N = 1-4 took 50-300 ns a call in the C++ harness, against 0.8 us charged before",
    "gpu_workgroup_tile": "a 32x32 output tile per work-group, typical of mobile OpenCL GEMM "
    "kernels (assumed)",
    "gpu_workgroups_per_core": "resident work-groups per shader core (assumed)",
    "gpu_alus_per_core": "fp32 lanes per shader core when the profile gives no core count "
    "(assumed)",
    "gpu_efficiency": "share of the ALU peak a mobile GPU kernel reaches (assumed; GPU estimates "
    "stay uncalibrated)",
    "gpu_band": "uncalibrated GPU band x0.2..x5: the 5th-95th percentiles of measured / "
    "predicted (0.21..4.95) over the 92 ncnn Vulkan rows of 4 devices that "
    "benchmarks/fidelity_ncnn.py checks (section fidelity_ncnn_gpu of "
    "benchmarks/fidelity.md), rounded outwards; the stated x0.33..x3 before held 64 % of them",
})
