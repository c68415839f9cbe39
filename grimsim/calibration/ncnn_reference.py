"""ncnn's public benchmark table (``../shared/reference/ncnn/benchmarks.csv``) as typed values.

The table holds latencies that ncnn's ``benchncnn`` measured on about 100 devices, keyed by the
free-text heading each contributor wrote above their results in ncnn's benchmark/README.md. This
module reads it and turns each heading into CPU clusters (microarchitecture, core count, clock)
so the cost model can fit device-level efficiency and be validated leave-one-device-out over the
devices whose heading names core types and clocks; every other device is kept with the reason
it cannot be used.

Only the standard library is needed: the table is small (~8k rows) and parsed in a few ms.
"""

from __future__ import annotations

import csv
import itertools
import logging
import math
import os
import re
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from grimsim.errors import ReferenceDataError

logger = logging.getLogger(__name__)

#: Environment variable naming the ``reference`` folder (the one holding ``ncnn/``).
REFERENCE_ENV = "GRIMSIM_REFERENCE_DIR"

COLUMNS = ("device", "threads", "gpu_device", "model", "min_ms", "avg_ms")

#: Names older README tables spell differently from ``models/<name>.param``. Checked on the data:
#: these rows come from the HiSilicon Hi3519V101 table (2018), whose latency ratios
#: (mobilenet-yolo / mobilenet-ssd = 1.95, squeezenet-ssd / squeezenet = 2.1) sit inside the
#: spread of the same ratios over all other CPU runs (1.77-6.72 and 1.79-9.74).
MODEL_ALIASES: Mapping[str, str] = {
    "mobilenet-ssd": "mobilenet_ssd",
    "squeezenet-ssd": "squeezenet_ssd",
    "mobilenet-yolo": "mobilenet_yolo",
    "squeezenet-int8": "squeezenet_int8",
}

#: Model names with no structure in ``models/``, with the reason they are not mapped.
UNMAPPED_MODELS: Mapping[str, str] = {
    # Tencent/ncnn benchmark/mobilenet_yolov3.param
    # (commit 34077b506581e20d27a579c10edc5102cf24ad7a):
    # 42 layers, a MobileNetV1 backbone (conv0..conv15 depthwise-separable, 32..1024 channels)
    # with two YOLOv3 heads at 416x416. models/mobilenetv2_yolov3.param is a MobileNetV2
    # backbone (inverted residuals) at 352x352, 87 layers. The data agree: on the one device
    # with both, mobilenet_yolov3 / mobilenet_yolo = 1.05, while mobilenetv2_yolov3 /
    # mobilenet_yolo spans 0.12-0.77 over 174 CPU runs.
    "mobilenet_yolov3": (
        "MobileNetV1-YOLOv3 at 416x416 (old ncnn benchmark/mobilenet_yolov3.param), a different "
        "network from models/mobilenetv2_yolov3.param (MobileNetV2 backbone at 352x352)"
    ),
}

_INT8_SUFFIX = "_int8"
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")




# --------------------------------------------------------------------------------------------
# The benchmark rows
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NcnnBenchmarkRow:
    """One benchncnn measurement: a model on a device at a thread count, on CPU or a GPU."""

    device: str  # the heading text, as written
    threads: int
    gpu_device: int  # -1 = CPU, >= 0 = a Vulkan GPU index
    model: str  # normalised to benchncnn's current name (``models/<network>.param``)
    int8: bool  # a quantized run (name ends in ``_int8``)
    min_ms: float
    avg_ms: float
    line: int  # line in the CSV file, for messages
    model_as_written: str

    @property
    def network(self) -> str:
        """Stem of the fp32 structure file: the model without its ``_int8`` suffix."""
        return self.model[: -len(_INT8_SUFFIX)] if self.int8 else self.model

    @property
    def on_cpu(self) -> bool:
        return self.gpu_device < 0


def reference_dir() -> Path:
    """The ``reference`` folder: ``$GRIMSIM_REFERENCE_DIR``, else ``<repo>/../shared/reference``."""
    env = os.environ.get(REFERENCE_ENV)
    if env:
        return Path(env).expanduser()
    # grimsim/calibration/ncnn_reference.py -> parents[2] is the checkout
    return Path(__file__).resolve().parents[2].parent / "shared" / "reference"


def default_benchmarks_path() -> Path:
    return reference_dir() / "ncnn" / "benchmarks.csv"


def network_param_path(network: str, reference: Path | None = None) -> Path | None:
    """``ncnn/models/<network>.param`` if the reference folder has that structure, else None."""
    path = (reference if reference is not None else reference_dir()) / "ncnn" / "models"
    path = path / f"{network}.param"
    return path if path.is_file() else None


def normalise_model_name(name: str) -> str:
    """benchncnn's current spelling of a model name as written in an older table."""
    return MODEL_ALIASES.get(name, name)


def load_ncnn_benchmarks(path: str | os.PathLike[str] | None = None) -> list[NcnnBenchmarkRow]:
    """Read ``benchmarks.csv`` (default: see :func:`reference_dir`) into rows, in file order.

    Raises ReferenceDataError when the file is missing (saying where it looked) or a row is
    malformed (naming the line and the field).
    """
    if path is None:
        csv_path = default_benchmarks_path()
        from_env = bool(os.environ.get(REFERENCE_ENV))
        origin = f"${REFERENCE_ENV}" if from_env else "<repo>/../shared/reference"
        hint = (f" (looked in {origin}/ncnn/; set {REFERENCE_ENV} to the folder holding "
                "ncnn/benchmarks.csv, or pass the path)")
    else:
        csv_path = Path(path)
        hint = ""
    if not csv_path.is_file():
        what = "is not a file" if csv_path.exists() else "not found"
        raise ReferenceDataError(f"ncnn benchmark table {what}: {csv_path}{hint}")
    try:
        with csv_path.open(encoding="utf-8-sig", newline="") as handle:
            return _read_rows(csv.reader(handle, strict=True), csv_path)
    except UnicodeDecodeError as exc:
        raise ReferenceDataError(f"{csv_path}: not UTF-8 text ({exc.reason})") from None
    except csv.Error as exc:
        raise ReferenceDataError(f"{csv_path}: malformed CSV ({exc})") from None


def _read_rows(reader: Iterable[list[str]], path: Path) -> list[NcnnBenchmarkRow]:
    rows: list[NcnnBenchmarkRow] = []
    header_seen = False
    line = 0
    for fields in reader:
        line = getattr(reader, "line_num", line + 1)
        if not any(f.strip() for f in fields):
            continue  # a blank line carries nothing
        if not header_seen:
            if tuple(f.strip() for f in fields) != COLUMNS:
                raise ReferenceDataError(
                    f"{path}:{line}: header is {fields!r}, expected {','.join(COLUMNS)}")
            header_seen = True
            continue
        rows.append(_parse_row(fields, path, line))
    if not header_seen:
        raise ReferenceDataError(f"{path}: empty file, expected the header {','.join(COLUMNS)}")
    logger.debug("read %d benchmark rows from %s", len(rows), path)
    return rows


def _parse_row(fields: list[str], path: Path, line: int) -> NcnnBenchmarkRow:
    where = f"{path}:{line}"
    if len(fields) != len(COLUMNS):
        raise ReferenceDataError(
            f"{where}: {len(fields)} fields, expected {len(COLUMNS)} ({','.join(COLUMNS)}); "
            "quote a device heading that contains commas")
    device, threads_s, gpu_s, model_s, min_s, avg_s = (f.strip() for f in fields)
    if not device:
        raise ReferenceDataError(f"{where}: empty device heading")
    threads = _int_field(threads_s, "threads", where)
    if threads < 1:
        raise ReferenceDataError(f"{where}: threads must be >= 1, got {threads}")
    # The oldest tables (e.g. Hi3519V101, 2018) predate ncnn's Vulkan backend and leave the
    # column empty: those runs are on the CPU.
    gpu_device = -1 if gpu_s == "" else _int_field(gpu_s, "gpu_device", where)
    if gpu_device < -1:
        raise ReferenceDataError(f"{where}: gpu_device must be -1 (CPU) or >= 0, got {gpu_device}")
    if not _MODEL_NAME.fullmatch(model_s):
        raise ReferenceDataError(f"{where}: model name {model_s!r} is empty or has odd characters")
    model = normalise_model_name(model_s)
    min_ms = _ms_field(min_s, "min_ms", where)
    avg_ms = _ms_field(avg_s, "avg_ms", where)
    if min_ms > avg_ms:
        raise ReferenceDataError(f"{where}: min_ms {min_ms} exceeds avg_ms {avg_ms}")
    return NcnnBenchmarkRow(device=device, threads=threads, gpu_device=gpu_device, model=model,
                            int8=model.endswith(_INT8_SUFFIX), min_ms=min_ms, avg_ms=avg_ms,
                            line=line, model_as_written=model_s)


def _int_field(text: str, name: str, where: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ReferenceDataError(f"{where}: {name} {text!r} is not an integer") from None


def _ms_field(text: str, name: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ReferenceDataError(f"{where}: {name} {text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise ReferenceDataError(f"{where}: {name} must be a positive finite latency, got {text!r}")
    return value


# --------------------------------------------------------------------------------------------
# Device headings
# --------------------------------------------------------------------------------------------

#: Core types the parser names and considers modelled, with their ISA. The cost model's sourced
#: microarchitecture table is the authority: pass its keys as ``microarchitectures=`` to narrow.
MICROARCHITECTURES: Mapping[str, str] = {
    **{f"cortex-a{n}": "armv7" for n in (5, 7, 9, 15, 17)},
    **{f"cortex-a{n}": "arm64" for n in (35, 53, 55, 57, 72, 73, 75, 76, 77, 78,
                                         510, 520, 710, 715, 720, 725)},
    **{f"cortex-x{n}": "arm64" for n in (1, 2, 3, 4, 925)},
    **{name: "x86_64" for name in ("zen", "zen2", "zen3", "zen4", "zen5", "intel-core")},
    "intel-yonah": "x86",  # Celeron M 420: 32-bit only
}

#: Core types the parser recognises but no cost-model table covers (custom or non-Arm cores).
OTHER_CORES: Mapping[str, str] = {
    "qualcomm-kryo": "arm64",  # the original, fully custom Kryo of the Snapdragon 820/821
    "qualcomm-oryon": "arm64",
    "nvidia-carmel": "arm64",
    "nvidia-denver2": "arm64",
    "apple-cyclone": "arm64",
    "samsung-m1": "arm64", "samsung-m2": "arm64", "samsung-m3": "arm64",
    "samsung-m4": "arm64", "samsung-m5": "arm64",
    "loongson-gs264": "mips64", "loongson-gs464": "mips64", "loongson-gs464e": "mips64",
    "loongson-gs464v": "mips64",
    "loongson-la264": "loongarch64", "loongson-la364": "loongarch64",
    "loongson-la464": "loongarch64", "loongson-la664": "loongarch64",
    "sunway-sw64": "sw_64",
    "sifive-u74": "riscv64", "sifive-u54": "riscv64", "sifive-p550": "riscv64",
    "thead-c906": "riscv64", "thead-c908": "riscv64", "thead-c910": "riscv64",
    "thead-c920": "riscv64",
    "spacemit-x60": "riscv64",
    "ingenic-xburst1": "mips32", "ingenic-xburst2": "mips32",
}
# Phytium FTC cores (arm64, custom) are matched by number: see _core_isa.

#: Kryo generations built on Arm Cortex cores ("Built on Arm Cortex Technology"): generation ->
#: (big-cluster core, little-cluster core). Sources: Android Authority, "How to understand Kryo
#: CPU numbering in Qualcomm Snapdragon processors" (2022-05-19,
#: https://www.androidauthority.com/qualcomm-snapdragon-kryo-cpu-numbers-1080105/) and the
#: Wikipedia article "Kryo" (https://en.wikipedia.org/wiki/Kryo): Kryo 2xx = Cortex-A73 gold +
#: Cortex-A53 silver; Kryo 385 = A75 + A55; Kryo 460/475/485 = A76 + A55 (Kryo 485 Gold is an A76
#: derivative: WikiChip, "Snapdragon 855", https://en.wikichip.org/wiki/qualcomm/snapdragon_800/855);
#: Kryo 585 = A77 + A55.
KRYO_CORTEX: Mapping[str, tuple[str, str]] = {
    "250": ("cortex-a73", "cortex-a53"),
    "260": ("cortex-a73", "cortex-a53"),
    "280": ("cortex-a73", "cortex-a53"),
    "385": ("cortex-a75", "cortex-a55"),
    "460": ("cortex-a76", "cortex-a55"),
    "475": ("cortex-a76", "cortex-a55"),
    "485": ("cortex-a76", "cortex-a55"),
    "585": ("cortex-a77", "cortex-a55"),
}
#: The Kryo generation of SoCs whose heading writes just "Kryo" (same sources). "custom" marks
#: the original Kryo of the Snapdragon 820/821, Qualcomm's own design (not a Cortex derivative).
SNAPDRAGON_KRYO: Mapping[str, str] = {
    "820": "custom", "821": "custom", "835": "280", "660": "260", "845": "385", "675": "460",
    "765": "475", "765g": "475", "855": "485", "865": "585",
}
_SNAPDRAGON_PART: Mapping[str, str] = {  # Qualcomm part numbers written instead of the name
    "msm8996": "820", "msm8998": "835", "sdm660": "660", "sdm845": "845", "sm6150": "675",
    "msm6150": "675", "sdm765g": "765g", "sdm855": "855", "sm8150": "855", "sm8250": "865",
}
# Apple SoC -> its CPU core (Wikipedia, "Apple A7", https://en.wikipedia.org/wiki/Apple_A7:
# two "Cyclone" cores).
_APPLE_CORES: Mapping[str, str] = {"7": "apple-cyclone"}
_COUNT_WORDS: Mapping[str, int] = {"single": 1, "dual": 2, "quad": 4, "hexa": 6, "six": 6,
                                   "octa": 8, "eight": 8}

#: Reason texts (stable prefixes, so reasons can be counted by kind).
REASON_GPU_ONLY = "GPU-only heading (no CPU named)"
REASON_PRODUCT_ONLY = "only a product name (no CPU core type, count or clock)"
REASON_NO_CORE = "no CPU core type in heading"
REASON_NO_CLOCK = "no clock in heading"
REASON_NO_COUNT = "no core count in heading"
REASON_NOT_IN_TABLE = "core type not in the microarchitecture table"
REASON_KRYO = "Kryo cluster not resolvable to a Cortex core"


@dataclass(frozen=True)
class CoreCluster:
    """One group of identical cores at one clock, as the heading gives it."""

    core: str | None  # normalised microarchitecture ("cortex-a76", "zen3"), None if not named
    count: int | None
    clock_ghz: float | None  # the top clock (the boost end of a "3.7 GHz ~ 4.5 GHz" range)
    label: str = ""  # the core as written ("Kyro460", "Quad Core A76")
    base_clock_ghz: float | None = None  # the low end of a clock range, if one is written
    isa: str | None = None

    @property
    def complete(self) -> bool:
        return self.core is not None and self.count is not None and self.clock_ghz is not None


@dataclass(frozen=True)
class DeviceHeading:
    """A benchmark heading parsed into product, CPU clusters and GPU; says if it is usable."""

    heading: str
    product: str
    clusters: tuple[CoreCluster, ...]
    gpu: str | None
    reasons: tuple[str, ...]  # why the device cannot be used; empty when usable
    notes: tuple[str, ...] = ()  # assumptions the parser made (inherited core, assumed count)

    @property
    def usable(self) -> bool:
        return not self.reasons

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons)

    @property
    def isa(self) -> str | None:
        isas = {c.isa for c in self.clusters if c.isa}
        return isas.pop() if len(isas) == 1 else None

    @property
    def total_cores(self) -> int | None:
        if not self.clusters or any(c.count is None for c in self.clusters):
            return None
        return sum(c.count or 0 for c in self.clusters)

    @property
    def cpu_key(self) -> tuple[tuple[str, int, float], ...] | None:
        """The CPU configuration, equal for headings describing the same hardware (e.g. the
        several RK3588 boards), so a leave-one-out split can hold them out together."""
        if not self.clusters or not all(c.complete for c in self.clusters):
            return None
        return tuple(sorted((c.core or "", c.count or 0, c.clock_ghz or 0.0)
                            for c in self.clusters))


# Segments of a heading that describe a GPU (or only the graphics API) are set aside before the
# CPU is parsed, so GPU clocks and "Tensor Cores 64" never read as CPU facts.
_GPU_WORDS = re.compile(
    r"\b(?:adreno|mali|immortali?s|powervr|bx[em]|videocore|radeon|vega|geforce|rtx|gtx|quadro|"
    r"tesla|ampere|volta|pascal|turing|tensor|igpu|uhd|graphics|sm)|\bgpu\b(?!-)",
    re.IGNORECASE)
_API_ONLY = re.compile(r"^\s*vulkan\b[\s\d.]*$", re.IGNORECASE)
_SEGMENT_SPLIT = re.compile(r"\+|&&|,|\(|\)|\s-\s")

_NUM = r"(?<![\w.])(?P<clock>\d+(?:\.\d+)?)\s*(?P<unit>ghz|mhz)\b"
_CORE_START = r"(?:cortex|arm\s|(?-i:A)\d|kryo|kyro)"
_TOKENS = re.compile(
    "|".join([
        r"(?P<sep>&&)",
        # counts written before a clock or a core: "4 × 1.536GHz", "4x Cortex-A76"
        rf"(?P<count_before>(?<![\w.])\d+)\s*(?-i:[x×*])\s*(?=@?\s*\d+(?:\.\d+)?\s*[gm]hz|{_CORE_START})",
        rf"@?\s*{_NUM}(?:\s*~\s*(?P<clock_hi>\d+(?:\.\d+)?)\s*(?P<unit_hi>ghz|mhz)\b)?",
        r"(?P<cortex>(?:arm\s+)?cortex[\s-]?(?P<cortex_kind>[ax])(?P<cortex_num>\d{1,3})"
        r"(?P<cortex_ae>ae)?)(?![\w])",
        r"(?P<apple>apple\s+a(?P<apple_num>\d{1,2}))\b",
        r"(?P<bare_a>(?<![\w\-/.])(?-i:A)(?P<bare_num>\d{1,3})(?P<bare_ae>AE)?)(?![\w])",
        r"(?P<kryo>\bk(?:ryo|yro)\s*(?P<kryo_gen>\d{3})?(?:\s+(?P<kryo_tier>prime|gold|silver))?)"
        r"(?![\w])",
        r"(?P<zen>\bzen(?:\s?(?P<zen_gen>\d)(?![\d.]))?)(?![\w])",
        r"(?P<intel_core>\bintel\s+core(?:\s+i\d)?)",
        r"(?P<named>\b(?:yonah|oryon|carmel|(?:nv-)?denver\s?2?|sw_?64|spacemit\s+x60|"
        r"sifive[\s-]?(?:u74|u54|p550)|c9(?:06|08|10|20)v?|xburst\s?\d?|exynos\s+m\d|"
        r"gs264|gs464[ev]?|la[2-6]64|ftc\d{3}))(?![\w])",
        # counts after: "x 4", "x4", "*8", "* 4+4" (not "x5-Z8350", "RTX3090", "RDK X3")
        r"(?<![\w])(?-i:[x×*])\s*(?P<count_after>\d+)(?:\s*\+\s*(?P<count_plus>\d+))?(?![\w.\-])",
        r"\bcore\s+x(?P<count_core_x>\d+)\b",  # Ingenic: "Xburst2 Core X2"
        r"\b(?P<count_word>single|dual|quad|hexa|six|octa|eight)[\s-]?cores?\b",
        r"(?<![\w.])(?P<count_n>\d+)[\s-]?cores?\b",
        r"(?P<plus>\+)",
    ]),
    re.IGNORECASE)


@dataclass
class _Draft:
    core: str | None = None
    label: str = ""
    count: int | None = None
    clock_ghz: float | None = None
    base_clock_ghz: float | None = None
    kryo_gen: str | None = None
    kryo_tier: str | None = None
    is_kryo: bool = False

    def empty(self) -> bool:
        return self.core is None and self.count is None and self.clock_ghz is None \
            and not self.is_kryo


def _ghz(value: str, unit: str) -> float:
    return float(value) / (1000.0 if unit.lower() == "mhz" else 1.0)


def _normalise_text(heading: str) -> str:
    text = heading
    for dash in ("\u2010", "\u2011", "\u2012", "\u2013", "\u2212"):
        text = text.replace(dash, "-")
    for mark in ("\u00ae", "\u2122", "(R)", "(TM)", "(tm)"):
        text = text.replace(mark, "")
    text = text.replace("\u00d7", "x").replace("\u00a0", " ")
    text = re.sub(r"\s+", " ", text).strip()
    return re.sub(r"\s+,", ",", text)


def _named_core(word: str) -> str:
    w = re.sub(r"\s+", " ", word.lower())
    if w == "yonah":
        return "intel-yonah"
    if w in ("oryon", "carmel"):
        return {"oryon": "qualcomm-oryon", "carmel": "nvidia-carmel"}[w]
    if "denver" in w:
        return "nvidia-denver2"
    if w.replace("_", "") == "sw64":
        return "sunway-sw64"
    if w.startswith("spacemit"):
        return "spacemit-x60"
    if w.startswith("sifive"):
        return "sifive-" + re.sub(r"^sifive[\s-]?", "", w)
    if w.startswith("c9"):
        return "thead-" + w.rstrip("v")
    if w.startswith("xburst"):
        return "ingenic-xburst" + (w[-1] if w[-1].isdigit() else "1")
    if w.startswith("exynos"):
        return "samsung-m" + w[-1]
    if w.startswith(("gs", "la")):
        return "loongson-" + w
    return "phytium-" + w  # ftcNNN


def _core_isa(core: str) -> str | None:
    if core in MICROARCHITECTURES:
        return MICROARCHITECTURES[core]
    if core in OTHER_CORES:
        return OTHER_CORES[core]
    if core.startswith("phytium-"):
        return "arm64"
    if re.fullmatch(r"cortex-a\d+", core):
        return "arm64" if int(core[8:]) >= 32 else "armv7"
    if core.startswith("cortex-x"):
        return "arm64"
    return None


def _gpu_spans(text: str) -> tuple[list[tuple[int, int]], list[str], bool]:
    """Spans of GPU segments, their texts, and whether the product itself is a GPU."""
    spans: list[tuple[int, int]] = []
    names: list[str] = []
    start = 0
    first = True
    product_is_gpu = False
    for m in [*_SEGMENT_SPLIT.finditer(text), None]:
        end = m.start() if m is not None else len(text)
        segment = text[start:end]
        if segment.strip():
            if _API_ONLY.match(segment):
                spans.append((start, end))
            elif _GPU_WORDS.search(segment):
                spans.append((start, end))
                names.append(segment.strip())
                product_is_gpu = product_is_gpu or first
            first = False
        if m is not None:
            start = m.end()
    return spans, names, product_is_gpu


def parse_device_heading(
    heading: str, *, microarchitectures: Collection[str] | None = None,
) -> DeviceHeading:
    """Parse a benchmark heading into product, CPU clusters and GPU, and judge it usable.

    A heading is usable when it names at least one CPU cluster and every cluster has a core
    type from ``microarchitectures`` (default: :data:`MICROARCHITECTURES`), a core count and a
    clock. Kryo names are mapped to their Cortex base (see :data:`KRYO_CORTEX`).
    """
    table = MICROARCHITECTURES if microarchitectures is None else microarchitectures
    text = _normalise_text(heading)
    spans, gpu_names, product_is_gpu = _gpu_spans(text)
    if product_is_gpu:
        return DeviceHeading(heading=heading, product=_product_name(text, None), clusters=(),
                             gpu=text, reasons=(REASON_GPU_ONLY,))
    cpu_text = list(text)
    for a, b in spans:  # blank GPU segments, keeping offsets
        cpu_text[a:b] = " " * (b - a)
    drafts, first_token = _scan_clusters("".join(cpu_text))
    notes: list[str] = []
    reasons: list[str] = []
    # the product is what precedes the first CPU fact or GPU segment
    starts = [a for a, _ in spans] + ([first_token] if first_token is not None else [])
    product = _product_name(text, min(starts, default=None))
    _resolve_kryo(drafts, text, notes, reasons)
    _fill_gaps(drafts, notes)
    clusters = tuple(
        CoreCluster(core=d.core, count=d.count, clock_ghz=d.clock_ghz, label=d.label,
                    base_clock_ghz=d.base_clock_ghz,
                    isa=_core_isa(d.core) if d.core else None)
        for d in drafts)
    gpu = " + ".join(gpu_names) or None
    reasons += _judge(clusters, gpu, table)
    notes += [f"{c.label} read as {c.core} (the automotive variant, same core)"
              for c in clusters if c.label.upper().endswith("AE") and c.core]
    return DeviceHeading(heading=heading, product=product, clusters=clusters, gpu=gpu,
                         reasons=tuple(dict.fromkeys(reasons)), notes=tuple(dict.fromkeys(notes)))


def _scan_clusters(text: str) -> tuple[list[_Draft], int | None]:
    drafts: list[_Draft] = []
    cur: _Draft | None = None
    first_token: int | None = None

    def close() -> None:
        nonlocal cur
        if cur is not None and not cur.empty():
            drafts.append(cur)
        cur = None

    def slot(field: str) -> _Draft:
        nonlocal cur
        if cur is None or getattr(cur, field) is not None or (field == "core" and cur.is_kryo):
            close()
            cur = _Draft()
        return cur

    for m in _TOKENS.finditer(text):
        g = m.groupdict()
        if g["sep"] or g["plus"]:
            close()
            continue
        if first_token is None:
            first_token = m.start()
        if g["clock"] is not None:
            d = slot("clock_ghz")
            d.clock_ghz, d.base_clock_ghz = _clock_value(m)
            continue
        core, label, kryo = _core_of(m)
        if core is not None or kryo is not None:
            d = slot("core")
            d.label = label
            if kryo is not None:
                d.is_kryo = True
                d.kryo_gen, d.kryo_tier = kryo
            else:
                d.core = core
            continue
        count = _count_of(m)
        if count is not None:
            d = slot("count")
            d.count = count
    close()
    return drafts, first_token


def _clock_value(m: re.Match[str]) -> tuple[float, float | None]:
    lo = _ghz(m.group("clock"), m.group("unit"))
    if m.group("clock_hi") is None:
        return lo, None
    hi = _ghz(m.group("clock_hi"), m.group("unit_hi"))
    return max(lo, hi), min(lo, hi)


def _core_of(m: re.Match[str]) -> tuple[str | None, str, tuple[str | None, str | None] | None]:
    label = m.group(0).strip()
    if m.group("cortex"):
        kind, num = m.group("cortex_kind").lower(), m.group("cortex_num")
        # Cortex-A78AE is the automotive (split-lock) Cortex-A78 (Arm,
        # https://developer.arm.com/Processors/Cortex-A78AE): same pipeline.
        return f"cortex-{kind}{num}", label, None
    if m.group("apple"):
        num = m.group("apple_num")
        return _APPLE_CORES.get(num, f"apple-a{num}"), label, None
    if m.group("bare_a"):
        return f"cortex-a{m.group('bare_num')}", label, None
    if m.group("kryo"):
        tier = m.group("kryo_tier")
        return None, label, (m.group("kryo_gen"), tier.lower() if tier else None)
    if m.group("zen"):
        gen = m.group("zen_gen")
        return f"zen{gen or ''}", label, None
    if m.group("intel_core"):
        return "intel-core", label, None
    if m.group("named"):
        return _named_core(m.group("named")), label, None
    return None, label, None


def _count_of(m: re.Match[str]) -> int | None:
    for name in ("count_before", "count_core_x", "count_n"):
        if m.group(name):
            return int(m.group(name))
    if m.group("count_after"):
        return int(m.group("count_after")) + int(m.group("count_plus") or 0)
    if m.group("count_word"):
        return _COUNT_WORDS[m.group("count_word").lower()]
    return None


def _product_name(text: str, first_token: int | None) -> str:
    head = text.split("(", 1)[0]
    if first_token is not None and first_token < len(head):
        cut = head[:first_token].rstrip(" ,-@")
        if cut:
            head = cut
    return head.strip(" ,-")


def _snapdragon_kryo(text: str) -> str | None:
    low = text.lower()
    m = re.search(r"snapdragon\s*(\d{3}g?)", low)
    if m and m.group(1) in SNAPDRAGON_KRYO:
        return SNAPDRAGON_KRYO[m.group(1)]
    for part, model in _SNAPDRAGON_PART.items():
        if re.search(rf"\b{part}\b", low):
            return SNAPDRAGON_KRYO.get(model)
    return None


def _resolve_kryo(drafts: list[_Draft], text: str, notes: list[str], reasons: list[str]) -> None:
    kryos = [d for d in drafts if d.is_kryo]
    if not kryos:
        return
    soc_gen = _snapdragon_kryo(text)
    clocks = {d.clock_ghz for d in kryos if d.clock_ghz is not None}
    lowest = min(clocks) if len(clocks) > 1 else None
    for d in kryos:
        gen = d.kryo_gen or soc_gen
        if gen is None:
            reasons.append(f"{REASON_KRYO}: Kryo generation unknown for '{d.label}'")
            continue
        if d.kryo_gen is None:
            notes.append(f"'{d.label}' read as Kryo {gen} from the SoC name")
        if gen == "custom":
            d.core = "qualcomm-kryo"
            continue
        if gen not in KRYO_CORTEX:
            reasons.append(f"{REASON_KRYO}: Kryo {gen} not in the Kryo-to-Cortex table")
            continue
        big, little = KRYO_CORTEX[gen]
        if d.kryo_tier is not None:
            d.core = little if d.kryo_tier == "silver" else big
        elif lowest is not None and d.clock_ghz is not None:
            # Kryo's efficiency (Silver) cores are the lowest-clocked cluster of the SoC
            d.core = little if d.clock_ghz == lowest else big
            notes.append(f"'{d.label}' at {d.clock_ghz} GHz taken as "
                         f"{'Silver' if d.core == little else 'Gold'} ({d.core}) by its clock")
        else:
            reasons.append(f"{REASON_KRYO}: Kryo {gen} cluster tier (Gold/Silver) not given")


def _fill_gaps(drafts: list[_Draft], notes: list[str]) -> None:
    # "Cortex-X4 3.25 GHz + 2.85 GHz x 3": a clause with no core continues the previous core
    for prev, d in itertools.pairwise(drafts):
        if d.core is None and not d.is_kryo and prev.core is not None and d.clock_ghz is not None:
            d.core, d.label = prev.core, prev.label
            notes.append(f"cluster at {d.clock_ghz} GHz takes the core type of the one before "
                         f"({prev.core})")
    # ... and a cluster without a count among counted ones is a single core
    if len(drafts) > 1:
        others_counted = [d for d in drafts if d.count is not None]
        for d in drafts:
            if d.count is None and d.core is not None and d.clock_ghz is not None \
                    and len(others_counted) == len(drafts) - 1:
                d.count = 1
                notes.append(f"{d.core} at {d.clock_ghz} GHz has no count; taken as 1 core")


def _judge(clusters: Sequence[CoreCluster], gpu: str | None,
           table: Collection[str]) -> list[str]:
    if not clusters:
        return [REASON_GPU_ONLY if gpu else REASON_PRODUCT_ONLY]
    reasons: list[str] = []
    for c in clusters:
        if c.core is None:
            if c.label == "":  # Kryo problems are already reported
                reasons.append(REASON_NO_CORE)
            continue
        if c.core not in table:
            reasons.append(f"{REASON_NOT_IN_TABLE}: {c.core} ({c.isa or 'unknown ISA'})")
        if c.clock_ghz is None:
            reasons.append(f"{REASON_NO_CLOCK} for {c.core}" + (f" x{c.count}" if c.count else ""))
        if c.count is None:
            reasons.append(f"{REASON_NO_COUNT} for {c.core}")
    return reasons


# --------------------------------------------------------------------------------------------
# Per-device view
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeviceSummary:
    """What the table holds for one device heading, and whether it can be used."""

    device: DeviceHeading
    cpu_fp32_rows: int
    cpu_int8_rows: int
    gpu_rows: int
    models: tuple[str, ...]  # distinct normalised model names, sorted
    repeated_keys: int  # (threads, gpu_device, model) measured more than once (several tables)

    @property
    def usable(self) -> bool:
        return self.device.usable and self.cpu_fp32_rows > 0

    @property
    def reason(self) -> str:
        if self.device.reasons:
            return self.device.reason
        return "" if self.cpu_fp32_rows else "no CPU fp32 rows"


def device_headings(rows: Iterable[NcnnBenchmarkRow]) -> list[str]:
    """Distinct device headings, in order of first appearance."""
    return list(dict.fromkeys(r.device for r in rows))


def summarize_devices(
    rows: Sequence[NcnnBenchmarkRow], *, microarchitectures: Collection[str] | None = None,
) -> list[DeviceSummary]:
    """One summary per device heading, in order of first appearance."""
    by_device: dict[str, list[NcnnBenchmarkRow]] = defaultdict(list)
    for r in rows:
        by_device[r.device].append(r)
    out = []
    for heading, dev_rows in by_device.items():
        keys = Counter((r.threads, r.gpu_device, r.model) for r in dev_rows)
        out.append(DeviceSummary(
            device=parse_device_heading(heading, microarchitectures=microarchitectures),
            cpu_fp32_rows=sum(r.on_cpu and not r.int8 for r in dev_rows),
            cpu_int8_rows=sum(r.on_cpu and r.int8 for r in dev_rows),
            gpu_rows=sum(not r.on_cpu for r in dev_rows),
            models=tuple(sorted({r.model for r in dev_rows})),
            repeated_keys=sum(1 for n in keys.values() if n > 1),
        ))
    return out


def usable_devices(
    rows: Sequence[NcnnBenchmarkRow], *, microarchitectures: Collection[str] | None = None,
) -> list[DeviceHeading]:
    """The devices a leave-one-device-out CPU fp32 validation can use, in file order."""
    return [s.device for s in summarize_devices(rows, microarchitectures=microarchitectures)
            if s.usable]
