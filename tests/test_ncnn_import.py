"""The ncnn .param importer: ncnn's real benchmark models (shapes checked against the files'
own -23330= hints, MACs against the zoo twins) and small hand-written files for each rule
and each error path."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from grimsim.errors import GrimsimError, ModelFormatError, ShapeError, UnsupportedOpError
from grimsim.network import Network, Op, fuse
from grimsim.network.ncnn_import import (
    load_ncnn_param,
    parse_ncnn_param,
    shape_hint_mismatches,
)
from grimsim.network.zoo import build_zoo

# --------------------------------------------------------------------------- helpers


def _models(reference_dir: Path) -> list[Path]:
    """The fp32 models of the reference folder (quantized *_int8 files are out of scope)."""
    return sorted(p for p in (reference_dir / "ncnn" / "models").glob("*.param")
                  if "int8" not in p.stem)


def _model(reference_dir: Path, stem: str) -> Path:
    path = reference_dir / "ncnn" / "models" / f"{stem}.param"
    assert path.is_file(), f"reference model {path} is missing"
    return path


def _write(tmp_path: Path, layers: list[str], header: str | None = None,
           magic: str = "7767517", name: str = "net.param") -> Path:
    """A .param file: magic on line 1, counts on line 2, layers from line 3 on."""
    if header is None:
        tops: set[str] = set()
        for ln in layers:
            tok = ln.split()
            nb, nt = int(tok[2]), int(tok[3])
            tops.update(tok[4 + nb:4 + nb + nt])
        header = f"{len(layers)} {len(tops)}"
    path = tmp_path / name
    path.write_text("\n".join([magic, header, *layers]) + "\n")
    return path


INPUT_8x8x16 = "Input data 0 1 data 0=8 1=8 2=16"


def _one(tmp_path: Path, layer: str, input_line: str = INPUT_8x8x16) -> Network:
    return load_ncnn_param(_write(tmp_path, [input_line, layer]))


# --------------------------------------------------------------------------- the real models


def test_every_reference_model_imports_and_matches_its_shape_hints(reference_dir: Path
                                                                   ) -> None:
    models = _models(reference_dir)
    stems = {p.stem for p in models}
    assert {"resnet18", "resnet50", "vgg16", "mobilenet", "mobilenet_v2", "alexnet",
            "googlenet", "squeezenet", "vision_transformer"} <= stems
    failures = []
    for path in models:
        net = load_ncnn_param(path)
        net.validate()
        parsed = parse_ncnn_param(path)
        assert len(net) == parsed.layer_count, path.stem
        has_hints = any(layer.shape_hints for layer in parsed.layers)
        checked, problems = shape_hint_mismatches(net, parsed)
        if has_hints:
            # nearly every blob carries a hint; a handful of checks would mean we skipped some
            assert checked >= parsed.layer_count, f"{path.stem}: only {checked} shapes checked"
        else:
            assert checked == 0
        failures += [f"{path.stem}: {p}" for p in problems]
        assert net.total_macs > 0 and net.total_params > 0, path.stem
    assert not failures, "\n".join(failures[:20])


def test_models_without_an_input_shape_use_benchncnn_sizes(reference_dir: Path) -> None:
    # FastestDet and vision_transformer declare no input shape; benchncnn feeds 352 and 384
    fastest = load_ncnn_param(_model(reference_dir, "FastestDet"))
    assert fastest.inputs == {"in0": (1, 3, 352, 352)}
    vit = load_ncnn_param(_model(reference_dir, "vision_transformer"))
    assert vit.inputs == {"input": (1, 3, 384, 384)}
    # ViT-B/32 at 384: 12x12 patches + the class token = 145 tokens of width 768
    mha = [wl for wl in vit.layers() if wl.op == Op.ATTENTION]
    assert len(mha) == 12
    assert all(wl.input_shapes[0] == (1, 145, 768) for wl in mha)
    assert vit.layer("Gemm_207").output_shape == (1, 1, 1000)


def test_input_override_rescales_the_network(reference_dir: Path) -> None:
    path = _model(reference_dir, "mobilenet")  # global pooling: any input size works
    base = load_ncnn_param(path)
    double = load_ncnn_param(path, (1, 3, 448, 448))
    assert double.inputs == {"data": (1, 3, 448, 448)}
    assert double.layer("conv1").output_shape == (1, 32, 224, 224)
    assert double.total_params == base.total_params
    # every conv output has four times the pixels; the fc after global pooling is unchanged
    fc = base.layer("fc7").macs
    assert double.total_macs - fc == 4 * (base.total_macs - fc)
    batched = load_ncnn_param(path, (2, 3, 224, 224))
    assert batched.total_macs == 2 * base.total_macs
    assert batched.layer("fc7").output_shape == (2, 1000)
    # Caffe's ResNet-18 ends in a fixed 7x7 pooling: too small an input is a clear error
    with pytest.raises(ShapeError, match=r"resnet18\.param:50: Pooling 'pool5'"):
        load_ncnn_param(_model(reference_dir, "resnet18"), (1, 3, 112, 112))
    # VGG-16's fc6 is tied to 7x7x512 features: the input is blamed, not the file
    with pytest.raises(ShapeError, match=r"vgg16\.param:\d+: InnerProduct 'fc6'.*input shape"):
        load_ncnn_param(_model(reference_dir, "vgg16"), (1, 3, 448, 448))
    with pytest.raises(ShapeError, match=r"takes inputs like \(1, 3, 224, 224\)"):
        load_ncnn_param(path, (1, 1, 224, 224))


def test_fused_activations_are_recorded_and_kept(reference_dir: Path) -> None:
    net = load_ncnn_param(_model(reference_dir, "resnet18"))
    assert net.layer("conv1").activation == "relu"  # 9=1
    assert net.layer("res2a_branch2b").activation is None
    fused = fuse(net)
    assert fused.total_macs == net.total_macs and fused.total_params == net.total_params
    # the separate ReLU after an Eltwise stays: its producer is not a conv
    assert "res2a_relu" in fused
    yolo = load_ncnn_param(_model(reference_dir, "yolo-fastest-1.1"))
    acts = {wl.activation for wl in yolo.layers() if wl.gemms}
    assert "leakyrelu" in acts  # 9=2 -23310=1,1.000000e-01


# --------------------------------------------------------------------------- zoo twins

#: ncnn file -> (zoo name, input side)
TWINS = {"resnet18": ("resnet18", 224), "vgg16": ("vgg16", 224),
         "mobilenet": ("mobilenet_v1", 224), "alexnet": ("alexnet", 227)}


@pytest.mark.parametrize("stem", sorted(TWINS))
def test_ncnn_models_match_their_zoo_twin(reference_dir: Path, stem: str) -> None:
    zoo_name, side = TWINS[stem]
    net = load_ncnn_param(_model(reference_dir, stem))
    assert net.inputs[next(iter(net.inputs))] == (1, 3, side, side)
    twin = build_zoo(zoo_name, input_shape=(1, 3, side, side))
    assert net.total_macs == pytest.approx(twin.total_macs, rel=0.02)


def test_alexnet_is_the_caffe_variant(reference_dir: Path) -> None:
    net = load_ncnn_param(_model(reference_dir, "alexnet"))
    convs = [wl for wl in net.layers() if wl.op in (Op.CONV, Op.DWCONV)]
    assert [wl.attr("groups") for wl in convs] == [1, 2, 1, 2, 2]
    assert all(wl.op == Op.CONV for wl in convs)  # groups=2 is grouped, not depthwise
    assert sum(wl.op == Op.LRN for wl in net.layers()) == 2


def test_resnet50_is_caffe_v1_with_the_stride_on_the_1x1(reference_dir: Path) -> None:
    # Caffe ResNet-50 (v1) downsamples in the first 1x1 conv of a block; torchvision (v1.5)
    # in the 3x3. The 1x1 then runs on a quarter of the pixels: the MACs it saves are
    # M * K * (input pixels - output pixels) for each of the three downsampling blocks.
    net = load_ncnn_param(_model(reference_dir, "resnet50"))
    twin = build_zoo("resnet50", input_shape=(1, 3, 224, 224))
    saved = 0
    for stage in ("3", "4", "5"):
        first = net.layer(f"res{stage}a_branch2a")
        assert first.attr("kernel") == (1, 1) and first.attr("stride") == (2, 2)
        assert net.layer(f"res{stage}a_branch2b").attr("stride") == (1, 1)
        (g,) = first.gemms
        _, _, h, w = first.input_shapes[0]
        saved += g.M * g.K * (h * w - g.N)
    for block in ("layer2.0", "layer3.0", "layer4.0"):
        assert twin.layer(f"{block}.conv1").attr("stride") == (1, 1)
        assert twin.layer(f"{block}.conv2").attr("stride") == (2, 2)
    assert saved == 3 * 77_070_336  # e.g. 256 * 128 * (56*56 - 28*28) per stage
    assert twin.total_macs - net.total_macs == saved


def test_googlenet_is_caffe_with_real_5x5_branches_and_lrn(reference_dir: Path) -> None:
    # torchvision's GoogLeNet uses a 3x3 conv in the "5x5" branch; Caffe's is a real 5x5:
    # each such conv costs 25/9 of the 3x3 twin, i.e. M * K/25 * N * (25 - 9) MACs more.
    net = load_ncnn_param(_model(reference_dir, "googlenet"))
    twin = build_zoo("googlenet", input_shape=(1, 3, 224, 224))
    five = [wl for wl in net.layers() if wl.name.endswith("/5x5")]
    assert len(five) == 9 and all(wl.attr("kernel") == (5, 5) for wl in five)
    assert twin.layer("inception3a.branch3.1.conv").attr("kernel") == (3, 3)
    extra = sum(g.M * (g.K // 25) * g.N * (25 - 9) for wl in five for g in wl.gemms)
    assert net.total_macs - twin.total_macs == extra
    assert sum(wl.op == Op.LRN for wl in net.layers()) == 2


def test_mobilenet_v2_has_an_extra_expand_conv(reference_dir: Path) -> None:
    # The Caffe MobileNetV2 keeps a 1x1 expand conv (32 -> 32 at 112x112) in the first
    # bottleneck (t=1) that torchvision drops: ncnn = zoo + that conv's MACs.
    net = load_ncnn_param(_model(reference_dir, "mobilenet_v2"))
    twin = build_zoo("mobilenet_v2", input_shape=(1, 3, 224, 224))
    expand = net.layer("conv2_1/expand")
    assert expand.attr("kernel") == (1, 1) and expand.output_shape == (1, 32, 112, 112)
    assert expand.macs == 32 * 32 * 112 * 112
    assert net.total_macs - twin.total_macs == expand.macs


def test_squeezenet_is_v1_1_at_227_with_a_padded_conv10(reference_dir: Path) -> None:
    # SqueezeNet v1.1 as released for Caffe: 227x227 input, and conv10 (1x1) has pad 1, so
    # it runs on 16x16 instead of 14x14 pixels: 1000 * 512 * (16*16 - 14*14) extra MACs.
    net = load_ncnn_param(_model(reference_dir, "squeezenet"))
    assert net.inputs == {"data": (1, 3, 227, 227)}
    conv10 = net.layer("conv10")
    assert conv10.attr("kernel") == (1, 1) and conv10.attr("padding") == (1, 1, 1, 1)
    assert conv10.input_shapes[0] == (1, 512, 14, 14)
    assert conv10.output_shape == (1, 1000, 16, 16)
    twin = build_zoo("squeezenet1_1", input_shape=(1, 3, 227, 227))
    assert twin.layer("classifier.1").output_shape == (1, 1000, 14, 14)
    assert net.total_macs - twin.total_macs == 1000 * 512 * (16 * 16 - 14 * 14)


# --------------------------------------------------------------------------- layer rules


def test_same_padding_upper_and_lower(tmp_path: Path) -> None:
    # 3x3 stride 2 on 8x8: ceil(8/2) = 4 outputs need 1 pixel of padding in total; SAME
    # (-233) puts it at the end, SAME_LOWER (-234) at the start.
    upper = _one(tmp_path, "Convolution c 1 1 data out 0=4 1=3 3=2 4=-233 6=576")
    assert upper.layer("c").output_shape == (1, 4, 4, 4)
    assert upper.layer("c").attr("padding") == (0, 0, 1, 1)
    lower = _one(tmp_path, "Convolution c 1 1 data out 0=4 1=3 3=2 4=-234 6=576")
    assert lower.layer("c").attr("padding") == (1, 1, 0, 0)
    odd = _one(tmp_path, "Convolution c 1 1 data out 0=4 1=3 3=2 4=-233 6=576",
               "Input data 0 1 data 0=7 1=7 2=16")
    assert odd.layer("c").output_shape == (1, 4, 4, 4)
    assert odd.layer("c").attr("padding") == (1, 1, 1, 1)
    pool = _one(tmp_path, "Pooling p 1 1 data out 1=3 2=2 5=2")
    assert pool.layer("p").output_shape == (1, 16, 4, 4)


def test_pooling_full_padding_is_ceil_mode(tmp_path: Path) -> None:
    inp = "Input data 0 1 data 0=112 1=112 2=8"
    full = _one(tmp_path, "Pooling p 1 1 data out 1=3 2=2", inp)  # pad_mode 0 (default)
    assert full.layer("p").output_shape == (1, 8, 56, 56)  # floor would give 55
    assert full.layer("p").attr("ceil_mode") is True
    valid = _one(tmp_path, "Pooling p 1 1 data out 1=3 2=2 5=1", inp)
    assert valid.layer("p").output_shape == (1, 8, 55, 55)
    # ncnn keeps a last window that starts in the end padding (PyTorch's ceil mode drops
    # it): 5 wide, kernel 2, stride 2, pad 1 gives 4, not 3
    edge = _one(tmp_path, "Pooling p 1 1 data out 1=2 2=2 3=1",
                "Input data 0 1 data 0=5 1=5 2=8")
    assert edge.layer("p").output_shape == (1, 8, 4, 4)
    glob = _one(tmp_path, "Pooling p 1 1 data out 0=1 4=1")
    assert glob.layer("p").output_shape == (1, 16)  # ncnn global pooling gives a 1-D blob


def test_split_slice_and_crop_shapes(tmp_path: Path) -> None:
    net = load_ncnn_param(_write(tmp_path, [
        INPUT_8x8x16,
        "Split s 1 3 data a b c",
        "Slice sl 1 3 a x y z -23300=3,4,-233,-233",
        "Slice sh 1 2 b top bottom -23300=2,3,-233 1=1",
        "Crop cr 1 1 c cropped -23309=2,1,2 -23310=2,-1,7 -23311=2,1,2",
        "Crop legacy 1 1 x lc 0=1 1=2 3=5 4=4 5=-233",
        "Crop ref 2 1 y lc crz",
    ]))
    assert net.layer("s").output_shapes == ((1, 16, 8, 8),) * 3
    assert net.layer("sl").output_shapes == ((1, 4, 8, 8), (1, 6, 8, 8), (1, 6, 8, 8))
    assert net.layer("sh").output_shapes == ((1, 16, 3, 8), (1, 16, 5, 8))
    assert net.layer("cr").output_shape == (1, 16, 6, 5)  # h 1:-1, w 2:7
    assert net.layer("legacy").output_shape == (1, 4, 4, 5)
    # w, h and (the reference being 3-D) c of the reference blob
    assert net.layer("ref").output_shape == (1, 4, 4, 5)
    assert net.layer("s").activation_bytes_read == 0  # a split moves no data


def test_reshape_permute_and_flatten(tmp_path: Path) -> None:
    net = load_ncnn_param(_write(tmp_path, [
        INPUT_8x8x16,
        "Split s 1 2 data a b",
        "Reshape r 1 1 a r 0=-1 1=16",
        "Permute p 1 1 r p 0=1",
        "Permute p3 1 1 b p3 0=3",
        "Flatten f 1 1 p3 f",
    ]))
    assert net.layer("r").output_shape == (1, 16, 64)  # [w=-1, h=16]
    assert net.layer("p").output_shape == (1, 64, 16)  # HW: a transpose
    assert net.layer("p3").output_shape == (1, 8, 8, 16)  # CWH: w'=c, h'=w, c'=h
    assert net.layer("f").output_shape == (1, 1024)
    assert net.layer("r").activation_bytes_read == 0  # a reshape is a view


def test_binary_op_broadcasts_the_ncnn_way(tmp_path: Path) -> None:
    # ncnn aligns a lower-rank operand with the *outermost* axes (numpy: innermost), so a
    # 1-D [c] blob scales channels, as in squeeze-and-excitation blocks
    se = load_ncnn_param(_write(tmp_path, [
        INPUT_8x8x16, "Split s 1 2 data a b", "Pooling g 1 1 a g 0=1 4=1",
        "BinaryOp mul 2 1 b g out 0=2"]))
    assert se.layer("g").output_shape == (1, 16)
    assert se.layer("mul").output_shape == (1, 16, 8, 8)
    assert se.layer("mul").attr("kind") == "mul"
    # [16] against a blob whose outermost axis is 8 does not broadcast (numpy would align
    # it with the innermost w = 16 and accept it)
    with pytest.raises(ShapeError, match="do not broadcast"):
        load_ncnn_param(_write(tmp_path, [
            INPUT_8x8x16, "Split s 1 2 data a b", "Pooling g 1 1 a g 0=1 4=1",
            "Reshape r 1 1 b r 0=16 1=8 2=8", "BinaryOp mul 2 1 r g out 0=2"]))
    scalar = _one(tmp_path, "BinaryOp add 1 1 data out 0=0 1=1 2=1.000000e+00")
    assert scalar.layer("add").output_shape == (1, 16, 8, 8)


def test_conv_and_fc_params_match_weight_data_size(tmp_path: Path) -> None:
    net = load_ncnn_param(_write(tmp_path, [
        INPUT_8x8x16,
        "Convolution c 1 1 data c 0=32 1=3 4=1 5=1 6=4608 9=1",
        "ConvolutionDepthWise dw 1 1 c dw 0=32 1=3 4=1 5=1 6=288 7=32",
        "ConvolutionDepthWise gc 1 1 dw gc 0=32 1=3 11=1 4=1 14=0 5=0 6=1536 7=2",
        "InnerProduct fc 1 1 gc fc 0=10 1=1 2=20480 9=2 -23310=1,1.000000e-01",
    ]))
    conv, dw, gc, fc = (net.layer(n) for n in ("c", "dw", "gc", "fc"))
    assert conv.params == 4608 + 32 and conv.activation == "relu"
    assert dw.op == Op.DWCONV and dw.params == 288 + 32
    assert gc.op == Op.CONV and gc.attr("kernel") == (1, 3) and gc.params == 1536
    assert gc.attr("groups") == 2 and gc.output_shape == (1, 32, 8, 8)
    assert fc.params == 20480 + 10 and fc.output_shape == (1, 10)
    assert fc.activation == "leakyrelu"
    assert net.total_macs == 4608 * 64 + 288 * 64 + 1536 * 64 + 20480


def test_weight_data_size_mismatch_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, [INPUT_8x8x16, "Convolution c 1 1 data out 0=32 1=3 6=4000"])
    with pytest.raises(ModelFormatError) as err:
        load_ncnn_param(path)
    assert f"{path}:4" in str(err.value) and "weight_data_size" in str(err.value)
    path = _write(tmp_path, [INPUT_8x8x16, "InnerProduct fc 1 1 data out 0=10 2=100"])
    with pytest.raises(ModelFormatError, match=r"net\.param:4.*weight_data_size"):
        load_ncnn_param(path)


def test_deconvolution_and_interp_shapes(tmp_path: Path) -> None:
    net = load_ncnn_param(_write(tmp_path, [
        INPUT_8x8x16,
        "Split s 1 2 data a b",
        "Deconvolution d 1 1 a d 0=8 1=4 3=2 4=1 5=1 6=2048",
        "DeconvolutionDepthWise dd 1 1 b dd 0=16 1=3 3=2 4=-233 20=16 21=16 6=144 7=16",
        "Interp up 1 1 d up 0=2 1=2.000000e+00 2=2.000000e+00",
    ]))
    assert net.layer("d").output_shape == (1, 8, 16, 16)  # (8-1)*2 + 4 - 2
    assert net.layer("dd").output_shape == (1, 16, 16, 16)  # SAME cut to output_w/h
    assert net.layer("up").output_shape == (1, 8, 32, 32)


def test_detection_ops_are_zero_mac(tmp_path: Path) -> None:
    net = load_ncnn_param(_write(tmp_path, [
        "Input data 0 1 data 0=300 1=300 2=3",
        "Convolution c 1 1 data c 0=8 1=3 3=16 6=216",
        "Split s 1 2 c c1 c2",
        "PriorBox pb 2 1 c1 data pb -23300=1,6.000000e+01 -23302=1,2.000000e+00",
        "DetectionOutput det 2 1 c2 pb out 0=21",
    ]))
    pb, det = net.layer("pb"), net.layer("det")
    assert pb.op == det.op == Op.DETECTION and pb.macs == det.macs == 0
    # one min size, one aspect ratio and its flip: 3 priors per pixel of the 19x19 map
    assert pb.output_shape == (1, 2, 4 * 19 * 19 * 3)


def test_trailing_layers_beyond_the_count_are_ignored_loudly(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = _write(tmp_path, [INPUT_8x8x16, "ReLU r 1 1 data out", "ReLU r2 1 1 out o2"],
                  header="2 2")
    with caplog.at_level(logging.WARNING):
        net = load_ncnn_param(path)
    assert len(net) == 2 and "r2" not in net
    assert "ignoring 1 extra line" in caplog.text


def test_hint_disagreement_is_reported(tmp_path: Path, caplog: pytest.LogCaptureFixture
                                       ) -> None:
    path = _write(tmp_path, [INPUT_8x8x16, "Pooling p 1 1 data out -23330=4,3,3,3,16 1=3 2=2"])
    with caplog.at_level(logging.WARNING):
        net = load_ncnn_param(path)
    n, problems = shape_hint_mismatches(net, parse_ncnn_param(path))
    assert n == 1 and len(problems) == 1 and "(1, 16, 3, 3)" in problems[0]
    assert "disagrees" in caplog.text


# --------------------------------------------------------------------------- error paths


@pytest.mark.parametrize(("text", "where", "what"), [
    ("7767518\n1 1\nInput data 0 1 data 0=4\n", ":1", "magic"),
    ("", "", "empty"),
    ("7767517\n", "", "layer_count"),
    ("7767517\n2 x\nInput data 0 1 data 0=4\n", ":2", "layer_count blob_count"),
    ("7767517\n3 2\nInput data 0 1 data 0=4\nReLU r 1 1 data out\n", "", "only 2 layer"),
    ("7767517\n2 1\nInput data 0 1 data 0=4\nReLU r 1 1 data out\n", ":2", "declares 1 blob"),
    ("7767517\n1 1\nInput data 0 1 data 0:4\n", ":3", "malformed param"),
    ("7767517\n1 1\nInput data 0 1 data 0=\n", ":3", "malformed param"),
    ("7767517\n1 1\nInput data 0 1 data -23300=3,1,2\n", ":3", "declares 3 elements"),
    ("7767517\n1 1\nInput data 0 1 data 0=4 0=5\n", ":3", "given twice"),
    ("7767517\n1 1\nInput data 0 1 data 40=4\n", ":3", "out of range"),
    ("7767517\n1 1\nInput data 0 2 data 0=4\n", ":3", "blob names"),
    ("7767517\n1 1\nInput data x 1 data\n", ":3", "counts must be"),
    ("7767517\n1 1\nInput data\n", ":3", "a layer line needs"),
    ("7767517\n2 2\nInput data 0 1 data 0=4\nReLU r 1 1 nothing out\n", ":4",
     "used before any layer produces it"),
    ("7767517\n2 2\nInput data 0 1 data 0=4\nReLU data 1 1 data out\n", ":4",
     "already used on line 3"),
    ("7767517\n2 1\nInput data 0 1 data 0=4\nReLU r 1 1 data data\n", ":4",
     "produced a second time"),
    ("7767517\n2 2\nInput data 0 1 data 0=4\nConvolution c 2 1 data data out 0=1\n", ":4",
     "takes 1 input"),
    ("7767517\n1 1\nInput data 0 1 data 0=4 -23330=2,1,4\n", ":3", "shape hints"),
    ("7767517\n2 2\nInput data 0 1 data 0=4\nReLU r 1 1 data out 0=zero\n", ":4",
     "must be a number"),
    ("7767517\n2 2\nInput data 0 1 data 0=4 1=4 2=4\nPooling p 1 1 data out 1=2.5\n", ":4",
     "must be an integer"),
])
def test_malformed_files_raise_model_format_errors(tmp_path: Path, text: str, where: str,
                                                   what: str) -> None:
    path = tmp_path / "bad.param"
    path.write_text(text)
    with pytest.raises(ModelFormatError) as err:
        load_ncnn_param(path)
    assert type(err.value) is ModelFormatError
    assert f"{path}{where}" in str(err.value)
    assert what in str(err.value)
    assert err.value.__cause__ is None  # a clear message, not a chained traceback


def test_unknown_layer_type_names_the_type_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, [INPUT_8x8x16, "ReLU r 1 1 data a", "FancyOp f 1 1 a b 0=1"])
    with pytest.raises(UnsupportedOpError) as err:
        load_ncnn_param(path)
    assert f"{path}:5" in str(err.value) and "'FancyOp'" in str(err.value)


def test_shape_errors_name_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, [INPUT_8x8x16, "Split s 1 2 data a b",
                             "Pooling g 1 1 a g 0=1 4=1", "Concat cat 2 1 b g out 0=0"])
    with pytest.raises(ShapeError) as err:
        load_ncnn_param(path)
    assert f"{path}:6" in str(err.value) and "'cat'" in str(err.value)
    no_shape = _write(tmp_path, ["Input data 0 1 data", "ReLU r 1 1 data out"],
                      name="custom.param")
    with pytest.raises(ShapeError, match="declares no input shape"):
        load_ncnn_param(no_shape)
    assert load_ncnn_param(no_shape, (1, 3, 4, 4)).layer("r").output_shape == (1, 3, 4, 4)


def test_binary_files_are_rejected_clearly(tmp_path: Path) -> None:
    path = tmp_path / "net.param.bin"
    path.write_bytes(bytes([0xDD, 0xCC, 0xBB, 0xAA, 0xFF, 0xFE]))
    with pytest.raises(GrimsimError, match=r"not a text \.param"):
        load_ncnn_param(path)


#: A small file touching most layer kinds; the fuzz test below corrupts one token of it.
FUZZ_LAYERS = [
    "Input data 0 1 data 0=16 1=16 2=8",
    "Convolution c 1 1 data c 0=16 1=3 3=2 4=-233 5=1 6=1152 9=1",
    "Split s 1 3 c a b d",
    "ConvolutionDepthWise dw 1 1 a dw 0=16 1=3 4=1 6=144 7=16",
    "Pooling p 1 1 b p 1=2 2=2",
    "Interp up 1 1 p up 0=1 1=2.000000e+00 2=2.000000e+00",
    "Concat cat 2 1 dw up cat 0=0",
    "Slice sl 1 2 cat x y -23300=2,-233,-233",
    "Pooling g 1 1 d g 0=1 4=1",
    "BinaryOp mul 2 1 x g m 0=2",
    "Reshape r 1 1 m r 0=-1 1=16",
    "Permute pm 1 1 r pm 0=1",
    "Crop cr 1 1 y cr -23309=1,1 -23310=1,-1 -23311=1,1",
    "InnerProduct fc 1 1 cr fc 0=10 1=1 2=7680",
]
_NASTY = ["0", "-1", "-233", "x", "=", "1=", "0=0", "7=0", "3=0", "1=0", "-23300=1",
          "-23300=2,1", "99999", "2=1.5", "4=-234", "data", "fc"]


@given(st.integers(0, 10_000), st.sampled_from(_NASTY), st.booleans())
def test_corrupted_files_fail_cleanly(tmp_path_factory: pytest.TempPathFactory,
                                      position: int, token: str, insert: bool) -> None:
    """Whatever single token is corrupted, the importer either copes or raises a
    GrimsimError subclass: never another exception."""
    tokens = [ln.split() for ln in FUZZ_LAYERS]
    flat = [(i, j) for i, tok in enumerate(tokens) for j in range(len(tok))]
    i, j = flat[position % len(flat)]
    if insert:
        tokens[i].insert(j, token)
    else:
        tokens[i][j] = token
    path = _write(tmp_path_factory.mktemp("fuzz"), [" ".join(t) for t in tokens],
                  header=f"{len(FUZZ_LAYERS)} 17")
    try:
        net = load_ncnn_param(path)
    except GrimsimError:
        return
    net.validate()


def test_the_fuzz_base_file_imports(tmp_path: Path) -> None:
    net = load_ncnn_param(_write(tmp_path, FUZZ_LAYERS))
    assert len(net) == len(FUZZ_LAYERS)
    assert net.layer("fc").output_shape == (1, 10)
