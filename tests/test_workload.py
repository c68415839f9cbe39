"""Shape inference and the GEMM view of every layer factory, checked against hand counts."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grimsim.errors import ShapeError
from grimsim.network import NetworkBuilder, fuse
from grimsim.network import workload as W  # noqa: N812


def _torch_conv_out(size: int, k: int, s: int, p: int, d: int) -> int:
    # PyTorch Conv2d documentation formula
    return math.floor((size + 2 * p - d * (k - 1) - 1) / s + 1)


@given(c=st.integers(1, 8), h=st.integers(5, 40), w=st.integers(5, 40), k=st.integers(1, 5),
       s=st.integers(1, 3), p=st.integers(0, 2), d=st.integers(1, 2), g=st.sampled_from([1, 2]),
       m=st.integers(1, 4))
def test_conv_shapes_and_gemm_view(c: int, h: int, w: int, k: int, s: int, p: int, d: int,
                                   g: int, m: int) -> None:
    c *= g
    out_ch = m * g
    ho, wo = _torch_conv_out(h, k, s, p, d), _torch_conv_out(w, k, s, p, d)
    if ho < 1 or wo < 1:
        with pytest.raises(ShapeError):
            W.conv2d("c", (1, c, h, w), out_ch, k, s, p, d, g)
        return
    wl = W.conv2d("c", (2, c, h, w), out_ch, k, s, p, d, g)
    assert wl.output_shape == (2, out_ch, ho, wo)
    (gemm,) = wl.gemms
    assert (gemm.M, gemm.K, gemm.N, gemm.groups) == (out_ch, c // g * k * k, 2 * ho * wo, g)
    assert wl.macs == out_ch * (c // g) * k * k * 2 * ho * wo
    assert wl.params == out_ch * (c // g) * k * k + out_ch


def test_depthwise_and_asymmetric_padding() -> None:
    wl = W.conv2d("dw", (1, 32, 112, 112), 32, 3, stride=2, padding=(0, 0, 1, 1), groups=32,
                  bias=False)
    assert wl.op == W.Op.DWCONV
    assert wl.output_shape == (1, 32, 56, 56)
    assert (wl.gemms[0].M, wl.gemms[0].K, wl.gemms[0].N) == (32, 9, 56 * 56)
    assert wl.params == 32 * 9


def test_conv_rejects_bad_groups_and_rank() -> None:
    with pytest.raises(ShapeError, match="groups"):
        W.conv2d("c", (1, 6, 8, 8), 4, 3, groups=4)
    with pytest.raises(ShapeError, match="rank 4"):
        W.conv2d("c", (1, 6, 8), 4, 3)


def test_linear_gemm_view() -> None:
    wl = W.linear("fc", (4, 10, 512), 256)
    assert wl.output_shape == (4, 10, 256)
    assert (wl.gemms[0].M, wl.gemms[0].K, wl.gemms[0].N) == (256, 512, 40)
    assert wl.params == 512 * 256 + 256


def test_gru_rows_one_per_gate_and_weight() -> None:
    wl = W.recurrent("gru1", "gru", (1, 100, 39), 1024)
    names = [g.name for g in wl.gemms]
    assert names == [f"gru1.{g}.{w}" for g in "rzn" for w in ("ih", "hh")]
    ih, hh = wl.gemms[0], wl.gemms[1]
    assert (ih.M, ih.K, ih.N, ih.repeats) == (1024, 39, 100, 1)
    assert (hh.M, hh.K, hh.N, hh.repeats) == (1024, 1024, 1, 100)
    # PyTorch GRU parameter count: 3H(I + H) + 6H
    assert wl.params == 3 * 1024 * (39 + 1024) + 6 * 1024
    assert wl.macs == 3 * 1024 * (39 + 1024) * 100


def test_lstm_bidirectional_rows() -> None:
    wl = W.recurrent("l", "lstm", (2, 7, 16), 8, bidirectional=True)
    assert len(wl.gemms) == 16
    assert wl.output_shape == (2, 7, 16)
    assert any(g.name == "l.reverse.o.hh" for g in wl.gemms)


def test_attention_projections_prunable_and_matmuls_not() -> None:
    wl = W.attention("att", (1, 128, 768), 12)
    prunable = {g.name.split(".")[-1]: g.prunable for g in wl.gemms}
    assert prunable == {"q": True, "k": True, "v": True, "qk": False, "av": False,
                        "out": True}
    # 4 projections + QK^T + AV (BERT-base layer at seq 128)
    assert wl.macs == 4 * 768 * 768 * 128 + 2 * 128 * 128 * 768
    assert wl.params == 4 * (768 * 768 + 768)


def test_pool_ceil_mode_matches_torch() -> None:
    # torchvision googlenet maxpool1: 112 -> 56 with ceil_mode
    assert W.pool2d("p", (1, 64, 112, 112), 3, 2, 0, ceil_mode=True).output_shape[2:] == (56, 56)
    assert W.pool2d("p", (1, 64, 112, 112), 3, 2, 0).output_shape[2:] == (55, 55)
    # the last window must start inside the input or left padding (PyTorch's rule): 5 -> 3, not 4
    assert W.pool2d("p", (1, 1, 5, 5), 2, 2, 1, ceil_mode=True).output_shape[2:] == (3, 3)


def test_cheap_ops_traffic_and_views() -> None:
    add = W.eltwise("add", [(1, 8, 4, 4), (1, 8, 4, 4)])
    assert add.macs == 0
    assert add.activation_bytes_read == 2 * 128 * 4 and add.activation_bytes_written == 128 * 4
    flat = W.reshape("flat", (1, 8, 4, 4), (1, 128))
    assert flat.activation_bytes_read == 0
    with pytest.raises(ShapeError, match="reshape"):
        W.reshape("bad", (1, 8), (1, 9))
    cat = W.concat("cat", [(1, 8, 4, 4), (1, 3, 4, 4)])
    assert cat.output_shape == (1, 11, 4, 4)
    with pytest.raises(ShapeError, match="concatenate"):
        W.concat("cat", [(1, 8, 4, 4), (1, 3, 5, 4)])
    emb = W.embedding("emb", (1, 128), 30522, 768)
    assert emb.params == 30522 * 768 and emb.macs == 0 and emb.output_shape == (1, 128, 768)


def _small_net() -> W.LayerWorkload:
    return W.conv2d("c1", (1, 3, 8, 8), 4, 3, padding=1)


def test_builder_checks_shapes_and_names() -> None:
    b = NetworkBuilder("t")
    b.input("x", (1, 3, 8, 8))
    b.add(_small_net(), ["x"], ["y"])
    with pytest.raises(ShapeError, match="duplicate"):
        b.add(_small_net(), ["x"], ["y2"])
    with pytest.raises(ShapeError, match="used before"):
        b.add(W.activation_op("r", (1, 4, 8, 8)), ["nope"], ["z"])
    with pytest.raises(ShapeError, match="differ"):
        b.add(W.activation_op("r", (1, 5, 8, 8)), ["y"], ["z"])


def _conv_bn_relu_net() -> tuple:
    b = NetworkBuilder("t")
    b.input("x", (1, 3, 8, 8))
    b.add(W.conv2d("c1", (1, 3, 8, 8), 4, 3, padding=1, bias=False), ["x"], ["a"])
    b.add(W.batchnorm("bn1", (1, 4, 8, 8)), ["a"], ["b"])
    b.add(W.activation_op("relu1", (1, 4, 8, 8)), ["b"], ["c"])
    b.add(W.conv2d("c2", (1, 4, 8, 8), 4, 1), ["c"], ["d"])
    # c2 feeds two consumers: the relu after it must not be folded
    b.add(W.activation_op("relu2", (1, 4, 8, 8)), ["d"], ["e"])
    b.add(W.eltwise("add", [(1, 4, 8, 8), (1, 4, 8, 8)]), ["d", "e"], ["f"])
    return b.build(), b


def test_fusion_folds_bn_and_activation_keeping_totals() -> None:
    net, _ = _conv_bn_relu_net()
    fused = fuse(net)
    names = [wl.name for wl in fused.layers()]
    assert names == ["x", "c1", "c2", "relu2", "add"]
    c1 = fused.layer("c1")
    assert c1.fused == ("bn1", "relu1") and c1.activation == "relu"
    assert fused.total_params == net.total_params
    assert fused.total_macs == net.total_macs
    assert fused.total_elementwise_ops < net.total_elementwise_ops
    fused.validate()
    assert fused.successors("c1") == ["c2"]


def test_fusion_keeps_bn_after_activation() -> None:
    b = NetworkBuilder("t")
    b.input("x", (1, 3, 8, 8))
    b.add(W.conv2d("c1", (1, 3, 8, 8), 4, 3, padding=1, activation="relu"), ["x"], ["a"])
    b.add(W.batchnorm("bn", (1, 4, 8, 8)), ["a"], ["b"])
    fused = fuse(b.build())
    assert "bn" in fused
