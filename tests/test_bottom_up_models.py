"""The registered bottom-up models (DEKR, HigherHRNet): timm's model API where it applies, metadata, head resets,
and the reference and OpenMMLab checkpoint layouts through ``create_model(name, checkpoint_path=...)``."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

import hrnet_zoo
from hrnet_zoo.codec import BottomUpCodec
from hrnet_zoo.errors import CheckpointMismatchError
from hrnet_zoo.models import DEKR, HigherHRNet
from hrnet_zoo.models.dekr import dekr_original_to_package

from .conftest import DATA
from .test_dekr import published_keys
from .test_dekr import to_openmmlab as dekr_to_openmmlab
from .test_higherhrnet import to_openmmlab as higherhrnet_to_openmmlab

BOTTOM_UP = hrnet_zoo.list_models(kind="bottom_up")
X = (1, 3, 64, 96)


@pytest.mark.parametrize("name", BOTTOM_UP)
def test_model_api_on_the_meta_device(name):
    with pytest.raises(TypeError, match="not_a_model_arg"):
        hrnet_zoo.create_model(name, device="meta", not_a_model_arg=1)
    model = hrnet_zoo.create_model(name, device="meta").eval()
    meta, cfg = model.pose_meta, model.pretrained_cfg
    assert meta.bottom_up and isinstance(meta.codec, BottomUpCodec) and model.num_classes == meta.num_joints == 17
    assert cfg["input_size"] == (3, *meta.input_size) and tuple(cfg["pool_size"]) == meta.codec.heatmap_size
    assert cfg["classifier"] + ".weight" in model.state_dict() and cfg["first_conv"] + ".weight" in model.state_dict()
    x = torch.randn(*X, device="meta")
    features = model.forward_features(x)
    assert features.shape == (1, model.num_features, X[2] // 4, X[3] // 4)
    assert model.forward_head(features, pre_logits=True) is features
    with pytest.raises(ValueError, match="at least one keypoint"):
        model.reset_classifier(0)
    model.to(torch.float64).reset_classifier(5)
    assert model.num_classes == 5 and model.keypoints.names[0] == "joint_0"
    assert {p.dtype for p in model.get_classifier().parameters()} == {torch.float64}
    assert all(not m.training for m in model.modules())
    if isinstance(model, DEKR):
        heatmaps, offsets = model(x.double())
        assert heatmaps.shape[1] == 6 and offsets.shape[1] == 10
        assert model.rescore_net is None and not model.pose_meta.codec.rescore  # trained for the old keypoints
    else:
        assert [o.shape[1] for o in model(x.double())] == [10, 5]
    with pytest.raises(ValueError, match="bottom-up model and has no features_only form"):
        hrnet_zoo.create_model(name, features_only=True, device="meta")


@pytest.mark.parametrize("name", ["dekr_hrnet_w32", "higherhrnet_w32"])
def test_new_keypoints_forward_backward(name):
    model = hrnet_zoo.create_model(name, num_joints=3)
    assert model.num_joints == 3 and model.pose_meta.origin is None
    outputs = model(torch.randn(2, 3, 64, 64))
    expected = [(2, 4, 16, 16), (2, 6, 16, 16)] if name.startswith("dekr") else [(2, 6, 16, 16), (2, 3, 32, 32)]
    assert [tuple(o.shape) for o in outputs] == expected
    sum(o.square().mean() for o in outputs).backward()
    assert not [n for n, p in model.named_parameters() if p.grad is None and not n.startswith("rescore_net.")]


def test_default_tags_and_metadata_round_trip(tmp_path):
    dekr = hrnet_zoo.create_model("dekr_hrnet_w32", device="meta")
    assert dekr.pretrained_cfg["tag"] and dekr.pose_meta.codec.rescore and dekr.rescore_net.l1.in_features == 74
    meta = dekr.pose_meta
    assert type(meta).from_dict(json.loads(json.dumps(meta.to_dict()))) == meta
    with pytest.raises(ValueError, match=r"bottom-up model .* has no top-down transform"):
        meta.transform  # noqa: B018
    higher = hrnet_zoo.create_model("higherhrnet_w32")
    for p in higher.parameters():
        p.data.normal_(0, 0.05)
    folder = hrnet_zoo.save_pretrained(higher, tmp_path / "higher")
    again = hrnet_zoo.create_model(f"local-dir:{folder}", pretrained=True)
    assert isinstance(again, HigherHRNet) and again.pose_meta.codec == higher.pose_meta.codec
    assert all(torch.equal(a, b) for a, b in zip(again.state_dict().values(), higher.state_dict().values()))


def _randomised(name: str) -> dict[str, torch.Tensor]:
    model = hrnet_zoo.create_model(name)
    torch.manual_seed(0)
    for p in model.parameters():
        p.data.normal_(0, 0.02)
    return model.state_dict()


def _same(model: torch.nn.Module, state: dict[str, torch.Tensor], atol: float = 0.0) -> None:
    """The model holds ``state``'s values (to ``atol``: OpenMMLab's DEKR stores ``T - I``; its 1 comes back in
    float)."""
    own = model.state_dict()
    mismatched = [k for k, v in state.items() if not torch.allclose(own[k], v, rtol=0, atol=atol)]
    assert not mismatched, mismatched[:5]


def test_dekr_loads_the_original_and_openmmlab_layouts_by_checkpoint_path(tmp_path):
    ours = _randomised("dekr_hrnet_w32")
    original = {}
    for key in published_keys("dekr_keys_w32_512x512.json.gz"):  # the original repository's key list, in order
        original[key] = ours[dekr_original_to_package(key)]
    save_file(original, str(tmp_path / "original.safetensors"))
    model = hrnet_zoo.create_model("dekr_hrnet_w32", checkpoint_path=tmp_path / "original.safetensors")
    _same(model, {k: v for k, v in ours.items() if not k.startswith("rescore_net.")})
    # the original ships its rescoring net as a separate file: without it the decoder keeps the heatmap scores
    assert model.rescore_net is None and not model.pose_meta.codec.rescore
    rescore = {f"head.rescore_net.{k[len('rescore_net.') :]}": v for k, v in ours.items() if k.startswith("rescore_")}
    openmmlab = dekr_to_openmmlab(original, 17) | rescore
    torch.save({"state_dict": openmmlab}, tmp_path / "openmmlab.pth")
    model = hrnet_zoo.create_model("dekr_hrnet_w32", checkpoint_path=tmp_path / "openmmlab.pth")
    _same(model, {k: v for k, v in ours.items() if not k.endswith("num_batches_tracked")}, atol=1e-6)
    assert model.pose_meta.codec.rescore


def test_higherhrnet_loads_the_reference_and_openmmlab_layouts_by_checkpoint_path(tmp_path):
    ours = _randomised("higherhrnet_w32")
    keys = [k for k, _ in json.loads((DATA / "higherhrnet_keys_coco_w32_512.json").read_text())]
    assert len(keys) == len(ours)  # the reference's modules map one to one, in order
    reference = dict(zip(keys, ours.values()))
    for layout, state in (("reference", reference), ("openmmlab", higherhrnet_to_openmmlab(reference))):
        path = tmp_path / f"{layout}.pth"
        torch.save(state, path)
        _same(hrnet_zoo.create_model("higherhrnet_w32", checkpoint_path=path), ours)


def test_a_checkpoint_of_another_family_is_named(tmp_path):
    dekr = hrnet_zoo.create_model("dekr_hrnet_w32", device="meta")
    state = {k: torch.zeros(v.shape) for k, v in dekr.state_dict().items() if k.startswith("head.")}
    with pytest.raises(CheckpointMismatchError, match=r"is for DEKR.*e\.g\. dekr_hrnet_w32"):
        hrnet_zoo.models.load_checkpoint(hrnet_zoo.create_model("hrnet_w18_small_pose"), state)
    higher = {"final_layers.0.weight": torch.zeros(34, 32, 1, 1), "deconv_layers.0.0.0.weight": torch.zeros(1)}
    with pytest.raises(CheckpointMismatchError, match="is for HigherHRNet"):
        hrnet_zoo.models.load_checkpoint(hrnet_zoo.create_model("dekr_hrnet_w32"), higher)
