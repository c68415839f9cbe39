"""The built-in zoo: well-known networks rebuilt layer by layer with their published figures.

Every network is built UNFUSED, with the module structure of its reference definition
(torchvision for the ImageNet CNNs: conv, then a separate batch-norm and activation layer);
callers fold BN/activations with :func:`grimsim.network.fuse`. Layer names follow the
reference's module names (``layer4.2.conv3``, ``features.0``, ``encoder.layer.3.attention``)
so that rows line up with ONNX exports and papers.

Each :class:`ZooEntry` carries the published parameter and MAC counts with their sources and
the input at which the MACs are quoted; ``tests/test_zoo.py`` checks our totals against them.
MACs follow the published tables' convention: GEMM work only (conv, depthwise, FC, matmul,
RNN gates, attention matmuls); torchvision's "GFLOPS" column counts exactly these MACs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from grimsim.errors import ShapeError, UnknownModelError
from grimsim.network.graph import Network, NetworkBuilder
from grimsim.network.workload import (
    LayerWorkload,
    Op,
    Shape,
    activation_op,
    attention,
    batchnorm,
    concat,
    conv2d,
    elementwise_op,
    eltwise,
    embedding,
    global_pool,
    layernorm,
    linear,
    pool2d,
    recurrent,
    reshape,
)

ZOO_NAMES: tuple[str, ...] = (
    "vgg16", "resnet18", "resnet50", "mobilenet_v1", "mobilenet_v2", "squeezenet1_1",
    "alexnet", "googlenet", "gru_timit", "lstm_2x1024", "bert_base", "minilm_l6",
)

_TV = "https://pytorch.org/vision/stable/models/generated/torchvision.models.{}.html"
_TV_NOTE = ("torchvision model docs, {}_Weights.IMAGENET1K_V1: num_params, and GFLOPS (= GMACs "
            "in torchvision's convention; 3-decimal value from the weights' `_ops` meta) at "
            "1x3x224x224 — " + _TV)

# Audio frames per second at the 10 ms frame shift of the standard TIMIT front ends
# (Kaldi's compute-mfcc-feats default --frame-shift=10, used by PyTorch-Kaldi's TIMIT recipes).
_FRAMES_PER_SECOND = 100


@dataclass(frozen=True)
class ZooEntry:
    """A zoo network: what it is, its default input, and its published figures.

    ``input_shape`` is the default full input (NCHW; (batch, time, features) for RNNs;
    (batch, seq_len) token ids for transformers). ``macs_input_shape`` is the input at which
    ``published_macs`` is quoted. ``source`` names the architecture definition followed.
    """

    name: str
    kind: str  # "cnn" | "rnn" | "transformer"
    description: str
    input_shape: Shape
    seq_len: int | None
    published_params: int
    params_source: str
    published_macs: int
    macs_source: str
    macs_input_shape: Shape
    source: str


def _tv_entry(name: str, weights: str, description: str, params: int, gmacs: float,
              definition: str) -> ZooEntry:
    note = _TV_NOTE.format(weights, name)
    return ZooEntry(name=name, kind="cnn", description=description,
                    input_shape=(1, 3, 224, 224), seq_len=None, published_params=params,
                    params_source=note, published_macs=round(gmacs * 1e9), macs_source=note,
                    macs_input_shape=(1, 3, 224, 224), source=definition)


_TV_SRC = "torchvision.models.{} (https://github.com/pytorch/vision/blob/main/torchvision/models/{}.py)"

_ENTRIES: dict[str, ZooEntry] = {e.name: e for e in (
    _tv_entry("vgg16", "VGG16", "VGG-16 (configuration D, no batch norm), 1000 classes",
              138_357_544, 15.47, _TV_SRC.format("vgg16", "vgg")),
    _tv_entry("resnet18", "ResNet18", "ResNet-18 (basic blocks), 1000 classes",
              11_689_512, 1.814, _TV_SRC.format("resnet18", "resnet")),
    _tv_entry("resnet50", "ResNet50",
              "ResNet-50 v1.5 (bottleneck stride on the 3x3 conv), 1000 classes",
              25_557_032, 4.089, _TV_SRC.format("resnet50", "resnet")),
    ZooEntry(
        name="mobilenet_v1", kind="cnn",
        description="MobileNet v1 1.0-224 (depthwise separable, BN+ReLU after every conv)",
        input_shape=(1, 3, 224, 224), seq_len=None,
        published_params=4_200_000,
        params_source="Howard et al. 2017, MobileNets, arXiv:1704.04861, Table 8 "
                      "(1.0 MobileNet-224: 4.2 million parameters)",
        published_macs=569_000_000,
        macs_source="Howard et al. 2017, MobileNets, arXiv:1704.04861, Table 8 "
                    "(1.0 MobileNet-224: 569 million mult-adds)",
        macs_input_shape=(1, 3, 224, 224),
        source="Howard et al. 2017, arXiv:1704.04861, Table 1 (body architecture)"),
    _tv_entry("mobilenet_v2", "MobileNet_V2",
              "MobileNet v2 1.0 (inverted residuals, ReLU6), 1000 classes",
              3_504_872, 0.301, _TV_SRC.format("mobilenet_v2", "mobilenetv2")),
    _tv_entry("squeezenet1_1", "SqueezeNet1_1", "SqueezeNet 1.1 (fire modules), 1000 classes",
              1_235_496, 0.349, _TV_SRC.format("squeezenet1_1", "squeezenet")),
    _tv_entry("alexnet", "AlexNet",
              "AlexNet, torchvision's single-tower 'one weird trick' variant, 1000 classes",
              61_100_840, 0.714, _TV_SRC.format("alexnet", "alexnet")),
    _tv_entry("googlenet", "GoogLeNet",
              "GoogLeNet (Inception v1) as torchvision: BN, 3x3 '5x5' branches, no aux heads",
              6_624_904, 1.498, _TV_SRC.format("googlenet", "googlenet")),
    ZooEntry(
        name="gru_timit", kind="rnn",
        description="2-layer GRU, hidden 1024, 39 MFCC features (GRIM/RTMobile TIMIT setup); "
                    "no output classifier",
        input_shape=(1, _FRAMES_PER_SECOND, 39), seq_len=_FRAMES_PER_SECOND,
        published_params=9_600_000,
        params_source="Dong et al., RTMobile (DAC 2020, arXiv:2002.11474), Sec. V: the TIMIT GRU "
                      "has 2 GRU layers and about 9.6M parameters; with 39 input features "
                      "the two layers alone give 9,569,280 (PyTorch GRU parameter layout)",
        published_macs=9_600_000 * _FRAMES_PER_SECOND,
        macs_source="derived, not printed in the paper: RTMobile's 9.6M weights x 1 MAC per "
                    "weight per frame x 100 frames (1 s of audio at a 10 ms frame shift)",
        macs_input_shape=(1, _FRAMES_PER_SECOND, 39),
        source="RTMobile (arXiv:2002.11474) / GRIM (TPAMI 2022) TIMIT GRU; gates and "
               "parameters as torch.nn.GRU"),
    ZooEntry(
        name="lstm_2x1024", kind="rnn",
        description="2-layer LSTM, hidden 1024, 153 input features (ESE/C-LSTM TIMIT input), "
                    "no projection, no output classifier",
        input_shape=(1, _FRAMES_PER_SECOND, 153), seq_len=_FRAMES_PER_SECOND,
        published_params=13_225_984,
        params_source="closed form, no paper prints this exact model's count: torch.nn.LSTM "
                      "parameter shapes (https://pytorch.org/docs/stable/generated/"
                      "torch.nn.LSTM.html): per layer 4H x I + 4H x H weights + 2 x 4H biases, "
                      "H=1024, I=153 then 1024",
        published_macs=13_209_600 * _FRAMES_PER_SECOND,
        macs_source="closed form: 1 MAC per weight per frame x 100 frames",
        macs_input_shape=(1, _FRAMES_PER_SECOND, 153),
        source="input size 153: the TIMIT LSTM of ESE (Han et al., FPGA 2017, arXiv:1612.00694), "
               "reused by C-LSTM (Wang et al., FPGA 2018); gates as torch.nn.LSTM"),
    ZooEntry(
        name="bert_base", kind="transformer",
        description="BERT-base encoder: 12 layers, hidden 768, 12 heads, FFN 3072, "
                    "30522-token vocabulary, 512 positions, pooler",
        input_shape=(1, 128), seq_len=128,
        published_params=110_000_000,
        params_source="Devlin et al. 2019, BERT (NAACL, arXiv:1810.04805), Sec. 3: "
                      "BERT-BASE total parameters = 110M",
        published_macs=11_250_000_000,
        macs_source="Jiao et al. 2020, TinyBERT (Findings of EMNLP, arXiv:1909.10351), Table 1: "
                    "BERT-BASE 22.5B FLOPs = 11.25 G MACs at sequence length 128",
        macs_input_shape=(1, 128),
        source="Devlin et al. 2019 / HuggingFace transformers BertModel "
               "(config of bert-base-uncased)"),
    ZooEntry(
        name="minilm_l6", kind="transformer",
        description="all-MiniLM-L6-v2: 6 layers, hidden 384, 12 heads, FFN 1536, "
                    "30522-token vocabulary, 512 positions, pooler",
        input_shape=(1, 128), seq_len=128,
        published_params=22_700_000,
        params_source="sentence-transformers/all-MiniLM-L6-v2 model card "
                      "(https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2): "
                      "model size 22.7M params",
        published_macs=1_434_599_424,
        macs_source="derived, no published MAC count found: the model card's config.json "
                    "(6 layers x (4 x 384^2 + 2 x 384 x 1536) x 128 tokens + 2 x 128^2 x 384 "
                    "attention matmuls per layer, + pooler 384^2) at sequence length 128, "
                    "the length the model card says it was trained with",
        macs_input_shape=(1, 128),
        source="https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2 (config.json: "
               "BertModel)"),
)}


def zoo_entry(name: str) -> ZooEntry:
    """The entry of zoo network ``name``; raises UnknownModelError listing the zoo names."""
    key = _canonical(name)
    return _ENTRIES[key]


def _canonical(name: str) -> str:
    key = str(name).strip().lower()
    if key not in _ENTRIES:
        raise UnknownModelError(f"unknown zoo network {name!r}; the zoo has: "
                                f"{', '.join(ZOO_NAMES)}")
    return key


# --------------------------------------------------------------------------- the builder


class _Graph:
    """Thin helper over NetworkBuilder: every layer's top blob is named after the layer."""

    def __init__(self, name: str, source: str) -> None:
        self.b = NetworkBuilder(name, source=source)

    def input(self, blob: str, shape: Shape) -> str:
        self.b.input(blob, shape)
        return blob

    def shape(self, blob: str) -> Shape:
        return self.b.shape(blob)

    def layer(self, factory: Callable[..., LayerWorkload], name: str, bottoms: Sequence[str],
              *args: object, **kwargs: object) -> str:
        self.b.add(factory(name, *args, **kwargs), list(bottoms), [name])
        return name

    def conv(self, name: str, x: str, out: int, k: int, s: int = 1, p: int = 0,
             groups: int = 1, bias: bool = True) -> str:
        return self.layer(conv2d, name, [x], self.shape(x), out, k, stride=s, padding=p,
                          groups=groups, bias=bias)

    def bn(self, name: str, x: str) -> str:
        return self.layer(batchnorm, name, [x], self.shape(x))

    def act(self, name: str, x: str, kind: str = "relu") -> str:
        return self.layer(activation_op, name, [x], self.shape(x), kind)

    def maxpool(self, name: str, x: str, k: int, s: int, p: int = 0,
                ceil_mode: bool = False) -> str:
        return self.layer(pool2d, name, [x], self.shape(x), k, s, p, ceil_mode=ceil_mode,
                          kind="max")

    def global_avgpool(self, name: str, x: str) -> str:
        return self.layer(global_pool, name, [x], self.shape(x), "avg")

    def adaptive_avgpool(self, name: str, x: str, out_hw: tuple[int, int]) -> str:
        """torch's AdaptiveAvgPool2d: any HxW to ``out_hw`` (windows of ceil(H/oh) rows)."""
        n, c, h, w = self.shape(x)
        oh, ow = out_hw
        window = math.ceil(h / oh) * math.ceil(w / ow)
        return self.layer(elementwise_op, name, [x], Op.POOL, [(n, c, h, w)], [(n, c, oh, ow)],
                          ops_per_output=window,
                          attrs={"kind": "avg", "adaptive": True, "output_size": out_hw})

    def flatten(self, name: str, x: str) -> str:
        shp = self.shape(x)
        return self.layer(reshape, name, [x], shp, (shp[0], math.prod(shp[1:])))

    def fc(self, name: str, x: str, out: int, bias: bool = True) -> str:
        return self.layer(linear, name, [x], self.shape(x), out, bias=bias)

    def add(self, name: str, xs: Sequence[str]) -> str:
        return self.layer(eltwise, name, xs, [self.shape(x) for x in xs], "add")

    def cat(self, name: str, xs: Sequence[str], axis: int = 1) -> str:
        return self.layer(concat, name, xs, [self.shape(x) for x in xs], axis)

    def build(self) -> Network:
        return self.b.build()


# --------------------------------------------------------------------------- CNNs


def _vgg16(g: _Graph, x: str) -> None:
    # torchvision cfg "D": numbers are 3x3 conv widths, "M" a 2x2 max pool; indices of
    # `features` follow torchvision (conv, relu, ... pool).
    cfg: list[int | str] = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M",
                            512, 512, 512, "M", 512, 512, 512, "M"]
    i = 0
    for v in cfg:
        if v == "M":
            x = g.maxpool(f"features.{i}", x, 2, 2)
            i += 1
        else:
            x = g.conv(f"features.{i}", x, int(v), 3, p=1)
            x = g.act(f"features.{i + 1}", x)
            i += 2
    x = g.adaptive_avgpool("avgpool", x, (7, 7))
    x = g.flatten("flatten", x)
    # classifier: Linear, ReLU, Dropout, Linear, ReLU, Dropout, Linear (dropouts are no-ops)
    x = g.act("classifier.1", g.fc("classifier.0", x, 4096))
    x = g.act("classifier.4", g.fc("classifier.3", x, 4096))
    g.fc("classifier.6", x, 1000)


def _alexnet(g: _Graph, x: str) -> None:
    x = g.act("features.1", g.conv("features.0", x, 64, 11, s=4, p=2))
    x = g.maxpool("features.2", x, 3, 2)
    x = g.act("features.4", g.conv("features.3", x, 192, 5, p=2))
    x = g.maxpool("features.5", x, 3, 2)
    x = g.act("features.7", g.conv("features.6", x, 384, 3, p=1))
    x = g.act("features.9", g.conv("features.8", x, 256, 3, p=1))
    x = g.act("features.11", g.conv("features.10", x, 256, 3, p=1))
    x = g.maxpool("features.12", x, 3, 2)
    x = g.adaptive_avgpool("avgpool", x, (6, 6))
    x = g.flatten("flatten", x)
    x = g.act("classifier.2", g.fc("classifier.1", x, 4096))
    x = g.act("classifier.5", g.fc("classifier.4", x, 4096))
    g.fc("classifier.6", x, 1000)


def _resnet(g: _Graph, x: str, bottleneck: bool, blocks: Sequence[int]) -> None:
    x = g.act("relu", g.bn("bn1", g.conv("conv1", x, 64, 7, s=2, p=3, bias=False)))
    x = g.maxpool("maxpool", x, 3, 2, 1)
    expansion = 4 if bottleneck else 1
    in_ch = 64
    for stage, (width, count) in enumerate(zip((64, 128, 256, 512), blocks, strict=True),
                                           start=1):
        for j in range(count):
            stride = 2 if stage > 1 and j == 0 else 1
            p = f"layer{stage}.{j}"
            out_ch = width * expansion
            if bottleneck:
                # v1.5: the stride sits on the 3x3 conv (conv2)
                y = g.act(f"{p}.relu1", g.bn(f"{p}.bn1", g.conv(f"{p}.conv1", x, width, 1,
                                                                 bias=False)))
                y = g.act(f"{p}.relu2", g.bn(f"{p}.bn2", g.conv(f"{p}.conv2", y, width, 3,
                                                                 s=stride, p=1, bias=False)))
                y = g.bn(f"{p}.bn3", g.conv(f"{p}.conv3", y, out_ch, 1, bias=False))
            else:
                y = g.act(f"{p}.relu1", g.bn(f"{p}.bn1", g.conv(f"{p}.conv1", x, width, 3,
                                                                 s=stride, p=1, bias=False)))
                y = g.bn(f"{p}.bn2", g.conv(f"{p}.conv2", y, width, 3, p=1, bias=False))
            shortcut = x
            if stride != 1 or in_ch != out_ch:
                shortcut = g.bn(f"{p}.downsample.1", g.conv(f"{p}.downsample.0", x, out_ch, 1,
                                                            s=stride, bias=False))
            x = g.act(f"{p}.relu_out", g.add(f"{p}.add", [y, shortcut]))
            in_ch = out_ch
    x = g.flatten("flatten", g.global_avgpool("avgpool", x))
    g.fc("fc", x, 1000)


def _conv_bn_act(g: _Graph, names: tuple[str, str, str], x: str, out: int, k: int,
                 s: int = 1, groups: int = 1, act: str | None = "relu6") -> str:
    """torchvision's Conv2dNormActivation: conv (no bias, 'same' padding), BN, activation;
    ``names`` are the three layers' names."""
    x = g.conv(names[0], x, out, k, s=s, p=(k - 1) // 2, groups=groups, bias=False)
    x = g.bn(names[1], x)
    return g.act(names[2], x, act) if act else x


def _seq(prefix: str) -> tuple[str, str, str]:
    """Names of an nn.Sequential(conv, bn, act) at ``prefix``."""
    return (f"{prefix}.0", f"{prefix}.1", f"{prefix}.2")


def _mobilenet_v2(g: _Graph, x: str) -> None:
    # (expand ratio t, output channels c, repeats n, first stride s): torchvision's table
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]
    x = _conv_bn_act(g, _seq("features.0"), x, 32, 3, s=2)
    in_ch, idx = 32, 1
    for t, c, n, s in settings:
        for j in range(n):
            stride = s if j == 0 else 1
            p = f"features.{idx}.conv"
            hidden = in_ch * t
            y, k = x, 0
            if t != 1:
                y = _conv_bn_act(g, _seq(f"{p}.{k}"), y, hidden, 1)
                k += 1
            y = _conv_bn_act(g, _seq(f"{p}.{k}"), y, hidden, 3, s=stride, groups=hidden)
            y = g.conv(f"{p}.{k + 1}", y, c, 1, bias=False)  # linear bottleneck: no activation
            y = g.bn(f"{p}.{k + 2}", y)
            x = g.add(f"features.{idx}.add", [x, y]) if stride == 1 and in_ch == c else y
            in_ch, idx = c, idx + 1
    x = _conv_bn_act(g, _seq(f"features.{idx}"), x, 1280, 1)
    x = g.flatten("flatten", g.global_avgpool("avgpool", x))
    g.fc("classifier.1", x, 1000)


def _mobilenet_v1(g: _Graph, x: str) -> None:
    # Howard et al. 2017, Table 1: (depthwise stride, pointwise output channels) per pair;
    # names follow the Caffe/ncnn release (conv2_1/dw, conv2_1/sep, ...). The last depthwise
    # conv has stride 1 (Table 1 prints s2 but its 7x7 input and output show stride 1).
    pairs = [("2_1", 1, 64), ("2_2", 2, 128), ("3_1", 1, 128), ("3_2", 2, 256),
             ("4_1", 1, 256), ("4_2", 2, 512), ("5_1", 1, 512), ("5_2", 1, 512),
             ("5_3", 1, 512), ("5_4", 1, 512), ("5_5", 1, 512), ("5_6", 2, 1024),
             ("6", 1, 1024)]
    def caffe(name: str) -> tuple[str, str, str]:
        return (name, f"{name}/bn", f"{name}/relu")

    x = _conv_bn_act(g, caffe("conv1"), x, 32, 3, s=2, act="relu")
    for tag, stride, out in pairs:
        ch = g.shape(x)[1]
        x = _conv_bn_act(g, caffe(f"conv{tag}/dw"), x, ch, 3, s=stride, groups=ch, act="relu")
        x = _conv_bn_act(g, caffe(f"conv{tag}/sep"), x, out, 1, act="relu")
    x = g.flatten("flatten", g.global_avgpool("pool6", x))
    g.fc("fc7", x, 1000)


def _squeezenet1_1(g: _Graph, x: str) -> None:
    def fire(i: int, x: str, squeeze: int, expand: int) -> str:
        p = f"features.{i}"
        s = g.act(f"{p}.squeeze_activation", g.conv(f"{p}.squeeze", x, squeeze, 1))
        a = g.act(f"{p}.expand1x1_activation", g.conv(f"{p}.expand1x1", s, expand, 1))
        b = g.act(f"{p}.expand3x3_activation", g.conv(f"{p}.expand3x3", s, expand, 3, p=1))
        return g.cat(f"{p}.cat", [a, b])

    x = g.act("features.1", g.conv("features.0", x, 64, 3, s=2))
    x = g.maxpool("features.2", x, 3, 2, ceil_mode=True)
    x = fire(4, fire(3, x, 16, 64), 16, 64)
    x = g.maxpool("features.5", x, 3, 2, ceil_mode=True)
    x = fire(7, fire(6, x, 32, 128), 32, 128)
    x = g.maxpool("features.8", x, 3, 2, ceil_mode=True)
    for i, (sq, ex) in zip(range(9, 13), ((48, 192), (48, 192), (64, 256), (64, 256)),
                           strict=True):
        x = fire(i, x, sq, ex)
    # classifier: Dropout, final 1x1 conv to the classes, ReLU, global average pool
    x = g.act("classifier.2", g.conv("classifier.1", x, 1000, 1))
    g.flatten("flatten", g.global_avgpool("classifier.3", x))


def _googlenet(g: _Graph, x: str) -> None:
    def basic(prefix: str, x: str, out: int, k: int, s: int = 1) -> str:
        # torchvision BasicConv2d: conv (no bias), BN, ReLU
        return _conv_bn_act(g, (f"{prefix}.conv", f"{prefix}.bn", f"{prefix}.relu"), x, out,
                            k, s=s, act="relu")

    def inception(p: str, x: str, c1: int, c3r: int, c3: int, c5r: int, c5: int,
                  pool_proj: int) -> str:
        b1 = basic(f"{p}.branch1", x, c1, 1)
        b2 = basic(f"{p}.branch2.1", basic(f"{p}.branch2.0", x, c3r, 1), c3, 3)
        # torchvision's "5x5" branch uses a 3x3 kernel (kept for its pretrained weights)
        b3 = basic(f"{p}.branch3.1", basic(f"{p}.branch3.0", x, c5r, 1), c5, 3)
        b4 = g.maxpool(f"{p}.branch4.0", x, 3, 1, 1, ceil_mode=True)
        b4 = basic(f"{p}.branch4.1", b4, pool_proj, 1)
        return g.cat(f"{p}.cat", [b1, b2, b3, b4])

    x = basic("conv1", x, 64, 7, s=2)
    x = g.maxpool("maxpool1", x, 3, 2, ceil_mode=True)
    x = basic("conv3", basic("conv2", x, 64, 1), 192, 3)
    x = g.maxpool("maxpool2", x, 3, 2, ceil_mode=True)
    x = inception("inception3a", x, 64, 96, 128, 16, 32, 32)
    x = inception("inception3b", x, 128, 128, 192, 32, 96, 64)
    x = g.maxpool("maxpool3", x, 3, 2, ceil_mode=True)
    x = inception("inception4a", x, 192, 96, 208, 16, 48, 64)
    x = inception("inception4b", x, 160, 112, 224, 24, 64, 64)
    x = inception("inception4c", x, 128, 128, 256, 24, 64, 64)
    x = inception("inception4d", x, 112, 144, 288, 32, 64, 64)
    x = inception("inception4e", x, 256, 160, 320, 32, 128, 128)
    x = g.maxpool("maxpool4", x, 2, 2, ceil_mode=True)
    x = inception("inception5a", x, 256, 160, 320, 32, 128, 128)
    x = inception("inception5b", x, 384, 192, 384, 48, 128, 128)
    x = g.flatten("flatten", g.global_avgpool("avgpool", x))
    g.fc("fc", x, 1000)


_CNNS: dict[str, Callable[[_Graph, str], None]] = {
    "vgg16": _vgg16,
    "resnet18": lambda g, x: _resnet(g, x, bottleneck=False, blocks=(2, 2, 2, 2)),
    "resnet50": lambda g, x: _resnet(g, x, bottleneck=True, blocks=(3, 4, 6, 3)),
    "mobilenet_v1": _mobilenet_v1,
    "mobilenet_v2": _mobilenet_v2,
    "squeezenet1_1": _squeezenet1_1,
    "alexnet": _alexnet,
    "googlenet": _googlenet,
}


# --------------------------------------------------------------------------- RNNs


_RNN_CONFIG = {"gru_timit": ("gru", 2, 1024), "lstm_2x1024": ("lstm", 2, 1024)}


def _rnn(g: _Graph, x: str, kind: str, layers: int, hidden: int) -> None:
    # one layer per recurrent layer (as torch.nn.GRU/LSTM with num_layers stacks them);
    # its GEMM rows are `<kind><i>.<gate>.ih` and `.hh`
    for i in range(1, layers + 1):
        name = f"{kind}{i}"
        x = g.layer(recurrent, name, [x], kind, g.shape(x), hidden)


# --------------------------------------------------------------------------- transformers


@dataclass(frozen=True)
class _BertConfig:
    layers: int
    hidden: int
    heads: int
    ffn: int
    vocab: int = 30522
    positions: int = 512
    token_types: int = 2


_BERT_CONFIG = {
    # Devlin et al. 2019, Sec. 3 (BERT-BASE) and bert-base-uncased's config.json
    "bert_base": _BertConfig(layers=12, hidden=768, heads=12, ffn=3072),
    # sentence-transformers/all-MiniLM-L6-v2 config.json
    "minilm_l6": _BertConfig(layers=6, hidden=384, heads=12, ffn=1536),
}


def _bert(g: _Graph, ids: str, cfg: _BertConfig) -> None:
    shp = g.shape(ids)
    d = cfg.hidden
    # Word, position and token-type lookups all read the token ids: positions follow from
    # the ids' shape and the token types default to segment 0, as HF BertModel does when
    # given input_ids only.
    words = g.layer(embedding, "embeddings.word_embeddings", [ids], shp, cfg.vocab, d)
    pos = g.layer(embedding, "embeddings.position_embeddings", [ids], shp, cfg.positions, d)
    types = g.layer(embedding, "embeddings.token_type_embeddings", [ids], shp, cfg.token_types,
                    d)
    x = g.add("embeddings.add", [words, pos, types])
    x = g.layer(layernorm, "embeddings.LayerNorm", [x], g.shape(x))
    for i in range(cfg.layers):
        p = f"encoder.layer.{i}"
        a = g.layer(attention, f"{p}.attention", [x], g.shape(x), cfg.heads)
        x = g.add(f"{p}.attention.add", [a, x])
        x = g.layer(layernorm, f"{p}.attention.output.LayerNorm", [x], g.shape(x))
        h = g.fc(f"{p}.intermediate.dense", x, cfg.ffn)
        h = g.act(f"{p}.intermediate.gelu", h, "gelu")
        h = g.fc(f"{p}.output.dense", h, d)
        x = g.add(f"{p}.output.add", [h, x])
        x = g.layer(layernorm, f"{p}.output.LayerNorm", [x], g.shape(x))
    # pooler: dense + tanh on the first token ([CLS])
    n, s, _ = g.shape(x)
    first = g.layer(elementwise_op, "pooler.first_token", [x], Op.SLICE, [(n, s, d)], [(n, d)],
                    ops_per_output=0, attrs={"axis": 1, "index": 0})
    g.act("pooler.activation", g.fc("pooler.dense", first, d), "tanh")


# --------------------------------------------------------------------------- entry point


def build_zoo(name: str, input_shape: Sequence[int] | None = None, seq_len: int | None = None,
              batch: int = 1) -> Network:
    """Build zoo network ``name`` (unfused) for the given input.

    ``input_shape`` is the full input: NCHW for CNNs, (batch, time, features) for RNNs,
    (batch, seq_len) token ids for transformers. ``seq_len`` sets the time steps / tokens of
    RNNs and transformers; ``batch`` the batch of the default input. Unknown names raise
    UnknownModelError; inputs of the wrong rank, conflicting or too small raise ShapeError.
    """
    key = _canonical(name)
    entry = _ENTRIES[key]
    shape = _resolve_shape(entry, input_shape, seq_len, batch)
    g = _Graph(key, source=f"zoo:{key}")
    try:
        if entry.kind == "cnn":
            _CNNS[key](g, g.input("input", shape))
        elif entry.kind == "rnn":
            _rnn(g, g.input("input", shape), *_RNN_CONFIG[key])
        else:
            _bert(g, g.input("input_ids", shape), _BERT_CONFIG[key])
    except ShapeError as exc:
        raise ShapeError(f"{key}: input {shape} does not fit the network (too small?): "
                         f"{exc}") from None
    return g.build()


def _resolve_shape(entry: ZooEntry, input_shape: Sequence[int] | None, seq_len: int | None,
                   batch: int) -> Shape:
    name = entry.name
    if not isinstance(batch, int) or batch < 1:
        raise ShapeError(f"{name}: batch must be a positive int, got {batch!r}")
    if seq_len is not None and (not isinstance(seq_len, int) or seq_len < 1):
        raise ShapeError(f"{name}: seq_len must be a positive int, got {seq_len!r}")
    if entry.kind == "cnn" and seq_len is not None:
        raise ShapeError(f"{name} is a CNN: seq_len does not apply; give input_shape "
                         "(e.g. 1x3x224x224) instead")
    if input_shape is None:
        shape = (batch, *entry.input_shape[1:])
        if seq_len is not None:
            shape = (batch, seq_len, *entry.input_shape[2:])
    else:
        shape = tuple(int(d) for d in input_shape)
        if any(d < 1 for d in shape):
            raise ShapeError(f"{name}: input shape {shape} has a non-positive dimension")
        if batch != 1 and shape[0] != batch:
            raise ShapeError(f"{name}: batch={batch} conflicts with input shape {shape}")
    rank = len(entry.input_shape)
    layout = {"cnn": "(batch, 3, height, width)", "rnn": "(batch, time steps, features)",
              "transformer": "(batch, sequence length)"}[entry.kind]
    if len(shape) != rank:
        raise ShapeError(f"{name}: input must be {layout}, got shape {shape}")
    if entry.kind == "cnn" and shape[1] != 3:
        raise ShapeError(f"{name}: input must have 3 (RGB) channels, got {shape[1]} in {shape}")
    if entry.kind != "cnn" and seq_len is not None and shape[1] != seq_len:
        raise ShapeError(f"{name}: seq_len={seq_len} conflicts with input shape {shape}")
    if entry.kind == "transformer":
        positions = _BERT_CONFIG[name].positions
        if shape[1] > positions:
            raise ShapeError(f"{name}: sequence length {shape[1]} exceeds its {positions} "
                             "position embeddings")
    return shape
