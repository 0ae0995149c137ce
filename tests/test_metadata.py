"""One owner for a model's metadata: it follows head resets and fine-tuning, travels through save_pretrained and
reloads identically through hrnet_zoo's and timm's factories; cards claim only what is true of the weights."""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import replace

import pytest
import timm
import torch

import hrnet_zoo
from hrnet_zoo import KeypointSet, PoseEstimator
from hrnet_zoo.codec import HeatmapCodec
from hrnet_zoo.keypoints import COCO_KEYPOINTS
from hrnet_zoo.models import PRETRAINED_CFGS, PoseMeta, WeightsOrigin, weights_fingerprint
from hrnet_zoo.train import JointsMSELoss, train_one_epoch

from .layouts import to_openmmlab_layout

ARCH = "hrnet_w18_small_pose"
KITE = KeypointSet(
    "kite", ("top", "left_wing", "right_wing", "tail"), ((0, 1), (0, 2), (0, 3)), ((1, 2),), (0.05, 0.06, 0.06, 0.05)
)


def same_weights(a, b) -> bool:
    sb = b.state_dict()
    return all(torch.equal(v, sb[k]) for k, v in a.state_dict().items())


@pytest.fixture
def upstream_tag(tmp_path, monkeypatch):
    """The test architecture as a tag with upstream weights: an OpenMMLab file whose SHA-256 the tag records."""
    source = hrnet_zoo.create_model(ARCH).eval()
    for p in source.parameters():
        p.data.normal_(0, 0.05)
    state_dict = to_openmmlab_layout(source.state_dict())
    buffer = io.BytesIO()
    torch.save({"meta": {"epoch": 210}, "state_dict": state_dict}, buffer)
    sha = hashlib.sha256(buffer.getvalue()).hexdigest()
    path = tmp_path / f"hrnet_w18_small_coco_256x192-{sha[:8]}_20200708.pth"
    path.write_bytes(buffer.getvalue())
    cfg = replace(
        PRETRAINED_CFGS[ARCH],
        url=f"https://example.invalid/{path.name}",
        sha256_prefix=sha[:8],
        metrics={"coco_val_ap": 0.5},
        metrics_source="https://example.invalid/table",
        license="apache-2.0",
    )
    monkeypatch.setitem(PRETRAINED_CFGS, ARCH, cfg)
    return path, source


def test_pose_meta_is_the_one_owner():
    model = hrnet_zoo.create_model("hrnet_w32_pose.mpii_256x256", device="meta")
    meta = model.pose_meta
    assert meta == PRETRAINED_CFGS["hrnet_w32_pose.mpii_256x256"].pose_meta and meta.origin is None
    assert model.keypoints is meta.keypoints and meta.codec == HeatmapCodec((256, 256))
    cfg = model.pretrained_cfg
    assert cfg["input_size"] == (3, 256, 256) and cfg["num_classes"] == 16
    assert cfg["label_names"] == meta.keypoints.names
    assert cfg["mean"] == meta.mean and cfg["pool_size"] == (64, 64)
    model.reset_head(4, KITE)
    assert model.pose_meta.keypoints == KITE and model.pose_meta.codec == meta.codec
    assert cfg["num_classes"] == 16, "the sync replaces timm's configuration, it does not edit a dict handed out"
    cfg = model.pretrained_cfg
    assert cfg["num_classes"] == 4 and cfg["label_names"] == KITE.names and "kite" in cfg["description"]
    sized = hrnet_zoo.create_model(ARCH, input_size=(128, 96), keypoints=KITE)
    assert sized.pose_meta.input_size == (128, 96) and sized.pose_meta.codec.heatmap_size == (32, 24)
    assert sized.pretrained_cfg["input_size"] == (3, 128, 96) and sized.num_joints == 4
    meta_model = hrnet_zoo.create_model(ARCH, pose_meta=PoseMeta(KITE, HeatmapCodec.udp((128, 128))))
    assert meta_model.num_joints == 4 and meta_model.pose_meta.codec.encoding == "udp"
    with pytest.raises(ValueError, match="num_joints=5 does not match the 4 keypoints"):
        hrnet_zoo.create_model(ARCH, num_joints=5, keypoints=KITE)


def test_upstream_weights_keep_their_provenance(upstream_tag, tmp_path):
    path, source = upstream_tag
    model = hrnet_zoo.create_model(ARCH, checkpoint_path=path)
    assert same_weights(model, source)
    origin = model.pose_meta.origin
    assert origin.name == ARCH and origin.metrics == {"coco_val_ap": 0.5} and origin.license == "apache-2.0"
    assert origin.describes(model)
    folder = hrnet_zoo.save_pretrained(model, tmp_path / "converted")
    card = (folder / "README.md").read_text()
    assert "| coco_val_ap | 0.5 |" in card and "license: apache-2.0" in card and "unchanged" in card
    # The converted folder reloads with the same claims (its fingerprint still matches) through both factories.
    for factory in (hrnet_zoo.create_model, timm.create_model):
        again = factory(f"local-dir:{folder}", pretrained=True)
        assert same_weights(again, source) and again.pose_meta == model.pose_meta
    # Another file for the same tag (not the upstream one) claims nothing.
    other = tmp_path / "other.safetensors"
    hrnet_zoo.save_pretrained(hrnet_zoo.create_model(ARCH), tmp_path / "random")
    (tmp_path / "random" / "model.safetensors").rename(other)
    stranger = hrnet_zoo.create_model(ARCH, checkpoint_path=other)
    assert stranger.pose_meta.origin.name == "file other.safetensors" and not stranger.pose_meta.origin.metrics


def test_fine_tuned_model_travels_with_its_metadata(upstream_tag, tmp_path):
    """A 4-keypoint model fine-tuned at 128x128 from upstream weights: saved, reloaded, used, described truly."""
    path, _ = upstream_tag
    model = hrnet_zoo.create_model(
        ARCH, pretrained=True, pretrained_cfg_overlay={"file": str(path)}, keypoints=KITE, input_size=(128, 128)
    )
    assert model.pose_meta.origin.base == ARCH and not model.pose_meta.origin.metrics
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    batch = (torch.randn(2, 3, 128, 128), torch.rand(2, 4, 32, 32), torch.ones(2, 4), {})
    train_one_epoch(model.train(), [batch], optimizer, JointsMSELoss(), torch.device("cpu"))
    folder = hrnet_zoo.save_pretrained(model.eval(), tmp_path / "kite-model")
    config = json.loads((folder / "config.json").read_text())
    saved = config["model_args"]["pose_meta"]
    assert saved["keypoints"]["flip_pairs"] == [[1, 2]] and saved["codec"]["input_size"] == [128, 128]
    assert config["pretrained_cfg"]["input_size"] == [3, 128, 128] and config["num_classes"] == 4
    card = (folder / "README.md").read_text()
    assert f"Fine-tuned or otherwise changed from `{ARCH}`" in card and "coco_val_ap" not in card
    assert "license: apache-2.0" in card and "example.invalid" not in card and "128x128" in card
    ours = hrnet_zoo.create_model(f"local-dir:{folder}", pretrained=True).eval()
    theirs = timm.create_model(f"local-dir:{folder}", pretrained=True).eval()
    for reloaded in (ours, theirs):
        assert same_weights(reloaded, model) and reloaded.pose_meta.keypoints == KITE
        assert reloaded.pose_meta.codec == HeatmapCodec((128, 128)) and reloaded.pose_meta.origin.base == ARCH
        estimator = PoseEstimator(reloaded)
        assert estimator.input_size == (128, 128) and estimator.keypoints.flip_index == [0, 2, 1, 3]
    assert ours.pose_meta == theirs.pose_meta and ours.pretrained_cfg == theirs.pretrained_cfg
    # Saving the reloaded model again keeps the same (true) description.
    again = hrnet_zoo.save_pretrained(ours, tmp_path / "again")
    assert json.loads((again / "config.json").read_text())["model_args"] == config["model_args"]


def test_weights_origin_follows_the_weights():
    model = hrnet_zoo.create_model(ARCH)
    fingerprint = weights_fingerprint(model)
    origin = WeightsOrigin(name="x", fingerprint=fingerprint, metrics={"ap": 1.0})
    assert origin.describes(model) and WeightsOrigin.from_dict(origin.to_dict()) == origin
    with torch.no_grad():
        model.head.bias.add_(1e-3)
    assert not origin.describes(model) and weights_fingerprint(model) != fingerprint
    derived = origin.derived(None)
    assert derived.base == "x" and not derived.metrics and derived.fingerprint is None
    meta = PoseMeta(COCO_KEYPOINTS, origin=origin)
    assert PoseMeta.from_dict(json.loads(json.dumps(meta.to_dict()))) == meta
    with pytest.raises(ValueError, match="malformed pose metadata"):
        PoseMeta.from_dict({"codec": {}})
    with pytest.raises(ValueError, match="malformed keypoint set"):
        KeypointSet.from_dict({"name": "x", "names": ["a"], "skeleton": [[0]]})


def test_the_metadata_edits_no_dict_the_caller_owns():
    mine = dict(hrnet_zoo.create_model(ARCH).pretrained_cfg)
    before = dict(mine)
    model = hrnet_zoo.create_model(ARCH, pretrained_cfg=mine, keypoints=KITE)
    assert mine == before and model.pretrained_cfg is not mine
    assert model.pretrained_cfg["num_classes"] == 4 and mine["num_classes"] == 17
    model.pretrained_cfg = mine  # timm's builder sets it this way: a copy is kept, with the metadata's fields
    assert mine == before and model.pretrained_cfg["label_names"] == KITE.names


@pytest.mark.parametrize("entry", ["hrnet_zoo", "timm"])
def test_an_overlaid_input_size_and_normalisation_survive_saving(entry, tmp_path):
    """timm's pretrained_cfg_overlay sets the metadata it owns; a model saved this way reloads the same."""
    overlay = dict(input_size=(3, 128, 128), mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    model = hrnet_zoo.create_model(ARCH, pretrained_cfg_overlay=overlay)
    meta = model.pose_meta
    assert meta.input_size == (128, 128) and meta.codec.heatmap_size == (32, 32)
    assert meta.mean == (0.5, 0.5, 0.5) and meta.std == (0.25, 0.25, 0.25)
    assert model.pretrained_cfg["input_size"] == (3, 128, 128) and model.pretrained_cfg["pool_size"] == (32, 32)
    assert model(torch.randn(1, 3, 128, 128)).shape == (1, 17, 32, 32)
    hrnet_zoo.save_pretrained(model, tmp_path / "saved")
    create = hrnet_zoo.create_model if entry == "hrnet_zoo" else timm.create_model
    reloaded = create(f"local-dir:{tmp_path / 'saved'}", pretrained=True)
    assert reloaded.pose_meta.codec == meta.codec and reloaded.pose_meta.mean == meta.mean
    assert reloaded.pose_meta.std == meta.std and reloaded.pretrained_cfg["input_size"] == (3, 128, 128)
    torch.testing.assert_close(reloaded.state_dict(), model.state_dict(), rtol=0, atol=0)


def test_an_overlay_of_fields_it_cannot_set_is_refused():
    for field, advice in (("num_classes", "num_joints="), ("label_names", "keypoints="), ("pool_size", "input_size=")):
        with pytest.raises(ValueError, match=f"pretrained_cfg_overlay sets {field}.*{advice}"):
            hrnet_zoo.create_model(ARCH, pretrained_cfg_overlay={field: 5})
    with pytest.raises(ValueError, match=r"input_size \(1, 128, 128\) has 1 channels, the model 3"):
        hrnet_zoo.create_model(ARCH, pretrained_cfg_overlay=dict(input_size=(1, 128, 128)))
    with pytest.raises(ValueError, match="std positive"):
        hrnet_zoo.create_model(ARCH, pretrained_cfg_overlay=dict(std=(0.0, 1.0, 1.0)))
