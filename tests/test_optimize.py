"""Fast inference: BatchNorm folding, channels-last, torch.compile, torch.export, ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from torch import nn

import hrnet_zoo
from hrnet_zoo._utils import cpu_has_bf16_units
from hrnet_zoo.cli import main
from hrnet_zoo.deploy import export_onnx, export_program, fold_batch_norms, optimize_for_inference


@pytest.fixture
def golden_model(tiny_model, tiny_weights_path):
    tiny_model.load_state_dict(load_file(str(tiny_weights_path)))
    return tiny_model.eval()


@pytest.fixture
def golden_input(tiny_io):
    return torch.from_numpy(tiny_io["input"])


def randomise_batch_norms(model: nn.Module) -> None:
    """Statistics far from the identity, so that a wrong fold shows."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.2)


def test_optimized_golden_model_reproduces_the_original(golden_model, golden_input, tiny_io):
    fast = optimize_for_inference(golden_model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in fast.modules())
    assert fast.head.weight.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        out = fast(golden_input).numpy()
    scale = np.abs(tiny_io["output"]).max()
    assert np.abs(out - tiny_io["output"]).max() <= 1e-4 * scale


@pytest.mark.parametrize("name", ["hrnet_w18_small_pose", "hrnet_w32_pose", "litehrnet_18_pose"])
def test_optimized_registered_models(name):
    model = hrnet_zoo.create_model(name)
    randomise_batch_norms(model)
    model.train()
    fast = optimize_for_inference(model)
    assert model.training and any(isinstance(m, nn.BatchNorm2d) for m in model.modules()), "original untouched"
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        expected, got = model.eval()(x), fast(x)
    assert (got - expected).abs().max() <= 1e-4 * expected.abs().max()
    bn_count = sum(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    assert fold_batch_norms(hrnet_zoo.create_model(name).eval()) == bn_count


def test_fold_needs_eval_mode():
    with pytest.raises(ValueError, match="eval-mode"):
        fold_batch_norms(hrnet_zoo.create_model("hrnet_w18_small_pose"))


# One model per code path: the widths of W18/W32/W48 do not change what dynamo traces, the HRNetV2 head does.
@pytest.mark.parametrize("name", ["hrnet_w18_small_pose", "hrnetv2_w18_pose"])
def test_no_graph_breaks(name):
    model = hrnet_zoo.create_model(name).eval()
    explanation = torch._dynamo.explain(model)(torch.randn(2, 3, 64, 64))
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1


def test_compiled_golden_model(golden_model, golden_input, tiny_io):
    compiled = torch.compile(optimize_for_inference(golden_model), fullgraph=True)
    with torch.no_grad():
        out = compiled(golden_input).numpy()
    np.testing.assert_allclose(out, tiny_io["output"], rtol=1e-4, atol=1e-4)


def test_export_program_dynamic_batch(golden_model):
    program = export_program(golden_model, input_size=(128, 96))
    x = torch.randn(5, 3, 128, 96)
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), golden_model(x))


def test_onnx_runtime_matches_pytorch(golden_model, tmp_path, tiny_io):
    import onnxruntime as ort

    path = export_onnx(golden_model, tmp_path / "tiny.onnx", input_size=(128, 96))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for batch in (tiny_io["input"], np.concatenate([tiny_io["input"]] * 3)):
        (heatmaps,) = session.run(None, {"images": batch})
        with torch.no_grad():
            expected = golden_model(torch.from_numpy(batch)).numpy()
        np.testing.assert_allclose(heatmaps, expected, rtol=1e-4, atol=1e-4)


def test_cli_export(tmp_path):
    output, weights = tmp_path / "w18s.pt2", tmp_path / "w18s.safetensors"
    save_file(hrnet_zoo.create_model("hrnet_w18_small_pose").state_dict(), str(weights))
    args = ["export", "--model", "hrnet_w18_small_pose", "--format", "pt2", "--output", str(output)]
    args += ["--checkpoint", str(weights)]
    assert main([*args, "--input-size", "64", "64", "--optimize"]) == 0
    program = torch.export.load(str(output))
    assert program.module()(torch.randn(3, 3, 64, 64)).shape == (3, 17, 16, 16)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="mixed precision is tested on a CUDA device only")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_autocast_on_cuda(dtype):
    model = hrnet_zoo.create_model("hrnet_w32_pose").cuda().eval()
    randomise_batch_norms(model)
    x = torch.randn(4, 3, 256, 192, device="cuda")
    with torch.no_grad():
        expected = model(x)
        with torch.autocast("cuda", dtype=dtype):
            got = model(x)
    assert got.dtype == dtype
    assert (got.float() - expected).norm() / expected.norm() < 2e-2


def test_cpu_precision_is_refused_where_it_would_be_slow(monkeypatch):
    model = hrnet_zoo.create_model("hrnet_w18_small_pose")
    with pytest.raises(ValueError, match="float16 is not supported on cpu"):
        hrnet_zoo.PoseEstimator(model, device="cpu", amp=torch.float16)
    monkeypatch.setattr(hrnet_zoo._utils, "cpu_has_bf16_units", lambda: False)
    with pytest.raises(ValueError, match="needs bf16 units"):
        hrnet_zoo.PoseEstimator(model, device="cpu", amp=torch.bfloat16)


@pytest.mark.skipif(not cpu_has_bf16_units(), reason="this CPU has no bf16 units (AMX or AVX512-BF16)")
@pytest.mark.parametrize("optimize", [True, False])
def test_bf16_on_a_cpu_with_bf16_units(optimize):
    model = hrnet_zoo.create_model("hrnet_w18_small_pose").eval()
    randomise_batch_norms(model)
    crops = torch.randn(3, 3, 256, 192)
    exact = hrnet_zoo.PoseEstimator(model, device="cpu").heatmaps(crops)
    bf16 = hrnet_zoo.PoseEstimator(model, device="cpu", amp=torch.bfloat16, optimize=optimize)
    if optimize:  # a bfloat16 copy of the folded model, the caller's model left in float32
        assert next(bf16.model.parameters()).dtype == torch.bfloat16
    got = bf16.heatmaps(crops)
    assert got.dtype == torch.float32 and next(model.parameters()).dtype == torch.float32
    assert (got - exact).norm() / exact.norm() < 3e-2  # bf16 keeps 8 bits of mantissa
    assert not torch.equal(got, exact)
