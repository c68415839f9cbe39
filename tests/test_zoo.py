"""The built-in zoo: published totals, shapes, input handling, fusion and errors."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grimsim.errors import GrimsimError, ShapeError, UnknownModelError
from grimsim.network import Network, Op, fuse
from grimsim.network.zoo import ZOO_NAMES, ZooEntry, build_zoo, zoo_entry

_TV = "https://pytorch.org/vision/stable/models/generated/torchvision.models.{}.html"

# name -> (published params, published MACs, input the MACs are quoted at, source).
# torchvision's "GFLOPS" column counts one multiply-add as one op, i.e. GMACs; the
# 3-decimal values are the weights' `_ops` meta that the docs page shows rounded.
PUBLISHED: dict[str, tuple[int, float, tuple[int, ...], str]] = {
    "vgg16": (138_357_544, 15.47e9, (1, 3, 224, 224), _TV.format("vgg16")),
    "resnet18": (11_689_512, 1.814e9, (1, 3, 224, 224), _TV.format("resnet18")),
    "resnet50": (25_557_032, 4.089e9, (1, 3, 224, 224), _TV.format("resnet50")),
    # Howard et al. 2017, MobileNets, arXiv:1704.04861, Table 8: 1.0 MobileNet-224,
    # 569 million mult-adds, 4.2 million parameters
    "mobilenet_v1": (4_200_000, 569e6, (1, 3, 224, 224), "arXiv:1704.04861 Table 8"),
    "mobilenet_v2": (3_504_872, 0.301e9, (1, 3, 224, 224), _TV.format("mobilenet_v2")),
    "squeezenet1_1": (1_235_496, 0.349e9, (1, 3, 224, 224), _TV.format("squeezenet1_1")),
    "alexnet": (61_100_840, 0.714e9, (1, 3, 224, 224), _TV.format("alexnet")),
    "googlenet": (6_624_904, 1.498e9, (1, 3, 224, 224), _TV.format("googlenet")),
    # RTMobile (Dong et al., DAC 2020, arXiv:2002.11474) Sec. V: 2-layer GRU on TIMIT,
    # about 9.6M parameters. MACs derived: 1 MAC per weight per frame, 100 frames (1 s).
    "gru_timit": (9_600_000, 9.6e6 * 100, (1, 100, 39), "arXiv:2002.11474 Sec. V"),
    # No paper prints this model's count: closed form from torch.nn.LSTM's parameter shapes
    # (https://pytorch.org/docs/stable/generated/torch.nn.LSTM.html), H=1024, I=153 (ESE's
    # TIMIT input, arXiv:1612.00694): 4H(I+H) + 4H(H+H) weights + 2 layers x 2 x 4H biases.
    "lstm_2x1024": (4 * 1024 * (153 + 1024) + 4 * 1024 * 2048 + 4 * 4 * 1024,
                    (4 * 1024 * (153 + 1024) + 4 * 1024 * 2048) * 100.0, (1, 100, 153),
                    "torch.nn.LSTM parameter shapes"),
    # Devlin et al. 2019 (arXiv:1810.04805) Sec. 3: BERT-BASE 110M parameters;
    # TinyBERT (Jiao et al. 2020, arXiv:1909.10351) Table 1: BERT-BASE 22.5B FLOPs
    # = 11.25 G MACs at sequence length 128
    "bert_base": (110_000_000, 22.5e9 / 2, (1, 128), "arXiv:1810.04805 / arXiv:1909.10351"),
    # https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2: 22.7M params. No MAC
    # count is published; closed form from its config.json (6 layers, d=384, FFN 1536) at
    # 128 tokens: projections + FFN + the two attention matmuls + the pooler.
    "minilm_l6": (22_700_000,
                  6 * (4 * 384 * 384 * 128 + 2 * 384 * 1536 * 128 + 2 * 128 * 128 * 384)
                  + 384 * 384.0, (1, 128), "all-MiniLM-L6-v2 model card + config.json"),
}


def _conv_macs(net: Network) -> int:
    return sum(wl.macs for wl in net.layers() if wl.op in (Op.CONV, Op.DWCONV))


def _fc_macs(net: Network) -> int:
    return sum(wl.macs for wl in net.layers() if wl.op == Op.FC)


def test_the_zoo_names_are_the_fixed_twelve() -> None:
    assert ZOO_NAMES == ("vgg16", "resnet18", "resnet50", "mobilenet_v1", "mobilenet_v2",
                         "squeezenet1_1", "alexnet", "googlenet", "gru_timit", "lstm_2x1024",
                         "bert_base", "minilm_l6")
    assert set(PUBLISHED) == set(ZOO_NAMES)


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_totals_match_the_published_figures(name: str) -> None:
    params, macs, at_shape, _source = PUBLISHED[name]
    net = build_zoo(name, input_shape=at_shape)
    assert net.total_params == pytest.approx(params, rel=0.01)
    assert net.total_macs == pytest.approx(macs, rel=0.02)
    # the entry carries the same figures, with a source for each
    entry = zoo_entry(name)
    assert entry.published_params == pytest.approx(params, abs=1)
    assert entry.published_macs == pytest.approx(macs, abs=1)
    assert entry.macs_input_shape == at_shape
    assert entry.params_source and entry.macs_source and entry.source


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_entry_defaults_build_a_valid_graph(name: str) -> None:
    entry = zoo_entry(name)
    assert isinstance(entry, ZooEntry) and entry.name == name
    assert entry.kind in ("cnn", "rnn", "transformer")
    assert (entry.seq_len is None) == (entry.kind == "cnn")
    net = build_zoo(name)
    net.validate()
    assert list(net.inputs.values()) == [entry.input_shape]
    assert len(net.outputs) == 1
    rows = [g.name for _, g in net.gemm_rows()]
    assert len(rows) == len(set(rows)), "GEMM row names must be unique"
    # every non-input layer is reachable from an input
    for wl in net.layers():
        assert wl.op == "input" or net.predecessors(wl.name), wl.name


def test_entry_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        zoo_entry("resnet50").published_params = 1  # type: ignore[misc]


@pytest.mark.parametrize(("name", "layer", "shape"), [
    ("resnet50", "layer4.2.conv3", (1, 2048, 7, 7)),
    ("resnet50", "layer1.0.downsample.0", (1, 256, 56, 56)),
    ("resnet50", "fc", (1, 1000)),
    ("resnet18", "layer3.0.conv1", (1, 256, 14, 14)),
    ("vgg16", "features.28", (1, 512, 14, 14)),
    ("vgg16", "features.30", (1, 512, 7, 7)),
    ("alexnet", "features.12", (1, 256, 6, 6)),
    ("mobilenet_v2", "features.18.0", (1, 1280, 7, 7)),
    ("mobilenet_v2", "features.2.conv.1.0", (1, 96, 56, 56)),
    ("mobilenet_v1", "conv5_6/dw", (1, 512, 7, 7)),
    ("mobilenet_v1", "conv6/sep", (1, 1024, 7, 7)),
    ("squeezenet1_1", "features.12.cat", (1, 512, 13, 13)),
    ("squeezenet1_1", "flatten", (1, 1000)),
    ("googlenet", "inception3a.cat", (1, 256, 28, 28)),
    ("googlenet", "inception5b.cat", (1, 1024, 7, 7)),
    ("gru_timit", "gru2", (1, 100, 1024)),
    ("bert_base", "encoder.layer.11.output.LayerNorm", (1, 128, 768)),
    ("bert_base", "pooler.dense", (1, 768)),
    ("minilm_l6", "encoder.layer.5.intermediate.dense", (1, 128, 1536)),
])
def test_known_layer_output_shapes(name: str, layer: str, shape: tuple[int, ...]) -> None:
    assert build_zoo(name).layer(layer).output_shape == shape


def test_layer_structure_follows_the_reference_definitions() -> None:
    r50 = build_zoo("resnet50")
    # v1.5: the stride is on the 3x3 conv, the 1x1 convs keep stride 1
    assert r50.layer("layer2.0.conv2").attr("stride") == (2, 2)
    assert r50.layer("layer2.0.conv1").attr("stride") == (1, 1)
    assert r50.layer("layer2.0.conv1").attr("bias") is False
    g = build_zoo("googlenet")
    assert g.layer("inception4a.branch3.1.conv").attr("kernel") == (3, 3)
    assert not any("aux" in wl.name for wl in g.layers())
    vgg = build_zoo("vgg16")
    assert not any(wl.op == Op.BATCHNORM for wl in vgg.layers())
    dw = [wl for wl in build_zoo("mobilenet_v1").layers() if wl.op == Op.DWCONV]
    assert len(dw) == 13 and all(wl.gemms[0].K == 9 for wl in dw)


def test_input_shape_changes_cnn_macs_as_expected() -> None:
    base = build_zoo("resnet50")
    double = build_zoo("resnet50", input_shape=(1, 3, 448, 448))
    half = build_zoo("resnet50", input_shape=(1, 3, 112, 112))
    # 448 divides by every stride: exactly 4x the conv work; the FC sees one pooled vector
    assert _conv_macs(double) == 4 * _conv_macs(base)
    assert _fc_macs(double) == _fc_macs(base)
    # 112 gives a 4x4 (not 3.5x3.5) last stage, so a bit over a quarter
    assert 0.25 < _conv_macs(half) / _conv_macs(base) < 0.27
    assert half.layer("layer4.2.conv3").output_shape == (1, 2048, 4, 4)
    assert half.total_params == base.total_params
    # VGG's adaptive pool keeps the classifier's input at 7x7 whatever the image size
    vgg_big = build_zoo("vgg16", input_shape=(1, 3, 448, 448))
    assert _fc_macs(vgg_big) == _fc_macs(build_zoo("vgg16"))


@pytest.mark.parametrize("name", [n for n in ZOO_NAMES if zoo_entry(n).kind == "cnn"])
def test_batch_scales_every_gemm_exactly(name: str) -> None:
    one, two = build_zoo(name), build_zoo(name, batch=2)
    assert two.total_macs == 2 * one.total_macs
    assert two.total_params == one.total_params
    assert build_zoo(name, input_shape=(2, 3, 224, 224)).total_macs == two.total_macs


@given(h=st.integers(32, 300), w=st.integers(32, 300), batch=st.integers(1, 3))
def test_any_reasonable_image_size_builds(h: int, w: int, batch: int) -> None:
    net = build_zoo("mobilenet_v2", input_shape=(batch, 3, h, w))
    assert net.layer("classifier.1").output_shape == (batch, 1000)
    assert net.total_params == 3_504_872  # parameters never depend on the input size
    assert net.total_macs > 0


def test_rnn_rows_and_time_steps() -> None:
    net = build_zoo("gru_timit", seq_len=37)
    rows = {g.name: g for _, g in net.gemm_rows()}
    expected = {f"gru{layer}.{gate}.{w}" for layer in (1, 2) for gate in "rzn"
                for w in ("ih", "hh")}
    assert set(rows) == expected
    for name, g in rows.items():
        if name.endswith(".hh"):
            assert (g.repeats, g.N, g.K) == (37, 1, 1024)
        else:
            assert (g.repeats, g.N) == (1, 37)
    assert rows["gru1.r.ih"].K == 39 and rows["gru2.r.ih"].K == 1024
    lstm_gates = {g.name.split(".")[1] for _, g in build_zoo("lstm_2x1024").gemm_rows()}
    assert lstm_gates == set("ifgo")


def test_seq_len_scales_rnn_macs_linearly() -> None:
    for name in ("gru_timit", "lstm_2x1024"):
        m100 = build_zoo(name).total_macs
        assert build_zoo(name, seq_len=200).total_macs == 2 * m100
        assert build_zoo(name, seq_len=1).total_macs * 100 == m100
        assert build_zoo(name, seq_len=50, batch=2).total_macs == m100
    # features come from input_shape: a 40-dim front end only changes the first ih GEMMs
    feats = build_zoo("gru_timit", input_shape=(1, 100, 40))
    assert feats.total_params - build_zoo("gru_timit").total_params == 3 * 1024


@pytest.mark.parametrize(("name", "layers", "d", "ffn"),
                         [("bert_base", 12, 768, 3072), ("minilm_l6", 6, 384, 1536)])
def test_transformer_macs_follow_the_sequence_length(name: str, layers: int, d: int,
                                                     ffn: int) -> None:
    for s in (16, 128, 384):
        per_token = layers * (4 * d * d + 2 * d * ffn)
        attention_matmuls = layers * 2 * s * s * d  # QK^T and AV
        pooler = d * d
        assert build_zoo(name, seq_len=s).total_macs == s * per_token + attention_matmuls + pooler
    assert build_zoo(name, seq_len=16).total_params == build_zoo(name, seq_len=384).total_params


def test_transformer_rows_and_embeddings() -> None:
    net = build_zoo("bert_base")
    att = net.layer("encoder.layer.0.attention")
    kinds = {g.name.rsplit(".", 1)[1]: g.prunable for g in att.gemms}
    assert kinds == {"q": True, "k": True, "v": True, "out": True, "qk": False, "av": False}
    emb = [wl for wl in net.layers() if wl.op == Op.EMBEDDING]
    assert sum(wl.params for wl in emb) == (30522 + 512 + 2) * 768
    assert all(wl.macs == 0 for wl in emb)
    gelu = net.layer("encoder.layer.0.intermediate.gelu")
    assert gelu.op == Op.ACTIVATION and gelu.attr("kind") == "gelu"


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_fusion_keeps_totals_and_folds_bn_and_activations(name: str) -> None:
    net = build_zoo(name)
    fused = fuse(net)
    assert (fused.total_params, fused.total_macs) == (net.total_params, net.total_macs)
    fused.validate()
    assert not any(wl.op == Op.BATCHNORM for wl in fused.layers())
    for wl in fused.layers():
        if wl.op == Op.ACTIVATION:
            preds = [fused.layer(p) for p in fused.predecessors(wl.name)]
            assert not (len(preds) == 1 and preds[0].op in (Op.CONV, Op.DWCONV, Op.FC)
                        and preds[0].activation is None), f"{name}: {wl.name} not folded"
    had_bn = any(wl.op == Op.BATCHNORM for wl in net.layers())
    assert (len(fused) < len(net)) == (had_bn or any(
        wl.op == Op.ACTIVATION for wl in net.layers()))


def test_fusion_records_what_it_folded() -> None:
    fused = fuse(build_zoo("resnet50"))
    conv = fused.layer("layer1.0.conv1")
    assert conv.fused == ("layer1.0.bn1", "layer1.0.relu1") and conv.activation == "relu"
    # the ReLU after the residual add has no conv to fold into
    assert fused.layer("layer1.0.relu_out").op == Op.ACTIVATION


def test_unknown_name_lists_the_zoo() -> None:
    with pytest.raises(UnknownModelError) as info:
        build_zoo("resnet51")
    for name in ZOO_NAMES:
        assert name in str(info.value)
    with pytest.raises(UnknownModelError):
        zoo_entry("")


@pytest.mark.parametrize(("name", "kwargs", "message"), [
    ("resnet50", {"input_shape": (3, 224, 224)}, "(batch, 3, height, width)"),
    ("resnet50", {"input_shape": (1, 1, 224, 224)}, "3 (RGB) channels"),
    ("resnet50", {"input_shape": (1, 3, 0, 224)}, "non-positive"),
    ("vgg16", {"input_shape": (1, 3, 16, 16)}, "does not fit"),
    ("alexnet", {"input_shape": (1, 3, 40, 40)}, "does not fit"),
    ("resnet18", {"seq_len": 10}, "seq_len does not apply"),
    ("resnet18", {"input_shape": (1, 3, 224, 224), "batch": 4}, "conflicts"),
    ("resnet18", {"batch": 0}, "batch"),
    ("gru_timit", {"input_shape": (1, 100)}, "(batch, time steps, features)"),
    ("gru_timit", {"input_shape": (1, 100, 39), "seq_len": 50}, "conflicts"),
    ("gru_timit", {"seq_len": 0}, "seq_len"),
    ("bert_base", {"input_shape": (1, 128, 768)}, "(batch, sequence length)"),
    ("bert_base", {"seq_len": 513}, "512 position embeddings"),
])
def test_bad_inputs_are_clear_shape_errors(name: str, kwargs: dict[str, object],
                                           message: str) -> None:
    with pytest.raises(ShapeError) as info:
        build_zoo(name, **kwargs)  # type: ignore[arg-type]
    assert isinstance(info.value, GrimsimError)
    assert message in str(info.value) and name in str(info.value)


def test_build_is_fast() -> None:
    best = min(_timed(lambda: build_zoo("resnet50")) for _ in range(5))
    assert best < 0.05, f"resnet50 took {best * 1e3:.1f} ms to build"


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
