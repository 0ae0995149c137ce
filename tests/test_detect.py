"""Person detection: torchvision detectors from local or downloaded checkpoints, callables, the offline message."""

from __future__ import annotations

import hashlib
import io
import re
import types

import numpy as np
import pytest
import torch
import torchvision
from torchvision.ops import box_iou

import hrnet_zoo
from hrnet_zoo import PoseEstimator
from hrnet_zoo.errors import CheckpointMismatchError, WeightsUnavailableError
from hrnet_zoo.io.images import load_image
from hrnet_zoo.pose import DETECTORS, PersonDetector, detect_persons
from hrnet_zoo.pose import detect as detect_module

from .conftest import REPO

PHOTO = REPO / "examples" / "images" / "astronaut.jpg"
LIGHT = "ssdlite320_mobilenet_v3_large"


def person_biased_ssdlite() -> dict[str, torch.Tensor]:
    """Random ssdlite weights whose classifier favours 'person' everywhere: many overlapping person boxes."""
    torch.manual_seed(0)
    net = torchvision.models.get_model(LIGHT, weights=None, weights_backbone=None, num_classes=91)
    state = net.state_dict()
    for key, value in state.items():
        if re.fullmatch(r"head\.classification_head\.module_list\.\d+\.1\.bias", key):
            value.view(-1, 91)[:, 1] += 8.0
    return state


@pytest.fixture(scope="module")
def ssdlite_checkpoint(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("detector") / "ssdlite.pth"
    torch.save(person_biased_ssdlite(), path)
    return str(path)


def test_person_detector_keeps_persons_above_threshold_after_nms(ssdlite_checkpoint):
    detector = PersonDetector(
        LIGHT, checkpoint=ssdlite_checkpoint, score_threshold=0.3, nms_threshold=0.4, device="cpu"
    )
    image = load_image(PHOTO)
    boxes, scores = detector(image)
    with torch.inference_mode():  # the same computation by hand on the raw torchvision output
        raw = detector.net([image.float() / 255])[0]
    person = (raw["labels"] == 1) & (raw["scores"] >= 0.3)
    expected = torchvision.ops.nms(raw["boxes"][person], raw["scores"][person], 0.4)
    assert len(boxes) == len(expected) > 1
    torch.testing.assert_close(boxes, raw["boxes"][person][expected])
    assert (scores >= 0.3).all() and (scores[:-1] >= scores[1:]).all()
    iou = box_iou(boxes, boxes).fill_diagonal_(0)
    assert iou.max() <= 0.4
    capped = PersonDetector(LIGHT, checkpoint=ssdlite_checkpoint, score_threshold=0.3, max_persons=2, device="cpu")
    assert len(capped(image)[0]) == 2
    batched = detector.detect([image, image.flip(-1)])
    torch.testing.assert_close(batched[0][0], boxes)


def test_estimator_uses_the_detector_only_without_boxes(ssdlite_checkpoint):
    model = hrnet_zoo.create_model("hrnet_w18_small_pose", input_size=(64, 64))
    estimator = PoseEstimator(
        model, device="cpu", flip_test=False, detector=LIGHT, detector_checkpoint=ssdlite_checkpoint
    )
    detected, given = estimator.predict([str(PHOTO), str(PHOTO)], boxes=[None, [[10, 20, 100, 200]]])
    boxes, scores = PersonDetector(LIGHT, checkpoint=ssdlite_checkpoint, device="cpu")(load_image(PHOTO))
    np.testing.assert_allclose(detected.boxes, boxes.numpy(), atol=1e-3)
    np.testing.assert_allclose(detected.box_scores, scores.numpy(), atol=1e-6)
    assert len(detected) == len(boxes) and detected.keypoints.shape[1:] == (17, 3)
    assert len(given) == 1 and given.boxes.tolist() == [[10, 20, 110, 220]] and given.box_scores.tolist() == [1]
    assert detected.to_coco(3)[0]["box_score"] == round(float(scores[0]), 5)


def test_any_callable_is_a_detector():
    calls = []

    def two_persons(image):
        calls.append(tuple(image.shape))
        return np.array([[10, 10, 110, 310], [200, 50, 260, 250], [0, 0, 0.5, 0.5]]), [0.9, 0.8, 0.7]

    model = hrnet_zoo.create_model("hrnet_w18_small_pose", input_size=(64, 64))
    estimator = PoseEstimator(model, device="cpu", flip_test=False, detector=two_persons)
    (result,) = estimator.predict(str(PHOTO))
    assert calls == [(3, 512, 512)]
    assert result.boxes.tolist() == [[10, 10, 110, 310], [200, 50, 260, 250]]  # the sub-pixel box is dropped
    assert result.box_scores.tolist() == pytest.approx([0.9, 0.8])
    image = load_image(PHOTO)
    clipped = detect_persons(lambda im: ([[-20, -5, 600, 100]], [0.5]), [image])[0][0]
    assert clipped.tolist() == [[0, 0, 512, 100]]
    for bad, message in [
        (lambda im: [[0, 0, 5, 5]], "must return (boxes, scores)"),
        (lambda im: ([[0, 0, 5]], [1.0]), "is not (P, 4) boxes"),
        (lambda im: ([[0, 0, 5, 5]], [1.0, 0.5]), "1 boxes but 2 scores"),
    ]:
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            PoseEstimator(model, device="cpu", detector=bad).predict(image)
    with pytest.raises(ValueError, match="must be a name, a PersonDetector or a callable"):
        PoseEstimator(model, device="cpu", detector=42)
    with pytest.raises(ValueError, match="unknown detector 'yolo'"):
        PersonDetector("yolo")


def served_weights(server, monkeypatch, tmp_path, body: bytes) -> str:
    """Point the ssdlite weights at the stand-in server, named with the body's SHA-256 prefix like torchvision's."""
    digest = hashlib.sha256(body).hexdigest()[:8]
    url_path = f"/models/ssdlite-{digest}.pth"
    server.files[url_path] = body
    real = torchvision.models.get_model_weights(LIGHT).DEFAULT
    weights = types.SimpleNamespace(url=server.url + url_path, meta=real.meta)
    monkeypatch.setattr(detect_module, "get_model_weights", lambda name: types.SimpleNamespace(DEFAULT=weights))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "torch_hub"))
    return url_path


def test_detector_weights_download_verified_and_cached(server, monkeypatch, tmp_path):
    buffer = io.BytesIO()
    torch.save(person_biased_ssdlite(), buffer)
    url_path = served_weights(server, monkeypatch, tmp_path, buffer.getvalue())
    PersonDetector(LIGHT, device="cpu")
    cached = tmp_path / "torch_hub" / "checkpoints" / url_path.rsplit("/", 1)[1]
    assert cached.read_bytes() == buffer.getvalue()
    server.faults[url_path] = "500"
    PersonDetector(LIGHT, device="cpu")  # served from torchvision's cache folder, no request
    assert [r for r in server.requests if r[1] == url_path] == [("GET", url_path)]


@pytest.mark.parametrize("fault", ["500", "cut", "wrong bytes"])
def test_detector_weights_faults_say_how_to_supply_them(server, monkeypatch, tmp_path, fault):
    url_path = served_weights(server, monkeypatch, tmp_path, b"checkpoint bytes")
    if fault == "wrong bytes":
        server.files[url_path] = b"other bytes"
    else:
        server.faults[url_path] = fault
    with pytest.raises(WeightsUnavailableError) as info:
        PersonDetector(LIGHT, device="cpu")
    error, file_name = info.value, url_path.rsplit("/", 1)[1]
    cache = tmp_path / "torch_hub" / "checkpoints"
    assert (error.kind, error.name, error.url, error.cache_path) == (
        "detector",
        LIGHT,
        server.url + url_path,
        cache / file_name,
    )
    message = str(error)
    assert "checkpoint=PATH to PersonDetector" in message and "detector_checkpoint=PATH to PoseEstimator" in message
    assert file_name in message and str(cache / file_name) in message and "give person boxes" in message
    assert "--" not in message, "the library speaks to Python users; the CLI adds its flags"
    assert list(cache.iterdir()) == []


def test_bad_detector_checkpoints_are_named(tmp_path, ssdlite_checkpoint):
    with pytest.raises(FileNotFoundError, match=r"nope\.pth"):
        PersonDetector(LIGHT, checkpoint=tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"could not read checkpoint .*junk\.pth"):
        PersonDetector(LIGHT, checkpoint=tmp_path / "junk.pth")
    with pytest.raises(
        CheckpointMismatchError, match="does not fit the fasterrcnn_mobilenet_v3_large_320_fpn detector"
    ):
        PersonDetector("fasterrcnn_mobilenet_v3_large_320_fpn", checkpoint=ssdlite_checkpoint)
    assert set(DETECTORS) <= set(torchvision.models.list_models(torchvision.models.detection))


def test_the_detector_table_in_the_docs_is_torchvisions():
    rows = {}
    for line in (REPO / "docs" / "detectors.md").read_text().splitlines():
        match = re.fullmatch(r"\| `(\w+)`[^|]* \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", line)
        if match:
            rows[match.group(1)] = tuple(float(v) for v in match.groups()[1:])
    assert list(rows) == list(DETECTORS)
    for name, (box_ap, params, gflops) in rows.items():
        meta = torchvision.models.get_model_weights(name).DEFAULT.meta
        assert box_ap == meta["_metrics"]["COCO-val2017"]["box_map"], name
        assert params == round(meta["num_params"] / 1e6, 1) and gflops == round(meta["_ops"], 1), name


def test_detectors_run_with_batch_norms_folded_and_find_the_same_persons(tmp_path):
    state = person_biased_ssdlite()
    generator = torch.Generator().manual_seed(1)
    for key, value in state.items():  # statistics far from the identity, so that folding changes the weights
        if key.endswith(("running_mean", "bias")) and value.is_floating_point():
            value.copy_(0.1 * torch.randn(value.shape, generator=generator) + value)
        elif key.endswith("running_var"):
            value.copy_(torch.rand(value.shape, generator=generator) + 0.5)
    torch.save(state, tmp_path / "ssdlite.pth")
    detector = PersonDetector(LIGHT, checkpoint=tmp_path / "ssdlite.pth", score_threshold=0.3, device="cpu")
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in detector.net.modules())
    reference = torchvision.models.get_model(LIGHT, weights=None, weights_backbone=None, num_classes=91)
    reference.load_state_dict(state)
    batch = reference.transform([load_image(PHOTO).float() / 255])[0].tensors
    with torch.inference_mode():  # the network's raw outputs, before the detections are picked from them
        folded = detector.net.head(list(detector.net.backbone(batch).values()))
        unfolded = reference.eval().head(list(reference.backbone(batch).values()))
    for name in ("cls_logits", "bbox_regression"):
        scale = unfolded[name].abs().max()
        torch.testing.assert_close(folded[name] / scale, unfolded[name] / scale, atol=1e-4, rtol=0)
