"""The analytical CPU model: grimsim's own kernels on a device profile, vectorised over rows.

For each row the model picks the kernel the engine runs (dense: packed GEMM, GEMV for N = 1,
im2col + GEMM for convolutions, Winograd F(2,3)/F(4,3) for 3x3 stride-1 convolutions (as the
runner chooses, or when faster: ``winograd``), direct depthwise whatever the scheme;
sparse: BCR (also filter/column/block_punched), CSR, N:M, pattern, each on the im2col'd input
for convolutions, with the narrow-N path below one vector) and counts, from the kernels' own
tiling (``cpp_kernels/src``):

* compute: cycles of the register-tile loops on the fastest core type (FMA pipes, load ports
  and FMA latency bound each tile; lane utilisation follows from the padding of M to the
  micro-tile rows, of N to whole vectors, of BCR kept rows to register tiles, ...), divided
  by a per-kernel efficiency (``kernel_params``), then spread over the threads: static
  chunks are set by their largest chunk on the slowest core used, dynamic tasks by the total
  speed of the cores used (big cores first) plus a tail;
* memory: bytes per cache level (weights/format streamed once per N pass, X panels re-read
  from L2 per block or row, Y written; where each operand lives follows its size against
  L2 and the last-level cache, and the cache state asked for; recurrent weights whose step
  working set overflows the last-level cache keep a resident share, no cliff) over the
  level's bandwidth;
* overhead: index/row/block bookkeeping, im2col, Winograd transforms and packing passes,
  thread fork/join per parallel region and a fixed per-call cost; for a GRU/LSTM layer's
  element-wise row, the dispatch of every time step's kernel and gate-math calls (the
  recurrence is driven step by step from Python);

combined as ``max(compute, memory) + penalty * min(compute, memory) + overhead`` (the
negative ``overlap_s`` makes the breakdown add up).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from grimsim.cost.features import (
    BCR_BAND_ROWS,
    MAX_TILE_VECTORS,
    bcr_tile_layout,
    n_tile_layout,
    panel_row_chunks,
)
from grimsim.cost.kernel_params import CPU_KERNELS, DEFAULT_PARAMS, KernelParams
from grimsim.cost.profile import DeviceProfile
from grimsim.cost.protocol import EstimateBatch
from grimsim.cost.rows import FORMATS, OPS, CostRows, op_code
from grimsim.errors import GrimsimError
from grimsim.network.workload import Op

__all__ = ["CACHE_STATES", "WINOGRAD_POLICIES", "AnalyticalCPUModel", "CpuMachine",
           "cpu_machine"]

#: Where a kernel's operands are when it starts. ``warm`` (default): everything that fits
#: stays cached, as when one kernel is repeated - how ``grimsim run`` and calibration measure
#: each layer; ``network``: one chained pass over a network (weights cold in DRAM,
#: activations in the last-level cache when they fit); ``cold``: every operand in DRAM (a
#: benchmark that flushes the caches).
CACHE_STATES = ("warm", "network", "cold")

#: How a dense 3x3 stride-1 conv picks Winograd. ``engine``: as grimsim's runner does
#: (``grimsim.execute.runner``: Winograd when in and out channels are both >= 8); ``faster``:
#: whichever of Winograd and im2col + GEMM the model finds faster.
WINOGRAD_POLICIES = ("engine", "faster")
_WINOGRAD_MIN_CHANNELS = 8  # grimsim/execute/runner.py WINOGRAD_MIN_CHANNELS

_K = {name: i for i, name in enumerate(CPU_KERNELS)}
_KERNEL_NAMES = np.asarray(CPU_KERNELS, dtype=object)
_FMT = {name: i for i, name in enumerate(FORMATS)}
_CONV_CODES = np.asarray([op_code(Op.CONV), op_code(Op.DWCONV)], dtype=np.int8)
_DWCONV = op_code(Op.DWCONV)
# grimsim.network.workload.recurrent: gates, and element ops per hidden unit and step
# (2 per gate + 4); the gate nonlinearities per unit and step (GRU: sigmoid r, z + tanh n;
# LSTM: sigmoid i, f, o + tanh g + tanh c)
_RECURRENT = {op_code(Op.GRU): ("gru", 3, 3), op_code(Op.LSTM): ("lstm", 4, 5)}
_L2, _LLC, _DRAM = 0, 1, 2
_LEVEL_IDS = np.arange(3)[:, None]  # for _add_to
_F4 = 4.0  # bytes per float32
_LINE = 64.0  # cache line bytes (every core modelled here: Arm Cortex-A/X, Zen)

# The C++ BCR panel kernel picks its split of N into 3/2/1-vector register tiles with fixed
# costs whatever the device (bcr.simd.cpp row_cost: 2 FMA pipes, 2 load ports, latency 5,
# 16 columns, per register tile 2 cycles per Y vector + 20).
_SPLIT_FMA, _SPLIT_LOAD, _SPLIT_LAT, _SPLIT_COLS, _SPLIT_Y, _SPLIT_TILE = \
    0.5, 0.5, 5.0, 16.0, 2.0, 20.0
_MAX_RR = 8  # bcr.simd.cpp kMaxRR
_LEAN_MAX_NV = 16  # bcr.simd.cpp kLeanMaxVectors
_MAX_NV = MAX_TILE_VECTORS
_TABLE_ROWS = 128  # kept rows per BCR tile tabulated exactly; linear beyond
#: rows costed per pass: a family's temporaries then stay in L2 instead of streaming from
#: DRAM (1e6 mixed rows in 0.69-0.73 s in passes of 62-125k rows vs 0.87-0.92 s in one pass,
#: best of 8 alternating runs on the Sapphire Rapids VM, 2026-11-27)
_CHUNK_ROWS = 65_536
_MAX_TASK_COLS = 256  # dense.cpp kMaxTaskCols
_WINO_POINTS = 36
#: bcr.cpp BcrPacked::spmm: N below this (and below the vector) runs packed BCR's narrow
#: kernel; bcr.simd.cpp narrow_group takes a tile's rows in groups of this many lanes on x86
_BCR_NARROW_N = 8


@dataclass(frozen=True, eq=False)
class CpuMachine:
    """What the model derives once from a profile: the fastest core type's tile and ports,
    cache sizes and bandwidths, and per-thread-count speed tables (index = threads)."""

    lanes: int
    registers: int
    mr: int
    nv: int
    nr: int
    vfma: float  # vector FMAs per cycle (fastest core)
    loads: float  # vector loads per cycle
    latency: float
    clock_hz: float
    l1_bytes: int
    l2_bytes: int  # per core
    llc_bytes: int
    kc: int
    mc: int
    l2_bw: float  # B/s per core
    llc_bw: float  # B/s per core
    dram_bw: float  # B/s, shared
    barrier_s: float
    total_cores: int
    speed_sum: np.ndarray  # sum of core speeds relative to the fastest core
    speed_min: np.ndarray  # slowest used core's speed relative to the fastest
    col_cost: np.ndarray  # [r, nv] cycles per kept column of a BCR tile of r rows
    block_cost: np.ndarray  # [r, nv] fixed cycles per BCR tile
    x_passes: np.ndarray  # [r, nv] register-tile passes over a BCR tile's X rows
    # the profile's measured streaming rates: log buffer bytes -> log B/s (empty: none)
    stream_log_bytes: np.ndarray
    stream_log_bps: np.ndarray
    # cycles per tanh/sigmoid value of the numpy gate math (numpy's SVML routine on AVX-512)
    tanh_cycles: float


def _rmax(vv: int, registers: int) -> int:
    return min(_MAX_RR, (registers - vv - 1) // vv)


def _split_cost(r: int, vv: int, registers: int, fma: float, load: float, lat: float,
                cols: float = 1.0, per_y: float = 0.0, per_tile: float = 0.0) -> float:
    """Cycles of r rows over vv vectors for ``cols`` kept columns, cut into balanced
    register tiles (bcr.simd.cpp row_cost with the given per-cycle costs)."""
    rm = _rmax(vv, registers)
    q = -(-r // rm)
    cost = 0.0
    for i in range(q):
        rr = r // q + (1 if i < r % q else 0)
        cost += cols * max(fma * rr * vv, load * (rr + vv), lat) + per_y * rr * vv + per_tile
    return cost


@functools.lru_cache(maxsize=8)
def _bcr_splits(registers: int) -> np.ndarray:
    """[r, nv, vv] register tiles of vv = 1, 2, 3 vectors the BCR kernel uses for a tile of r
    kept rows over nv vectors (bcr.simd.cpp best_split: its fixed costs, not the device's).
    Pure function of the register count, memoised (read-only result)."""
    out = np.zeros((_TABLE_ROWS + 1, _MAX_NV + 1, 4))
    for r in range(1, _TABLE_ROWS + 1):
        fixed = {vv: _split_cost(r, vv, registers, _SPLIT_FMA, _SPLIT_LOAD, _SPLIT_LAT,
                                 _SPLIT_COLS, _SPLIT_Y, _SPLIT_TILE) for vv in (1, 2, 3)}
        for nv in range(1, _MAX_NV + 1):
            best, best_split = math.inf, (0, 0, 0)
            for n3 in range(nv // 3 + 1):
                rest = nv - 3 * n3
                for n2 in (rest // 2, rest // 2 - 1):
                    if n2 < 0:
                        continue
                    n1 = rest - 2 * n2
                    c = n3 * fixed[3] + n2 * fixed[2] + n1 * fixed[1]
                    if c < best:
                        best, best_split = c, (n3, n2, n1)
            out[r, nv, 3], out[r, nv, 2], out[r, nv, 1] = best_split
    out.setflags(write=False)
    return out


def _bcr_tables(registers: int, vfma: float, loads: float, lat: float, block_cycles: float,
                y_cycles: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per (kept rows r, vectors nv) of a BCR tile: cycles per kept column, fixed cycles,
    and register-tile passes over the tile's X rows (each pass reloads them)."""
    splits = _bcr_splits(registers)
    r_all = np.arange(_TABLE_ROWS + 1)
    col = np.zeros((_TABLE_ROWS + 1, _MAX_NV + 1))
    blk = np.zeros_like(col)
    passes = np.zeros_like(col)
    nv = np.arange(_MAX_NV + 1, dtype=np.float64)
    for vv in (1, 2, 3):
        dev = np.array([_split_cost(int(r), vv, registers, 1.0 / vfma, 1.0 / loads, lat)
                        if r else 0.0 for r in r_all])
        tiles = np.ceil(r_all / _rmax(vv, registers))
        n_vv = splits[:, :, vv]
        col += n_vv * dev[:, None]
        blk += n_vv * tiles[:, None] * block_cycles
        passes += vv * n_vv * tiles[:, None]
    y_only = r_all[:, None] * nv[None, :] * y_cycles
    # Panels of up to _LEAN_MAX_NV vectors run short tiles straight from their packed records
    # (bcr.simd.cpp LeanPanel): no set-up per register tile beyond its Y vectors
    lean_rows = np.array([0] + [_rmax(min(v, 3), registers) for v in range(1, _MAX_NV + 1)])
    lean = (r_all[:, None] <= lean_rows[None, :]) & (nv[None, :] <= _LEAN_MAX_NV)
    blk = np.where(lean, 0.0, blk) + y_only
    passes[:, 1:] /= nv[None, 1:]
    return col, blk, passes


def cpu_machine(profile: DeviceProfile, params: KernelParams = DEFAULT_PARAMS) -> CpuMachine:
    """Derive the model's machine description from a device profile."""
    clusters = profile.clusters_big_first()
    if not clusters or profile.total_cores < 1:
        raise GrimsimError(f"device {profile.id} has no CPU cores to model")
    ref = clusters[0]
    lanes = max(1, ref.simd_width_bits // 32)
    registers = 32 if ref.simd in ("neon", "neon+sve2", "sve", "avx512") else 16
    # gemm_ukernel.hpp: MR x NV vectors of accumulators
    if registers >= 32:
        nv, mr = (2, 14) if lanes >= 16 else (3, 8)
    else:
        nv, mr = 2, 6
    nr = nv * lanes
    vfma = ref.fp32_flops_per_cycle / (2 * lanes)
    ooo = ref.out_of_order
    loads = params.loads_per_cycle_ooo if ooo else params.loads_per_cycle_in_order
    clock = ref.max_clock_ghz * 1e9
    l1 = ref.l1d_kib * 1024
    l2 = ref.l2_kib * 1024 // max(1, ref.l2_shared_by)
    llc = ((profile.l3_kib or 0) + (profile.slc_kib or 0)) * 1024
    # dense.cpp set_blocking: KC x NR B micro-panel in half of L1, MC x KC A block in half L2
    kc = min(512, max(64, (l1 // (2 * 4 * nr)) // 8 * 8))
    mc = max(mr, (ref.l2_kib * 1024 // (2 * 4 * kc)) // mr * mr)
    l2_bpc = params.l2_bytes_per_cycle_ooo if ooo else params.l2_bytes_per_cycle_in_order
    total = profile.total_cores
    ref_peak = ref.fp32_flops_per_cycle * ref.max_clock_ghz
    speed_sum = np.zeros(total + 1)
    speed_min = np.ones(total + 1)
    for t in range(1, total + 1):
        left, s_sum, s_min = t, 0.0, 1.0
        for c in clusters:
            used = min(left, c.count)
            if used <= 0:
                break
            per_core = c.peak_fp32_gflops(used) / used / ref_peak
            s_sum += per_core * used
            s_min = min(s_min, per_core)
            left -= used
        speed_sum[t], speed_min[t] = s_sum, s_min
    speed_sum[0] = speed_sum[1]
    col, blk, passes = _bcr_tables(registers, vfma, loads, params.fma_latency_cycles,
                                   params.block_overhead_cycles, params.y_vector_cycles)
    return CpuMachine(
        lanes=lanes, registers=registers, mr=mr, nv=nv, nr=nr, vfma=vfma, loads=loads,
        latency=params.fma_latency_cycles, clock_hz=clock, l1_bytes=l1, l2_bytes=l2,
        llc_bytes=llc, kc=kc, mc=mc, l2_bw=l2_bpc * clock,
        llc_bw=params.llc_bytes_per_cycle.get(ref.core, params.llc_bytes_per_cycle["default"])
        * clock,
        dram_bw=profile.dram.effective_bandwidth_gbs * 1e9,
        barrier_s=profile.thread_barrier_us * 1e-6, total_cores=total,
        speed_sum=speed_sum, speed_min=speed_min, col_cost=col, block_cost=blk,
        x_passes=passes,
        stream_log_bytes=np.log([kib * 1024.0 for kib, _ in profile.stream_gbs]),
        stream_log_bps=np.log(_falling_envelope([gbs * 1e9 for _, gbs in profile.stream_gbs])),
        tanh_cycles=(params.transcendental_cycles_avx512 if ref.simd == "avx512"
                     else params.transcendental_cycles))


# --------------------------------------------------------------------------- helpers


def _falling_envelope(rates: Sequence[float]) -> np.ndarray:
    """A streaming sweep's rates (over growing working sets) as the sweep of an undisturbed
    core: a larger working set never streams faster, so a rate below one at a larger size is
    a run that something slowed, and is raised to it. On the Sapphire Rapids VM the sweep
    read 21.9 GB/s at 11.3 MiB between 26.1 at 8 and 25.1-26.2 at 16-45 MiB, and the GRU
    steps' 12 MiB working set was costed 1.2x slow from that one timing."""
    return np.maximum.accumulate(np.asarray(rates, dtype=np.float64)[::-1])[::-1]


#: conv.cpp im2col: outputs up to this many floats wide (twice that when strided) gather
#: through a table in tasks of whole channels of at least _IM2COL_TASK_FLOATS values; wider
#: ones copy row by row, a task per row
_IM2COL_GATHER_MAX_W = 8
_IM2COL_TASK_FLOATS = 16384.0

#: dense.cpp kReadAInPlaceMaxPanels: up to this many NR-column panels of B per call the GEMM
#: reads W in place instead of packing it
_READ_A_IN_PLACE_PANELS = 8
#: dense.cpp reads_alias: ... unless W's rows are a multiple of this many floats (4 KiB)
#: apart, where in-place reads would share one L1 set
_ALIASED_ROW_FLOATS = 1024


def _cdiv(a: Any, b: Any) -> Any:
    """Ceiling division (as floats: numpy's float floor-division is slow)."""
    return np.ceil(np.true_divide(a, b))


class _Cost:
    """Per-row accumulators of one kernel family's subset (cycles, bytes per level)."""

    def __init__(self, n: int) -> None:
        self.main = np.zeros(n)  # main-loop cycles, spread like the kernel's tasks
        self.side = np.zeros(n)  # index/row/block bookkeeping cycles, spread the same way
        self.bytes = np.zeros((3, n))  # L2, LLC, DRAM traffic of the main loop
        self.passes_s = np.zeros(n)  # separate passes (im2col, transforms, packing), seconds
        self.regions = np.zeros(n)  # parallel regions per call (fork/join)
        self.tasks = np.ones(n)
        self.imb = np.ones(n)

    def add(self, level: np.ndarray | int, nbytes: Any) -> None:
        _add_to(self.bytes, level, nbytes)


class AnalyticalCPUModel:
    """The analytical CPU model of one device profile (implements ``CostModel``).

    ``cache_state``: one of ``CACHE_STATES`` (default ``warm``). ``winograd``: one of
    ``WINOGRAD_POLICIES`` (default ``engine``). ``params``: the model's constants
    (``kernel_params.DEFAULT_PARAMS``).
    """

    unit = "cpu"

    def __init__(self, profile: DeviceProfile, *, cache_state: str = "warm",
                 winograd: str = "engine", params: KernelParams = DEFAULT_PARAMS) -> None:
        if cache_state not in CACHE_STATES:
            raise GrimsimError(f"cache_state {cache_state!r} must be one of "
                               f"{', '.join(CACHE_STATES)}")
        if winograd not in WINOGRAD_POLICIES:
            raise GrimsimError(f"winograd {winograd!r} must be one of "
                               f"{', '.join(WINOGRAD_POLICIES)}")
        self.winograd = winograd
        self.profile = profile
        self.params = params
        self.cache_state = cache_state
        missing = [k for k in CPU_KERNELS
                   if k not in params.efficiency or k not in params.call_cycles]
        if missing:
            raise GrimsimError(f"kernel parameters lack efficiency/call_cycles for "
                               f"{', '.join(missing)}")
        self.machine = cpu_machine(profile, params)
        self._python_call_s = params.python_kernel_call_cycles / self.machine.clock_hz
        # cycles per output value of each cheap op kind, indexed by the rows' op code
        self._cheap_cycles = np.zeros(len(OPS))
        for op, cycles in params.cheap_cycles_per_value.items():
            if op not in OPS:
                raise GrimsimError(f"cheap_cycles_per_value: unknown op kind {op!r}")
            self._cheap_cycles[op_code(op)] = cycles
        widths = np.arange(_MAX_NV * 3 // 2 + 2, dtype=np.float64)  # the last tile: < 1.5 nt
        self._row_tables = {fmt: self._row_kernel_costs(widths, fmt)
                            for fmt in ("csr", "nm", "pattern")}

    @property
    def name(self) -> str:
        return f"analytical:{self.profile.id}"

    @property
    def provenance(self) -> str:
        return f"analytical:{self.profile.id} (uncalibrated)"

    # ------------------------------------------------------------------ placement
    def _par(self, tasks: np.ndarray, threads: np.ndarray, imb: np.ndarray) -> np.ndarray:
        """Time multiplier (relative to one fastest core) of work split into ``tasks``
        tasks on ``threads`` threads, the largest task ``imb`` x the mean."""
        mc = self.machine
        tasks = np.maximum(tasks, 1.0)
        used = np.minimum(threads, tasks).astype(np.int64)
        s_sum = mc.speed_sum[used]
        s_min = mc.speed_min[used]
        largest = imb / tasks
        static = largest / s_min
        quant = np.ceil(tasks / used) * used / tasks
        dynamic = (np.maximum(quant / s_sum, largest)
                   + 0.5 / tasks * (1.0 / s_min - 1.0))
        return np.where(tasks <= threads, static, dynamic)

    def _level(self, nbytes: Any) -> np.ndarray:
        mc = self.machine
        nbytes = np.asarray(nbytes, dtype=np.float64)
        # _L2, _LLC, _DRAM are 0, 1, 2: a level is how many of the two capacities it exceeds
        return (nbytes > mc.l2_bytes).astype(np.int64) + (nbytes > mc.llc_bytes)

    def _store(self, b: np.ndarray, level: np.ndarray | int, nbytes: Any) -> None:
        """Add ``nbytes`` stored at ``level`` to ``b``: a store that misses the last-level
        cache first reads its line (write-allocate), so DRAM-level stores move
        ``dram_write_allocate`` x their bytes."""
        scale = np.where(np.asarray(level) == _DRAM, self.params.dram_write_allocate, 1.0)
        _add_to(b, level, np.asarray(nbytes, dtype=np.float64) * scale)

    def _gather(self, b: np.ndarray, panel_bytes: Any, nbytes: Any) -> None:
        """Add ``nbytes`` read in scattered rows of a panel of ``panel_bytes`` to ``b``. A
        panel larger than L2 still finds about L2 / panel of its rows there (the kernels
        revisit rows in no fixed order, so no cyclic thrashing), LLC / panel of them in the
        last-level cache and the rest in DRAM. The whole panel at its level's rate put a
        4608 x 49 N:M or CSR GEMM (a 1.2 MB panel, 1 MiB L2) at 2.1x its measured time
        (Zen 4, 2026-11-28)."""
        mc = self.machine
        panel = np.maximum(np.asarray(panel_bytes, dtype=np.float64), 1.0)
        in_l2 = np.minimum(mc.l2_bytes / panel, 1.0)
        in_llc = np.maximum(np.minimum(mc.llc_bytes / panel, 1.0) - in_l2, 0.0)
        nbytes = np.asarray(nbytes, dtype=np.float64)
        b[_L2] += nbytes * in_l2
        b[_LLC] += nbytes * in_llc
        b[_DRAM] += nbytes * (1.0 - in_l2 - in_llc)

    def _mem_s(self, b: np.ndarray, par: np.ndarray) -> np.ndarray:
        mc = self.machine
        return np.maximum(np.maximum(b[_L2] * par / mc.l2_bw, b[_LLC] * par / mc.llc_bw),
                          b[_DRAM] / mc.dram_bw)

    # ------------------------------------------------------------------ estimate
    def estimate(self, rows: object) -> EstimateBatch:
        """Estimate every row (a ``CostRows``)."""
        if not isinstance(rows, CostRows):
            raise GrimsimError(f"AnalyticalCPUModel.estimate needs CostRows, got "
                               f"{type(rows).__name__}")
        if rows.unit != "cpu":
            raise GrimsimError(f"rows were built for unit {rows.unit!r}; the CPU model "
                               "answers unit 'cpu' rows")
        kernel, compute, memory, overhead = self._parts_chunked(rows)
        big = np.maximum(compute, memory)
        analytical = self._combine(compute, memory, overhead)
        overlap = analytical - compute - memory - overhead
        bound = np.where(overhead > big, 2, np.where(memory > compute, 1, 0)).astype(np.int8)
        lo, hi = self.params.band
        return EstimateBatch(
            latency_s=analytical, analytical_s=analytical.copy(), compute_s=compute,
            memory_s=memory, overhead_s=overhead, overlap_s=overlap, bound=bound,
            band_lo_s=analytical * lo, band_hi_s=analytical * hi,
            kernel=_KERNEL_NAMES[kernel], provenance=self.provenance,
            meta={"model": "analytical-cpu", "device": self.profile.id,
                  "cache_state": self.cache_state, "winograd": self.winograd,
                  "calibrated": False,
                  "band": f"x{lo:g}..x{hi:g} (uncalibrated)"})

    def _parts_chunked(self, rows: CostRows
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``_parts`` over passes of ``_CHUNK_ROWS`` rows (views, no copies); the one
        figure that depends on other rows of the batch (a recurrent layer's step count, from
        its GEMM rows) is taken over the whole batch first."""
        n = len(rows)
        steps = _recurrent_steps(rows)
        if n <= _CHUNK_ROWS:
            return self._parts(rows, steps)
        out: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] = (
            np.empty(n, np.int8), np.empty(n), np.empty(n), np.empty(n))
        for start in range(0, n, _CHUNK_ROWS):
            part = slice(start, min(start + _CHUNK_ROWS, n))
            for whole, piece in zip(out, self._parts(rows.take(part), steps[part]),
                                    strict=True):
                whole[part] = piece
        return out

    def _parts(self, rows: CostRows, steps: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per row: (kernel code, compute, memory, overhead seconds); ``steps`` from
        ``_recurrent_steps``."""
        n = len(rows)
        mc = self.machine
        threads = np.clip(rows.threads, 1, mc.total_cores).astype(np.float64)
        is_conv = (rows.op == _CONV_CODES[0]) | (rows.op == _CONV_CODES[1])
        batch = np.where(is_conv, np.maximum(rows.batch, 1), 1).astype(np.float64)
        groups = rows.groups.astype(np.float64)
        calls = groups * batch  # conv kernels run one image and one group per call
        n_call = rows.N / batch
        m_call = rows.M / groups
        kernel = np.full(n, _K["eltwise"], np.int8)
        compute = np.zeros(n)
        memory = np.zeros(n)
        overhead = np.zeros(n)
        fmt = rows.fmt
        gemm = rows.is_gemm
        dense = gemm & (fmt == _FMT["dense"])
        # A depthwise conv runs the direct kernel whatever its scheme: the engine has no sparse
        # depthwise kernel (one 1 x kh*kw GEMM per channel would cost far more), so its
        # pruned weights are zeros in the dense kernel and pruning saves nothing here.
        depthwise = gemm & (rows.op == _DWCONV) & (rows.groups == rows.M) \
            & (rows.kh.astype(np.int64) * rows.kw == rows.K)
        dense = dense | depthwise
        gemv = dense & ~depthwise & (n_call == 1)
        gemm_rows = dense & ~depthwise & ~gemv
        # packed BCR's narrow kernel takes N < 8; 8-15 columns on 16 lanes run as a panel of
        # one padded vector, as the row kernels' do not
        narrow = n_call < np.where(fmt == _FMT["bcr"], min(mc.lanes, _BCR_NARROW_N), mc.lanes)
        ctx = _Ctx(rows, threads, calls, n_call, m_call, self, steps)

        idx = np.flatnonzero(gemm_rows)
        if idx.size:
            res = self._gemm(ctx, idx)
            code = np.where(rows.im2col[idx], _K["im2col+gemm"], _K["gemm"])
            wino = idx[rows.winograd[idx]]
            if wino.size:
                w_res = self._winograd(ctx, wino)
                pos = np.searchsorted(idx, wino)
                if self.winograd == "faster":
                    better = self._combine(*w_res) < self._combine(res[0][pos], res[1][pos],
                                                                   res[2][pos])
                else:
                    better = np.minimum(rows.K[wino] // 9, rows.M[wino]) \
                        >= _WINOGRAD_MIN_CHANNELS
                for part in range(3):
                    res[part][pos] = np.where(better, w_res[part], res[part][pos])
                code[pos] = np.where(better, _K["winograd"], code[pos])
            self._put(idx, code, res, kernel, compute, memory, overhead)
        for mask, fn, code_name in (
                (gemv, self._gemv, "gemv"), (depthwise, self._depthwise, "depthwise")):
            idx = np.flatnonzero(mask)
            if idx.size:
                self._put(idx, np.full(idx.size, _K[code_name]), fn(ctx, idx), kernel,
                          compute, memory, overhead)
        # BCR stored as one block over the whole matrix (filter and column pruning) runs as
        # the dense GEMM of its kept rows x kept columns (bcr.cpp, BcrPacked's single block)
        single = gemm & ~depthwise & (fmt == _FMT["bcr"]) & (rows.groups == 1) \
            & (rows.n_blocks == 1) & (rows.block_r >= rows.M) & (rows.block_c >= rows.K)
        idx = np.flatnonzero(single)
        if idx.size:
            code, res = self._single_block(ctx, idx)
            self._put(idx, code, res, kernel, compute, memory, overhead)
        for fmt_name in ("bcr", "csr", "nm", "pattern"):
            sel = gemm & ~depthwise & (fmt == _FMT[fmt_name]) & ~single
            for nar in (False, True):
                idx = np.flatnonzero(sel & (narrow == nar))
                if idx.size:
                    res = (self._sparse_narrow(ctx, idx, fmt_name) if nar
                           else self._sparse_wide(ctx, idx, fmt_name))
                    self._put(idx, np.full(idx.size, _K[fmt_name]), res, kernel, compute,
                              memory, overhead)
        idx = np.flatnonzero(~gemm)
        if idx.size:
            self._put(idx, np.full(idx.size, _K["eltwise"]), self._cheap(ctx, idx), kernel,
                      compute, memory, overhead)
        return kernel, compute, memory, overhead

    def _combine(self, compute: np.ndarray, memory: np.ndarray,
                 overhead: np.ndarray) -> np.ndarray:
        big = np.maximum(compute, memory)
        small = np.minimum(compute, memory)
        return big + self.params.overlap_penalty * small + overhead

    def _put(self, idx: np.ndarray, code: np.ndarray,
             res: tuple[np.ndarray, np.ndarray, np.ndarray], kernel: np.ndarray,
             compute: np.ndarray, memory: np.ndarray, overhead: np.ndarray) -> None:
        kernel[idx] = code
        compute[idx], memory[idx], overhead[idx] = res

    def _finish(self, ctx: _Ctx, idx: np.ndarray, cost: _Cost, kernel: str,
                total_factor: np.ndarray, threads: np.ndarray | None = None,
                call_cycles: float | None = None
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-call cycles and bytes -> (compute, memory, overhead) seconds of the row.

        ``total_factor``: how many times the per-call figures occur (calls x repeats);
        ``call_cycles``: the fixed cost of a call, if not the kernel's ``call_cycles``.
        """
        mc = self.machine
        eff = self.params.efficiency[kernel]
        t = ctx.threads[idx] if threads is None else threads
        par = self._par(cost.tasks, t, cost.imb)
        compute = cost.main / (mc.clock_hz * eff) * par * total_factor
        memory = self._mem_s(cost.bytes, par) * total_factor
        team = np.minimum(t, cost.tasks)
        fork = np.where(team > 1, cost.regions * mc.barrier_s, 0.0)
        # a recurrent step's kernels are called one by one from Python (grimsim run), and
        # calibration times the step's GEMMs that way: the call belongs to the GEMM's row
        fixed = self.params.call_cycles[kernel] if call_cycles is None else call_cycles
        call = fixed / mc.clock_hz \
            + np.where(ctx.rows.repeats[idx] > 1, self._python_call_s, 0.0)
        overhead = (cost.side / (mc.clock_hz * eff) * par + cost.passes_s + fork
                    + call) * total_factor
        return compute, memory, overhead

    # ------------------------------------------------------------------ operand levels
    def _levels(self, ctx: _Ctx, idx: np.ndarray, w_bytes: np.ndarray, x_bytes: np.ndarray,
                y_bytes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(weights first, weights again, activations in, activations out) levels per call."""
        mc = self.machine
        again = self._level(w_bytes)
        if self.cache_state == "cold":
            first = np.full(idx.size, _DRAM)
            act_in = np.full(idx.size, _DRAM)
        elif self.cache_state == "warm":
            first = self._level(w_bytes + x_bytes + y_bytes)
            act_in = first
        else:
            first = np.full(idx.size, _DRAM)
            rows = ctx.rows
            fits = (rows.act_bytes_in[idx] + rows.act_bytes_out[idx]) <= mc.llc_bytes
            act_in = np.where(fits, _LLC, _DRAM)
        # the A operand of an activation-by-activation GEMM is an activation too
        first = np.where(ctx.rows.prunable[idx], first, act_in)
        out = np.where(y_bytes <= mc.llc_bytes, _LLC, _DRAM)
        if self.cache_state == "warm":
            out = np.minimum(out, self._level(y_bytes))
        return first, again, act_in, out

    def _streamed(self, level: np.ndarray, nbytes: Any, ws_bytes: Any = None,
                  threads: Any = 1.0, *, factor: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
        """(level, bytes) to charge for ``nbytes`` read or written at ``level`` by rows whose
        cyclic working set is ``ws_bytes``, split over ``threads``. Warm rows run again and
        again, so on a profile with a measured streaming sweep what they move beyond L2
        streams as the sweep did: such bytes go to the DRAM level, scaled to take the sweep's
        time for the working set (a host's shared LLC serves working sets far beyond its
        nominal slice: 26 GB/s up to ~64 MiB on the Sapphire Rapids VM, twice its DRAM rate).
        Other rows are unchanged. ``factor``: ``_sweep_factor`` of the working sets, when
        several operands share them."""
        level = np.asarray(level)
        nbytes = np.asarray(nbytes, dtype=np.float64)
        if factor is None:
            factor = self._sweep_factor(ws_bytes, threads, level)
        off = np.flatnonzero(level != _L2)
        if factor is None or not off.size:
            return level, nbytes
        nbytes = np.broadcast_to(nbytes, level.shape).copy()
        nbytes[off] *= factor[off]
        level = level.copy()
        level[off] = _DRAM
        return level, nbytes

    def _sweep_factor(self, ws_bytes: Any, threads: Any, *levels: np.ndarray
                      ) -> np.ndarray | None:
        """DRAM bandwidth / the rate at which ``threads`` cores stream a cyclic working set
        of ``ws_bytes`` between them, computed only where one of ``levels`` lies beyond L2
        (1 elsewhere), for ``_streamed(..., factor=)``: the interpolation is the costliest
        step of a batched query, so operands that share a working set share it. None where
        ``_streamed`` would change nothing.

        The sweep is one core's; t cores each stream their 1/t share at one core's rate for
        that share (their own L2s hold t times as much, and one core's rate beyond L2 is
        bound by its own outstanding misses, not by the shared levels). Measured on the
        Sapphire Rapids VM (GEMV over 1-256 MB of weights, 2026-11-27): 2 threads streamed
        1.9-2.4x one thread's rate at every size; this rule says 2.0-2.3x."""
        if not self.machine.stream_log_bps.size or self.cache_state != "warm":
            return None
        beyond = np.asarray(levels[0]) != _L2
        for level in levels[1:]:
            beyond = beyond | (np.asarray(level) != _L2)
        factor = np.ones(beyond.shape)
        on = np.flatnonzero(beyond)
        if on.size:
            ws = np.broadcast_to(np.asarray(ws_bytes, dtype=np.float64), beyond.shape)[on]
            team = np.maximum(np.broadcast_to(np.asarray(threads, dtype=np.float64),
                                              beyond.shape)[on], 1.0)
            factor[on] = self.machine.dram_bw / (team * self._sweep_rate(ws / team))
        return factor

    def _sweep_rate(self, nbytes: np.ndarray) -> np.ndarray:
        """The measured sweep's streaming rate (B/s) for cyclic working sets of ``nbytes``,
        log-log interpolated."""
        mc = self.machine
        return np.exp(np.interp(np.log(np.maximum(nbytes, 1.0)), mc.stream_log_bytes,
                                mc.stream_log_bps))

    def _weight_bytes(self, ctx: _Ctx, idx: np.ndarray, first: np.ndarray,
                      per_call_w: np.ndarray) -> np.ndarray:
        """Weight bytes per call by level (levels x rows), averaged over the steps of a
        repeated GEMM (RNN steps): the first step reads them from where they start, later
        steps from where the layer's step working set (all its repeated GEMMs) stays.

        Where the profile has a measured streaming sweep (hosts), the later steps' bytes move
        at the rate the sweep found for a buffer of the step's size instead.

        Otherwise, a step working set larger than the last-level cache is not all lost
        between steps: thrash-resistant replacement (RRIP-like insertion, as in modern
        LLCs) keeps about capacity / working set of a cyclic stream resident (Jaleel et al.,
        "High Performance Cache Replacement Using Re-Reference Interval Prediction", ISCA
        2010), so that share of the later steps' bytes comes from the LLC and the rest from
        DRAM - no cliff at the capacity. The resident share's LLC hits and the misses
        interleave in one stream, so their times add: the later steps' bytes count as DRAM
        bytes at the blended cost (1 - r) + r x DRAM/LLC bandwidth for a resident share r."""
        mc = self.machine
        rows = ctx.rows
        reps = rows.repeats[idx].astype(np.float64)
        step = np.maximum(rows.step_bytes[idx], per_call_w)
        repeated = reps > 1
        if self.cache_state == "cold":
            repeated = np.zeros(idx.size, dtype=bool)
        later = np.where(repeated, self._level(step), first)
        resident = np.where(repeated & (later == _DRAM),
                            np.clip(mc.llc_bytes / np.maximum(step, 1.0), 0.0, 1.0), 0.0)
        blended = (1.0 - resident) + resident * mc.dram_bw / max(mc.llc_bw, 1.0)
        # a measured sweep says how fast a cyclic working set this size streams (a shared
        # LLC falls off gradually, well before its nominal size): its rate, log-log
        # interpolated, replaces the capacity rule for the steps after the first
        factor = self._sweep_factor(step, ctx.threads[idx], np.where(repeated, later, _L2),
                                    first)
        if factor is not None:
            on_curve = repeated & (later != _L2)
            blended = np.where(on_curve, factor, blended)
            later = np.where(on_curve, _DRAM, later)
        # warm: the first step is a cyclic working set too (the call runs again and again, as
        # calibration times it); without this an isolated GEMV of a 12-64 MiB matrix was
        # costed at the DRAM rate while a host's large shared LLC served it 1.5-2x faster, and
        # the learned correction carried that factor over to RNN steps already on the curve
        # (step >= per_call_w: the first step's working set is the step's)
        b = np.zeros((3, idx.size))
        _add_to(b, *self._streamed(first, per_call_w / reps, step, ctx.threads[idx], factor=factor))
        if repeated.any():
            _add_to(b, later, per_call_w * (reps - 1) / reps * blended)
        return b

    # ------------------------------------------------------------------ kernels
    def _gemm(self, ctx: _Ctx, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Packed register-tiled GEMM (dense.cpp + gemm_ukernel.hpp), im2col for convs."""
        mc = self.machine
        p = self.params
        rows = ctx.rows
        m = ctx.m_call[idx]
        k = rows.K[idx].astype(np.float64)
        nn = ctx.n_call[idx]
        t = ctx.threads[idx]
        cost = _Cost(idx.size)
        mp = _cdiv(m, mc.mr)
        n_full = np.floor(nn / mc.nr)
        rest = nn - n_full * mc.nr
        nv_rest = np.where(rest <= 0, 0, np.where(rest <= mc.lanes, 1, mc.nv))
        tile_full = ctx.tile_cycles(mc.mr, mc.nv)
        tile_rest = np.maximum(np.maximum(mc.mr * nv_rest / mc.vfma, (mc.mr + nv_rest)
                                          / mc.loads), mc.latency)
        cost.main = mp * k * (n_full * tile_full + np.where(rest > 0, tile_rest, 0.0))
        # edge tiles go through a scratch tile copied out with scalar stores
        kb = _cdiv(k, mc.kc)
        edge_rows = (m % mc.mr) > 0
        edge_tiles = (np.where(edge_rows, n_full + (rest > 0), 0)
                      + np.where((rest > 0) & ((rest > mc.lanes) | (rest < mc.lanes)),
                                 mp - edge_rows, 0))
        cost.side = edge_tiles * kb * mc.mr * mc.nr * p.scalar_copy_cycles
        # tasks (dense.cpp run_gemm)
        panels = _cdiv(nn, mc.nr)
        mpanels = mp
        max_chunk = max(1, _MAX_TASK_COLS // mc.nr)
        n_chunks = _cdiv(panels, max_chunk)
        multi = t > 1
        n_chunks = np.where(multi, np.maximum(n_chunks, np.minimum(panels, t)), n_chunks)
        n_chunks = np.where(multi & (panels >= t), _cdiv(n_chunks, t) * t, n_chunks)
        n_chunks = np.minimum(n_chunks, panels)
        m_chunks = np.where(n_chunks < t, np.minimum(mpanels, _cdiv(t, n_chunks)), 1)
        chunk_panels = _cdiv(panels, n_chunks)
        cost.tasks = n_chunks * m_chunks
        cost.imb = (chunk_panels * n_chunks / panels) * (_cdiv(mpanels, m_chunks) * m_chunks
                                                         / mpanels)
        cost.regions = np.full(idx.size, 2.0)
        # traffic
        w_bytes = m * k * _F4
        x_bytes = k * nn * _F4
        y_bytes = m * nn * _F4
        first, _, act_in, out = self._levels(ctx, idx, w_bytes, x_bytes, y_bytes)
        reps = rows.repeats[idx].astype(np.float64)
        a_level = self._level(mp * mc.mr * k * _F4)
        # up to _READ_A_IN_PLACE_PANELS micro-panels of B the micro-kernel reads W where it
        # lies (dense.cpp gemm_rowmajor): no packing pass, the first task's reads come from
        # W's level and the other tasks' from the level W fits (not when its rows alias)
        packed = (panels > _READ_A_IN_PLACE_PANELS) | (
            (k >= _ALIASED_ROW_FLOATS) & (np.mod(k, _ALIASED_ROW_FLOATS) == 0))
        bytes_w = self._weight_bytes(ctx, idx, first, w_bytes)
        cost.bytes += np.where(packed, 0.0, bytes_w)
        cost.add(a_level, np.where(packed, n_chunks, n_chunks - 1) * w_bytes)
        cost.add(_L2, panels * w_bytes)  # A streamed per B micro-panel
        cost.add(_L2, x_bytes * _cdiv(m, mc.mc))  # packed B re-reads
        y_chunk = self._level(m * np.minimum(nn, chunk_panels * mc.nr) * _F4)
        cost.add(y_chunk, y_bytes * np.maximum(0, 2 * kb - 2))
        self._store(cost.bytes, out, y_bytes)
        # passes: pack A (every call with more panels than read in place), pack B (per
        # task), im2col
        pack_par = self._par(_cdiv(mpanels, np.maximum(1, np.floor(65536 / (k * mc.mr)))), t,
                             np.ones(idx.size))
        bytes_a = bytes_w.copy()
        _add_to(bytes_a, a_level, w_bytes)
        pack_a = np.where(packed, np.maximum(m * k * p.pack_a_cycles / mc.clock_hz * pack_par,
                                             self._mem_s(bytes_a, pack_par)), 0.0)
        x_level = np.where(rows.im2col[idx], self._level(x_bytes), act_in)
        bytes_b = np.zeros((3, idx.size))
        _add_to(bytes_b, *self._streamed(x_level, x_bytes * m_chunks,
                                         x_bytes + w_bytes + y_bytes, t))
        par_b = self._par(cost.tasks, t, cost.imb)
        pack_b = np.maximum(k * nn / mc.lanes * m_chunks / mc.clock_hz * par_b,
                            self._mem_s(bytes_b, par_b))
        cost.passes_s = pack_a + pack_b + self._im2col_s(ctx, idx, act_in)
        cost.regions += np.where(rows.im2col[idx], 1.0, 0.0)
        return self._finish(ctx, idx, cost, "gemm", ctx.calls[idx] * reps)

    def _im2col_s(self, ctx: _Ctx, idx: np.ndarray, act_in: np.ndarray,
                  from_python: bool = False) -> np.ndarray:
        """Seconds of the im2col pass per call (0 for rows that need none). ``from_python``:
        the pass is a call of its own ahead of the kernel's, as the engine runs a sparse
        conv (the dense conv unfolds inside its one call)."""
        rows = ctx.rows
        need = rows.im2col[idx]
        if need.all():
            return self._im2col_rows(ctx, idx, act_in, from_python)
        out = np.zeros(idx.size)
        sel = np.flatnonzero(need)
        if sel.size:
            out[sel] = self._im2col_rows(ctx, idx[sel], act_in[sel], from_python)
        return out

    def _im2col_rows(self, ctx: _Ctx, idx: np.ndarray, act_in: np.ndarray,
                     from_python: bool) -> np.ndarray:
        """``_im2col_s`` of rows that all need the pass. The engine's own im2col call writes
        into the same buffer every call; conv2d_gemm's into a fresh one."""
        mc = self.machine
        rows = ctx.rows
        # conv2d_gemm unfolds all groups at once, once per image; counted per call here
        elems = rows.K[idx] * ctx.n_call[idx]
        t = ctx.threads[idx]
        out_w = rows.out_w[idx]
        strided = rows.stride_w[idx] != 1
        gather = (out_w <= _IM2COL_GATHER_MAX_W) | (strided & (out_w <= 2 * _IM2COL_GATHER_MAX_W))
        unfolded = (rows.K[idx] * rows.groups[idx]).astype(np.float64)  # output rows
        taps = np.maximum(rows.kh[idx].astype(np.float64) * rows.kw[idx], 1.0)
        per_task = _cdiv(_IM2COL_TASK_FLOATS, np.maximum(taps * ctx.n_call[idx], 1.0))
        # wide outputs: runs of whole output rows of _IM2COL_TASK_FLOATS values or more
        rows_per_task = _cdiv(_IM2COL_TASK_FLOATS, np.maximum(ctx.n_call[idx], 1.0))
        tasks = np.where(gather, _cdiv(unfolded / taps, per_task),
                         _cdiv(unfolded, rows_per_task))
        par = self._par(tasks, t, np.ones(idx.size))
        b = np.zeros((3, idx.size))
        in_bytes = rows.act_bytes_in[idx] / ctx.calls[idx]
        out_level = self._level(elems * rows.groups[idx] * _F4)
        ws = in_bytes + elems * rows.groups[idx] * _F4
        factor = self._sweep_factor(ws, t, act_in, out_level)
        _add_to(b, *self._streamed(act_in, in_bytes, factor=factor))
        # the sweep is a read rate: streamed stores also pay their write-allocate read
        self._store(b, *self._streamed(out_level, elems * _F4, factor=factor))
        # narrow outputs gather through the table; wider ones at stride 1 copy whole output
        # rows, at stride 2 de-interleave them with vector permutes (each row paying its
        # call and fills), at other strides gather one float at a time
        p = self.params
        copy = p.im2col_reused_copy_cycles if from_python else p.im2col_copy_cycles
        stride2 = ~gather & (rows.stride_w[idx] == 2)
        per_elem = np.where(gather, p.im2col_gather_cycles,
                            np.where(stride2, p.im2col_stride2_cycles,
                                     np.where(strided, p.im2col_cycles, copy)))
        # a row copy's call and fills, per output row: de-interleaved rows, and stride-1
        # rows into the reused buffer (a fresh buffer's page faults hide it in the 1.1
        # cycles a float); the engine's own im2col also pays its call from Python
        per_row = stride2 | (from_python & ~gather & ~strided)
        cyc = elems * per_elem \
            + np.where(per_row, rows.K[idx] * rows.out_h[idx] * p.im2col_row_cycles, 0.0)
        call = p.im2col_call_cycles / mc.clock_hz if from_python else 0.0
        return np.maximum(cyc / mc.clock_hz * par, self._mem_s(b, par)) + call

    def _gemv(self, ctx: _Ctx, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """dense.cpp gemv_rows: 4 rows share each x load; bandwidth-bound on the weights."""
        mc = self.machine
        p = self.params
        rows = ctx.rows
        m = ctx.m_call[idx]
        k = rows.K[idx].astype(np.float64)
        cost = _Cost(idx.size)
        vec = m * _cdiv(k, mc.lanes)
        per_vec = max(1.0 / mc.vfma, 1.25 / mc.loads, mc.latency / 8.0)
        cost.main = vec * per_vec
        cost.side = m * p.row_overhead_cycles * 2  # horizontal sum per row
        rows_per_task = np.maximum(4, (32768 // np.maximum(1, k)) // 4 * 4)
        cost.tasks = _cdiv(m, rows_per_task)
        cost.regions = np.ones(idx.size)
        w_bytes = m * k * _F4
        first, _, act_in, out = self._levels(ctx, idx, w_bytes, k * _F4, m * _F4)
        reps = rows.repeats[idx].astype(np.float64)
        # weights: the first step from where they start, later steps from where they stay
        cost.bytes += self._weight_bytes(ctx, idx, first, w_bytes)
        cost.add(act_in, k * _F4)
        self._store(cost.bytes, out, m * _F4)
        if rows.im2col[idx].any():
            cost.passes_s = self._im2col_s(ctx, idx, act_in)
        return self._finish(ctx, idx, cost, "gemv", ctx.calls[idx] * reps)

    def _winograd(self, ctx: _Ctx, idx: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """winograd.cpp F(m,3), m = 2 or 4 as winograd_preferred_tile picks: (m+2)^2
        transformed-domain GEMMs on full micro-tiles, the input transform per tile panel
        (and output-channel chunk), the output transform per micro-tile block."""
        mc = self.machine
        p = self.params
        rows = ctx.rows
        cout = ctx.m_call[idx]
        cin = rows.K[idx] / 9.0
        oh = rows.out_h[idx].astype(np.float64)
        ow = rows.out_w[idx].astype(np.float64)
        t = ctx.threads[idx]

        def slots(m: int) -> np.ndarray:
            return (m + 2) ** 2 * _cdiv(_cdiv(oh, m) * _cdiv(ow, m), mc.nr) * mc.nr

        m = np.where(slots(2) < slots(4), 2.0, 4.0)
        tp = m + 2  # input tile side
        points = tp * tp
        th, tw = _cdiv(oh, m), _cdiv(ow, m)
        tiles = th * tw
        hp, wp = th * m + 2, tw * m + 2
        panels = _cdiv(tiles, mc.nr)
        mpanels = _cdiv(cout, mc.mr)
        cchunks = np.where(panels < 2 * t, np.minimum(mpanels, _cdiv(2 * t, panels)), 1)
        cost = _Cost(idx.size)
        cost.tasks = panels * cchunks
        cost.imb = _cdiv(mpanels, cchunks) * cchunks / mpanels
        cost.main = points * mpanels * panels * cin * ctx.tile_cycles(mc.mr, mc.nv)
        kb = _cdiv(cin, mc.kc)
        scale = points / _WINO_POINTS  # transform work relative to F(4,3)'s 6x6 tiles
        in_tf = panels * cchunks * cin * (points * mc.nr * p.scalar_copy_cycles
                                          + mc.nv * p.winograd_input_cycles * scale)
        rows_mean = cout / mpanels
        out_tf = mpanels * panels * rows_mean * (mc.nv * p.winograd_output_cycles * scale
                                                 + m * m * mc.nr * p.scalar_copy_cycles)
        stores = points * mpanels * panels * kb * mc.mr * mc.nv * 2.0
        cost.side = in_tf + out_tf + stores
        cost.regions = np.full(idx.size, 2.0)
        u_bytes = points * mpanels * mc.mr * cin * _F4
        y_bytes = cout * oh * ow * _F4
        x_bytes = rows.act_bytes_in[idx] / ctx.calls[idx]
        first, again, act_in, out = self._levels(ctx, idx, u_bytes, x_bytes, y_bytes)
        cost.add(first, u_bytes)
        cost.add(again, u_bytes * (panels - 1))
        vbuf = points * cin * mc.nr * _F4
        cost.add(self._level(vbuf), panels * cchunks * vbuf * (1 + mpanels / cchunks))
        pad_bytes = cin * hp * wp * _F4
        cost.add(self._level(pad_bytes), panels * cchunks * cin * points * mc.nr * _F4)
        self._store(cost.bytes, out, y_bytes)
        # padding pass: zero-fill and copy the input into the padded planes
        b = np.zeros((3, idx.size))
        _add_to(b, *self._streamed(act_in, x_bytes, x_bytes + pad_bytes, t))
        _add_to(b, self._level(pad_bytes), pad_bytes)
        par_pad = self._par(cin, t, np.ones(idx.size))
        cost.passes_s = np.maximum(pad_bytes / _F4 / mc.lanes / mc.clock_hz * par_pad,
                                   self._mem_s(b, par_pad))
        return self._finish(ctx, idx, cost, "winograd",
                            ctx.calls[idx] * rows.repeats[idx])

    def _depthwise(self, ctx: _Ctx, idx: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """conv.simd.cpp depthwise_plane: the plane copied into stride_w zero-padded phase
        planes, then blocks of up to 8 output vectors, each tap one broadcast weight and a
        contiguous load + FMA per vector; one task per channel."""
        mc = self.machine
        p = self.params
        rows = ctx.rows
        channels = rows.groups[idx].astype(np.float64)
        oh = np.maximum(rows.out_h[idx], 1).astype(np.float64)
        ow = np.maximum(rows.out_w[idx], 1).astype(np.float64)
        kh = rows.kh[idx].astype(np.float64)
        kw = rows.kw[idx].astype(np.float64)
        taps = kh * kw
        sh = np.maximum(rows.stride_h[idx], 1).astype(np.float64)
        sw = np.maximum(rows.stride_w[idx], 1).astype(np.float64)
        nvec = _cdiv(ow, mc.lanes)  # lanes past the width are computed and dropped
        # the phase planes (conv.cpp): rows the taps reach, columns rounded up to 16 lanes
        phase_rows = (oh - 1) * sh + (kh - 1) * np.maximum(rows.dilation_h[idx], 1) + 1
        phase_cols = _cdiv(ow, 16) * 16 \
            + np.floor((kw - 1) * np.maximum(rows.dilation_w[idx], 1) / sw) + 1
        # the planes' zero padding is written once per run of channels (conv.cpp): a channel
        # copies in only its input plane, as much of it as the taps reach
        batch = ctx.batch(idx)
        x_bytes = rows.act_bytes_in[idx] / batch
        fill = np.minimum(x_bytes / (_F4 * channels), sw * phase_rows * phase_cols)
        # stride 1 copies rows with vector stores, stride 2 de-interleaves vectors (from 8
        # outputs a row: the compiler's vector loop; 14 sped up 1.4x on Zen 4, 7 did not);
        # other strides copy one float at a time
        fill_cycles = np.where(
            sw == 1, fill / mc.lanes * p.scalar_copy_cycles,
            np.where((sw == 2) & (ow >= 8), fill / mc.lanes * p.deinterleave_copy_cycles,
                     fill * p.scalar_copy_cycles))
        cost = _Cost(idx.size)
        cost.main = channels * oh * nvec * taps * p.depthwise_vector_cycles
        cost.side = channels * (fill_cycles + _cdiv(oh * nvec, 8) * p.depthwise_block_cycles)
        # per plane: the task, the SIMD-tier dispatch and the phase planes' set-up
        par = self._par(channels, ctx.threads[idx], np.ones(idx.size))
        cost.passes_s = channels * p.depthwise_plane_cycles / mc.clock_hz * par
        cost.tasks = channels
        cost.regions = np.ones(idx.size)
        y_bytes = channels * oh * ow * _F4
        w_bytes = channels * taps * _F4
        first, _, act_in, out = self._levels(ctx, idx, w_bytes, x_bytes, y_bytes)
        cost.add(first, w_bytes)
        cost.add(*self._streamed(act_in, x_bytes, x_bytes + y_bytes, ctx.threads[idx]))
        self._store(cost.bytes, out, y_bytes)
        # depthwise runs all channels in one call per image
        return self._finish(ctx, idx, cost, "depthwise", batch * rows.repeats[idx])

    def _single_block(self, ctx: _Ctx, idx: np.ndarray
                      ) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """A single-block BCR matrix: the dense GEMM (GEMV at N = 1) of its kept rows x kept
        columns, X's kept rows read where they are, then, with rows pruned, the kept rows'
        results placed into Y and the others zeroed; a conv's im2col unfolds all K rows."""
        rows = ctx.rows
        sub = rows.take(idx)
        kept_m = np.maximum(np.rint(sub.rows_mean), 1).astype(np.int64)
        kept_k = np.maximum(np.rint(sub.cols_mean), 1).astype(np.int64)
        sub = replace(sub, M=kept_m, K=kept_k, winograd=np.zeros(idx.size, bool),
                      im2col=np.zeros(idx.size, bool),
                      weight_bytes=kept_m * kept_k * _F4, _checked=False)
        # (GEMM rows only: no recurrent step counts)
        code, compute, memory, overhead = self._parts(sub.as_dense(np.ones(idx.size, bool)),
                                                      np.zeros(idx.size))
        code = np.where(rows.im2col[idx] & (code == _K["gemm"]), _K["im2col+gemm"], code)
        # placing the rows: the kept rows' results read once, all of Y written
        m, nn = ctx.m_call[idx], ctx.n_call[idx]
        placed = kept_m < m
        b = np.zeros((3, idx.size))
        _add_to(b, self._level(kept_m * nn * _F4), kept_m * nn * _F4)
        self._store(b, self._level(m * nn * _F4), m * nn * _F4)
        par = self._par(_cdiv(m * nn, 16384.0), ctx.threads[idx], np.ones(idx.size))
        times = ctx.calls[idx] * rows.repeats[idx]
        overhead += np.where(placed, self._mem_s(b, par), 0.0) * times
        if rows.im2col[idx].any():
            f_bytes = rows.format_bytes[idx].astype(np.float64)
            _, _, act_in, _ = self._levels(ctx, idx, f_bytes, rows.K[idx] * nn * _F4,
                                           m * nn * _F4)
            overhead += self._im2col_s(ctx, idx, act_in, from_python=True) * times
        return code, (compute, memory, overhead)

    def _units(self, ctx: _Ctx, idx: np.ndarray, fmt: str) -> tuple[np.ndarray, np.ndarray]:
        """(thread-work units per call, units per work row of the statistics): BCR works in
        bands of up to 16 rows of a block row (packed BCR), the others in matrix rows
        (filters)."""
        rows = ctx.rows
        m = ctx.m_call[idx]
        if fmt == "bcr":
            r = np.maximum(rows.block_r[idx], 1)
            bands = _cdiv(np.minimum(r, m), BCR_BAND_ROWS)
            return _cdiv(m, r) * bands, bands
        return m, np.ones(idx.size)

    def _imbalance(self, ctx: _Ctx, idx: np.ndarray, bands: np.ndarray,
                   chunks: np.ndarray) -> np.ndarray:
        """Largest chunk / mean chunk when the call's kept weights are cut into ``chunks``
        work-balanced contiguous chunks of whole units (the largest unit from the rows'
        per-unit maximum)."""
        rows = ctx.rows
        total = np.maximum(rows.nnz[idx] / rows.groups[idx], 1e-9)
        largest = np.maximum(rows.work_max[idx], rows.work_mean[idx]) / bands
        return np.maximum(1.0, np.minimum(largest * chunks / total, chunks))

    def _sparse_wide(self, ctx: _Ctx, idx: np.ndarray, fmt: str
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """N of at least one vector. With vectors of 8 or more lanes, packed BCR runs the
        whole vectors as panels and a ragged end of fewer than 8 columns beside them: on
        16-lane vectors folded into the panel pass, tile by tile (``_bcr_fold``), on 8-lane
        ones on the narrow kernel, which reads the just-streamed weights a second time
        (bcr.cpp BcrPacked::spmm); otherwise the ragged end is padded to a vector (computed
        in place with masks on 16-lane vectors once N spans more than 3 of them)."""
        lanes = self.machine.lanes
        if fmt != "bcr" or lanes < 8:
            return self._sparse_panel(ctx, idx, fmt)
        # only this family's rows change (the context's arrays span the whole batch)
        nn = ctx.n_call[idx]
        rest = nn - np.floor(nn / lanes) * lanes  # (a float % is slow)
        tail = np.where(rest < 8, rest, 0.0)
        n_wide = ctx.n_call.copy()
        n_wide[idx] = nn - tail
        wide = ctx.with_n_call(n_wide, ld_call=ctx.n_call)
        res = self._sparse_panel(wide, idx, fmt)
        split = np.flatnonzero(tail > 0)
        if split.size == 0:
            return res
        if lanes >= 16:
            res[0][split] += self._bcr_fold(ctx, idx[split], tail[split])
            return res
        n_end = np.zeros_like(ctx.n_call)
        n_end[idx] = tail
        end = ctx.with_n_call(n_end)
        extra = self._sparse_narrow(end, idx[split], fmt, weights_again=True)
        for part, more in zip(res, extra, strict=True):
            part[split] += more
        return res

    def _bcr_fold(self, ctx: _Ctx, idx: np.ndarray, tail: np.ndarray) -> np.ndarray:
        """Compute seconds of packed BCR's ragged end of ``tail`` (1-7) columns folded into
        the panel pass (bcr.simd.cpp fold_tile): per tile, the narrow kernel's lanes over its
        kept rows for each kept column, then the results placed on the band's rows. Its
        weights and X values are the ones the tile's register tiles have just loaded, so it
        adds no traffic; it runs in the panel tasks, split over the threads as they are."""
        mc = self.machine
        p = self.params
        rows = ctx.rows
        n_blocks = rows.n_blocks[idx] / rows.groups[idx]
        cycles = n_blocks * (self._narrow_columns(ctx, idx, tail) + tail + p.fold_tile_cycles)
        t = ctx.threads[idx]
        units, bands = self._units(ctx, idx, "bcr")
        tasks = np.minimum(t, units)
        par = self._par(tasks, t, self._imbalance(ctx, idx, bands, tasks))
        calls = ctx.calls[idx] * rows.repeats[idx].astype(np.float64)
        return cycles / (mc.clock_hz * p.efficiency["bcr"]) * par * calls

    def _sparse_panel(self, ctx: _Ctx, idx: np.ndarray, fmt: str
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The wide-N sparse kernels (sparse_driver.hpp run_panels): N cut into tiles of
        whole vectors whose X panel fits L2, rows into balanced chunks."""
        mc = self.machine
        p = self.params
        rows = ctx.rows
        g = ctx.calls[idx]
        k = rows.K[idx].astype(np.float64)
        nn = ctx.n_call[idx]
        m = ctx.m_call[idx]
        t = ctx.threads[idx]
        nnz = rows.nnz[idx] / rows.groups[idx]
        n_blocks = rows.n_blocks[idx] / rows.groups[idx]
        nv_total = _cdiv(nn, mc.lanes)
        # n_tiles - 1 tiles of nt vectors, then the last one of `last` (nt / 2 .. 1.5 nt);
        # packed BCR visits W in chunks of kc columns whose X rows stay in L2
        if fmt == "bcr":
            nt, n_tiles, last, kc = bcr_tile_layout(m, k, nv_total, mc.lanes, mc.l2_bytes, t)
        else:
            nt, n_tiles, last = n_tile_layout(k, nv_total, mc.lanes)
            kc = k
        n_full = n_tiles - 1.0
        units, bands = self._units(ctx, idx, fmt)
        n_chunks = panel_row_chunks(units, t, n_tiles, kc < k)
        cost = _Cost(idx.size)
        cost.tasks = n_tiles * n_chunks
        cost.imb = self._imbalance(ctx, idx, bands, n_chunks)
        cost.regions = np.ones(idx.size)
        row_bytes = nv_total / n_tiles * mc.lanes * _F4  # one row of a tile's X or Y panel
        if fmt == "bcr":
            r = rows.rows_mean[idx]
            c = rows.cols_mean[idx]
            # a kept column costs by its own block's kept rows: the per-column cost is taken
            # at the rows weighted by kept columns (sum r_b c_b / sum c_b), so a few small
            # edge blocks do not make every column look short
            r_col = _col_weighted_rows(nnz, n_blocks, c, r)
            col = n_full * self._bcr_table(mc.col_cost, r_col, nt) \
                + self._bcr_table(mc.col_cost, r_col, last)
            # X rows that do not start on a cache line split vector loads over two lines
            loads = n_full * nt * self._bcr_table(mc.x_passes, r_col, np.minimum(nt, _MAX_NV)) \
                + last * self._bcr_table(mc.x_passes, r_col, np.minimum(last, _MAX_NV))
            col = col + p.split_load_cycles * self._split_share(ctx.ld_call[idx]) * loads
            blk = n_full * self._bcr_table(mc.block_cost, r, nt) \
                + self._bcr_table(mc.block_cost, r, last)
            cost.main = n_blocks * c * col
            cost.side = n_blocks * (blk + n_tiles * p.bcr_tile_cycles)
            # a tile's X rows stay in L1 across its register tiles unless they overflow it
            spills = c * row_bytes > mc.l1_bytes / 2
            # (passes per vector repeat every 6 vectors: the table's last column serves wider)
            per_tile = np.minimum(np.floor(nv_total / n_tiles), _MAX_NV)
            passes = np.where(spills, self._bcr_table(mc.x_passes, r, per_tile), 1.0)
            x_reads = n_blocks * c * self._gathered(nv_total, n_tiles, ctx.ld_call[idx]) \
                * np.maximum(passes, 1)
            y_again = 1.0  # zero-filled first, accumulated block by block
        else:
            nnz_tab, row_tab = self._row_tables[fmt]
            w, w_last = nt.astype(np.int64), last.astype(np.int64)
            cost.main = nnz * (n_full * nnz_tab[w] + nnz_tab[w_last])
            rows_side = m * (n_full * row_tab[w] + row_tab[w_last])
            if fmt == "nm":
                groups_per_row = n_blocks / np.maximum(m, 1)
                rows_side = rows_side + m * groups_per_row * p.nm_group_cycles * n_tiles
            elif fmt == "pattern":
                rows_side = rows_side + n_blocks * p.pattern_kernel_cycles * n_tiles \
                    * _cdiv(nt, 4)
            cost.side = rows_side
            x_reads = nnz * self._gathered(nv_total, n_tiles, nn)
            y_again = 0.0  # every row stored once
        f_bytes = np.where(rows.format_bytes[idx] > 0, rows.format_bytes[idx],
                           rows.weight_bytes[idx]) / rows.groups[idx]
        x_bytes = k * nn * _F4
        y_bytes = m * nn * _F4
        first, again, act_in, out = self._levels(ctx, idx, f_bytes, x_bytes, y_bytes)
        reps = rows.repeats[idx].astype(np.float64)
        cost.bytes += self._weight_bytes(ctx, idx, first, f_bytes)
        cost.add(again, f_bytes * (n_tiles - 1))
        x_level = np.where(rows.im2col[idx], self._level(x_bytes * rows.groups[idx]), act_in)
        # a tile's row chunks go to up to that many threads, and each of them streams the
        # tile's X panel: the first from wherever X lies, the others (in step with it, K
        # chunk by K chunk) find its lines in the shared last-level cache
        x_copies = np.minimum(n_chunks, t)
        operands = x_bytes * x_copies + f_bytes + y_bytes
        factor = self._sweep_factor(operands, t, x_level, out)
        cost.add(*self._streamed(x_level, x_bytes, factor=factor))
        cost.add(np.minimum(x_level, _LLC), x_bytes * (x_copies - 1))
        self._gather(cost.bytes, kc * np.where(n_tiles > 1, nt, nv_total) * mc.lanes * _F4,
                     x_reads)
        self._store(cost.bytes, *self._streamed(out, y_bytes, factor=factor))
        # each task zero-fills its Y tile right before accumulating into it (sparse_driver.hpp
        # run_panels), so the accumulation finds the tile where the fill left it: charging
        # both passes to Y's level put 3x224x224 -> 64 (Y 12.8 MB) at 4.7 ms for 1.2 ms measured
        cost.add(self._level(m * row_bytes), y_bytes * y_again)
        # the ragged last tile goes through zero-padded copies of X and Y, except in packed
        # BCR on 16-lane vectors (AVX-512) with N over 3 vectors, which computes it in place
        # with masked loads and stores (bcr.cpp BcrPacked::spmm)
        masked = (fmt == "bcr") & (mc.lanes >= 16) & (nn > 3 * mc.lanes)
        ragged = (nv_total * mc.lanes > nn) & ~masked  # (a float % is slow)
        last_w = np.where(ragged, last * mc.lanes, 0.0)
        # every thread copies the X rows for itself (at once), while the Y rows are copied
        # back by the chunks that computed them
        copy_rows = k + m / np.maximum(np.minimum(t, cost.tasks), 1.0)
        copy_b = np.zeros((3, idx.size))
        _add_to(copy_b, _L2, 2.0 * copy_rows * last_w * _F4)
        copy_s = self._mem_s(copy_b, np.ones(idx.size)) \
            + copy_rows * last_w / mc.lanes / mc.clock_hz
        cost.passes_s = np.where(ragged, copy_s, 0.0)
        if rows.im2col[idx].any():
            cost.passes_s = cost.passes_s + self._im2col_s(ctx, idx, act_in, from_python=True)
            cost.regions += np.where(rows.im2col[idx], 1.0, 0.0)
        return self._finish(ctx, idx, cost, fmt, g * reps)

    def _split_share(self, ld: np.ndarray) -> np.ndarray:
        """Share of vector loads from rows ``ld`` floats apart that cross a cache line: a
        row's offset in its line repeats every V / gcd(4 ld, V) rows (V the vector's bytes)
        and is 0 once in that cycle; from any other offset, V / 64 of the loads cross."""
        v = min(self.machine.lanes * 4, _LINE)
        row_bytes = 4 * np.maximum(ld, 1).astype(np.int64)
        misaligned = 1.0 - np.gcd(row_bytes, v) / v
        return misaligned * (v / _LINE)

    def _gathered(self, nv_total: np.ndarray, n_tiles: np.ndarray,
                  nn: np.ndarray) -> np.ndarray:
        """Bytes moved from L2 when one X row is read over every N tile: each tile's segment
        of that row is a separate gather (X rows are ``nn`` floats apart), costing its cache
        lines plus, on average, one line it straddles - none where the rows start on a
        line."""
        width = nv_total / n_tiles * self.machine.lanes * _F4
        # rows of a multiple of 16 floats start on a line (a float % is slow)
        straddle = np.where(np.floor(nn * (_F4 / _LINE)) * (_LINE / _F4) == nn, 0.0, 1.0)
        return n_tiles * (np.ceil(width / _LINE) + straddle) * _LINE

    def _bcr_table(self, table: np.ndarray, r: np.ndarray, nv: np.ndarray) -> np.ndarray:
        """Per-tile cost of r (fractional) kept rows over nv vectors: exact up to the table
        size, then linear in r; fractional r interpolated."""
        nv_i = np.clip(nv, 1, _MAX_NV).astype(np.int64)
        scale = np.where(nv > _MAX_NV, nv / _MAX_NV, 1.0)
        r = np.maximum(r, 0.0)
        big = r > _TABLE_ROWS
        rc = np.where(big, _TABLE_ROWS, r)
        r0 = np.floor(rc).astype(np.int64)
        r1 = np.minimum(r0 + 1, _TABLE_ROWS)
        frac = rc - r0
        val = table[r0, nv_i] * (1 - frac) + table[r1, nv_i] * frac
        return np.where(big, val * r / _TABLE_ROWS, val) * scale

    def _row_kernel_costs(self, nv: np.ndarray, fmt: str) -> tuple[np.ndarray, np.ndarray]:
        """(cycles per kept weight, cycles per row) of sparse.simd.cpp row_panel over nv
        vectors: chunks of 4 vectors then the rest, two accumulator sets per chunk."""
        mc = self.machine
        p = self.params

        def per(vv: float) -> float:
            if vv <= 0:
                return 0.0
            # per kept weight: VV X loads + the weight broadcast + its index; the two
            # accumulator sets alternate, so one set's FMA chain waits latency/2 per weight
            extra = 0.5 if fmt == "nm" else 0.25 if fmt == "pattern" else 0.0
            return max(vv / mc.vfma, (vv + 2 + extra) / mc.loads, mc.latency / 2.0)

        c4, c3, c2, c1 = per(4), per(3), per(2), per(1)
        full = np.floor(nv / 4)
        rest = nv - 4 * full
        rest_cost = np.select([rest == 3, rest == 2, rest == 1], [c3, c2, c1], 0.0)
        chunks = full + (rest > 0)
        per_nnz = full * c4 + rest_cost
        per_row = chunks * p.row_overhead_cycles + nv  # + one store per vector
        return per_nnz, per_row

    def _narrow_columns(self, ctx: _Ctx, idx: np.ndarray, nn: np.ndarray,
                        group: int | None = None) -> np.ndarray:
        """Cycles per packed BCR tile of its kept columns times ``nn`` columns of X with lanes
        over the tile's kept rows (the narrow kernel, and the ragged end folded into the panel
        pass): per column a vector load, nn broadcasts and FMAs, in 4 / 2 / 1 independent
        accumulator sets for nn = 1 / 2-3 / 4 and more. ``group``: the lanes of one pass
        over a tile's rows (default the machine's vector)."""
        mc = self.machine
        rows = ctx.rows
        r = rows.rows_mean[idx]
        c = rows.cols_mean[idx]
        nnz = rows.nnz[idx] / rows.groups[idx]
        n_blocks = rows.n_blocks[idx] / rows.groups[idx]
        lanes = mc.lanes if group is None else min(group, mc.lanes)
        vfma = self._fma_per_cycle(lanes)
        s = np.where(nn >= 4, 1.0, np.where(nn >= 2, 2.0, 4.0))
        # a tile's chains are its c columns long and restart at the next tile, which
        # out-of-order execution runs beside them: about two tiles (~100 instructions each)
        # in a reorder window of 200-300 (host, 1024 x 1024 at 75 %: N = 4 ran 3.8 cycles a
        # column, under the FMA latency of one chain)
        per_col = np.maximum(np.maximum(nn / vfma, (2 + nn) / mc.loads),
                             mc.latency / (2.0 * s))
        return _cdiv(_col_weighted_rows(nnz, n_blocks, c, r), lanes) * c * per_col

    def _fma_per_cycle(self, width: float) -> float:
        """FMAs per cycle on vectors of ``width`` floats (scalars: 1): narrower vectors than
        the machine's issue on every FMA pipe (two on the cores modelled), so a core whose
        512-bit FMAs are double-pumped (vfma 1 at 16 lanes) still runs two 8- or 4-lane ones;
        the rate never falls below the full-width one."""
        mc = self.machine
        return max(mc.vfma, min(2.0, mc.vfma * mc.lanes / width))

    def _sparse_narrow(self, ctx: _Ctx, idx: np.ndarray, fmt: str,
                       weights_again: bool = False
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """N below one vector (RNN steps, batch-1 FC): BCR streams its packed tiles with
        lanes over kept rows; CSR/N:M/pattern do scalar dot products per row. Static chunks
        (run_chunks), bandwidth-bound on the format."""
        mc = self.machine
        p = self.params
        rows = ctx.rows
        g = ctx.calls[idx]
        nn = np.maximum(ctx.n_call[idx], 1)
        m = ctx.m_call[idx]
        k = rows.K[idx].astype(np.float64)
        t = ctx.threads[idx]
        nnz = rows.nnz[idx] / rows.groups[idx]
        n_blocks = rows.n_blocks[idx] / rows.groups[idx]
        cost = _Cost(idx.size)
        units, bands = self._units(ctx, idx, fmt)
        cost.tasks = np.minimum(t, units)
        cost.imb = self._imbalance(ctx, idx, bands, cost.tasks)
        cost.regions = np.ones(idx.size)
        if fmt == "bcr":
            # a tile's set-up (header, the band's rows, the x values) runs in the same loop as
            # its multiply-adds, so it overlaps the stream's memory time as they do: charged
            # as overhead on top, the GRU steps (1.3 MB of weights streamed per step) were
            # costed 61 us for 42 measured, and the calibration points of N = 1 BCR were
            # 1.3x under the model (median; 1.15x with it as compute)
            # the band's rows stay in registers across its tiles and are written once per
            # band; per tile, its sums are placed on them once per column of X (one
            # vexpandps with 16 lanes, 8-lane permutes from tables below that)
            expand = p.narrow_expand16_cycles if mc.lanes >= 16 else p.narrow_expand_cycles
            # tiles' rows in groups of at most 8 lanes, even on 16-lane vectors (bcr.simd.cpp
            # narrow_group)
            cost.main = n_blocks * (self._narrow_columns(ctx, idx, nn, _BCR_NARROW_N)
                                    + nn * expand + p.narrow_tile_cycles)
        else:
            # a row's sums in registers, in two sets (even and odd nonzeros, sparse.simd.cpp
            # NarrowAccN): half an FMA latency per nonzero, at every narrow N (host, 256 x 1152
            # CSR at 75 %: 1.9, 2.2, 2.6, 4.9-6.0, 4.8 cycles per nonzero at N = 2, 4, 7, 12,
            # 15; 2.0 at N = 1). The compiler packs a row of x into 4-float vectors plus single
            # floats (sse/neon width): one load and one multiply-add each
            pieces = nn // 4 + nn % 4
            piece_fma = self._fma_per_cycle(4.0)
            per_nnz = np.where(nn == 1, np.maximum(mc.latency / 2.0, 3.0 / mc.loads),
                               np.maximum(np.maximum(mc.latency / 2.0, pieces / piece_fma),
                                          (2 + pieces) / mc.loads))
            cost.main = nnz * per_nnz
            cost.side = m * (p.row_overhead_cycles + nn)
            if fmt == "nm":
                cost.side = cost.side + n_blocks * p.nm_group_cycles
            elif fmt == "pattern":
                cost.side = cost.side + n_blocks * p.pattern_kernel_cycles
        f_bytes = np.where(rows.format_bytes[idx] > 0, rows.format_bytes[idx],
                           rows.weight_bytes[idx]) / rows.groups[idx]
        x_bytes = k * nn * _F4
        y_bytes = m * nn * _F4
        first, again, act_in, out = self._levels(ctx, idx, f_bytes, x_bytes, y_bytes)
        reps = rows.repeats[idx].astype(np.float64)
        if weights_again:  # a second pass right after the panels: from where they stay
            cost.add(again, f_bytes)
        else:
            cost.bytes += self._weight_bytes(ctx, idx, first, f_bytes)
        cost.add(*self._streamed(act_in, x_bytes, x_bytes + f_bytes + y_bytes,
                                  ctx.threads[idx]))
        cost.add(out, 2 * y_bytes)  # read and written back: the read brings the line in
        if rows.im2col[idx].any():
            cost.passes_s = self._im2col_s(ctx, idx, act_in, from_python=True)
            cost.regions += np.where(rows.im2col[idx], 1.0, 0.0)
        return self._finish(ctx, idx, cost, fmt, g * reps, call_cycles=p.narrow_call_cycles)

    def _cheap(self, ctx: _Ctx, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Cheap ops after fusion: their traffic and vectorised element-wise ops, run on one
        thread by the engine."""
        mc = self.machine
        p = self.params
        rows = ctx.rows
        cost = _Cost(idx.size)
        x_bytes = rows.act_bytes_in[idx].astype(np.float64)
        y_bytes = rows.act_bytes_out[idx].astype(np.float64)
        cost.main = rows.elementwise_ops[idx] / (mc.lanes * p.cheap_ops_per_lane_cycle) \
            + y_bytes / _F4 * self._cheap_cycles[rows.op[idx]]
        for code, (kind, gates, nonlinear) in _RECURRENT.items():
            rec = np.flatnonzero(rows.op[idx] == code)
            if rec.size:
                self._gate_math(ctx, idx[rec], rec, cost, kind, gates, nonlinear)
        _, _, act_in, out = self._levels(ctx, idx, np.zeros(idx.size), x_bytes, y_bytes)
        cost.add(act_in, x_bytes)
        self._store(cost.bytes, out, y_bytes)
        one = np.ones(idx.size)
        return self._finish(ctx, idx, cost, "eltwise", one, threads=one)


    def _gate_math(self, ctx: _Ctx, idx: np.ndarray, pos: np.ndarray, cost: _Cost, kind: str,
                   gates: int, nonlinear: int) -> None:
        """The element-wise row of a GRU/LSTM layer: its gate nonlinearities cost
        ``transcendental_cycles`` each (``transcendental_cycles_avx512`` on AVX-512 cores),
        and every time step dispatches its gate math's numpy calls one by one from Python
        (``grimsim.execute.runner``), a fixed cost per step whatever the hidden size (the
        step's kernel calls from Python are on the recurrent GEMMs' rows, ``_finish``)."""
        p = self.params
        rows = ctx.rows
        units = rows.elementwise_ops[idx] / (2.0 * gates + 4.0)
        cost.main[pos] += units * nonlinear * self.machine.tanh_cycles
        steps = ctx.steps[idx] / gates
        per_step = p.recurrent_numpy_calls.get(kind, 0) * p.numpy_call_cycles
        cost.passes_s[pos] += steps * per_step / self.machine.clock_hz


def _recurrent_steps(rows: CostRows) -> np.ndarray:
    """Per row: for the element-wise rows of recurrent layers, the sum of ``repeats`` over
    the layer's distinct repeated (``.hh``) GEMMs in the batch = gates x directions x time
    steps (the element-wise row itself carries no step count); 0 for other rows and where
    the batch holds no such GEMM."""
    steps = np.zeros(len(rows))
    idx = np.flatnonzero(~rows.is_gemm & np.isin(rows.op, list(_RECURRENT)))
    if not idx.size:
        return steps
    layers = rows.layer_index[idx]
    rep = np.flatnonzero(rows.is_gemm & (rows.repeats > 1) & np.isin(rows.layer_index, layers))
    total: dict[int, int] = {}
    # one row per (GEMM, scheme): count each GEMM once
    for (layer, _), reps in {(int(rows.layer_index[r]), str(rows.gemm[r])): int(rows.repeats[r])
                             for r in rep}.items():
        total[layer] = total.get(layer, 0) + reps
    steps[idx] = [total.get(int(layer), 0) for layer in layers]
    return steps


def _col_weighted_rows(nnz: np.ndarray, n_blocks: np.ndarray, cols_mean: np.ndarray,
                       rows_mean: np.ndarray) -> np.ndarray:
    """Kept rows per block weighted by the blocks' kept columns (nnz = sum r_b c_b over
    n_blocks blocks of cols_mean columns on average); rows_mean where nothing is kept."""
    kept_cols = n_blocks * cols_mean
    # rounded: a ratio of float means such as 8.000000000000002 would round up a vector group
    r = np.round(nnz / np.maximum(kept_cols, 1e-300), 9)
    return np.where(kept_cols > 0, r, rows_mean)


def _add_to(b: np.ndarray, level: np.ndarray | int, nbytes: Any) -> None:
    """Add ``nbytes`` of each row to the row's cache level in ``b`` (levels x rows)."""
    if isinstance(level, int):
        b[level] += nbytes
        return
    # one comparison per level beats a scatter through computed flat indices (1.6 vs 3 ms
    # for 250k rows)
    b += (np.asarray(level) == _LEVEL_IDS[: b.shape[0]]) * nbytes


class _Ctx:
    """Per-estimate arrays shared by the kernel families."""

    def __init__(self, rows: CostRows, threads: np.ndarray, calls: np.ndarray,
                 n_call: np.ndarray, m_call: np.ndarray, model: AnalyticalCPUModel,
                 steps: np.ndarray, ld_call: np.ndarray | None = None) -> None:
        self.rows = rows
        self.steps = steps  # _recurrent_steps
        self.threads = threads
        self.calls = calls
        self.n_call = n_call
        self.m_call = m_call
        self.model = model
        # floats from one X (and Y) row to the next, where the kernel covers fewer columns
        # than the rows hold (packed BCR's whole vectors beside a ragged end); else n_call
        self.ld_call = n_call if ld_call is None else ld_call

    def with_n_call(self, n_call: np.ndarray, ld_call: np.ndarray | None = None) -> _Ctx:
        """The same context with the kernel covering ``n_call`` columns per call."""
        return _Ctx(self.rows, self.threads, self.calls, n_call, self.m_call, self.model,
                    self.steps, ld_call)

    def batch(self, idx: np.ndarray) -> np.ndarray:
        return np.maximum(self.rows.batch[idx], 1).astype(np.float64)

    def tile_cycles(self, mr: int, nv: int) -> float:
        """Cycles per k step of an MR x NV-vector register tile (FMA, load or latency bound):
        NV loads of B and MR broadcasts of A per step."""
        mc = self.model.machine
        return max(mr * nv / mc.vfma, (mr + nv) / mc.loads, mc.latency)
