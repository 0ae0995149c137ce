"""BottomUpEstimator end to end: drawn figures, a hand-made network whose outputs follow the drawing, and poses whose
decoding is known (DEKR and associative embedding, each protocol, flip test, a resized image), then stream, run,
evaluate and the command line."""

from __future__ import annotations

import json
from dataclasses import replace

import av
import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor, nn

import hrnet_zoo
from hrnet_zoo import BottomUpEstimator, PoseEstimator
from hrnet_zoo.cli import main
from hrnet_zoo.codec import BottomUpCodec
from hrnet_zoo.evaluation import evaluate
from hrnet_zoo.keypoints import get_keypoint_set
from hrnet_zoo.models import PoseMeta

from .conftest import REPO

COCO = get_keypoint_set("coco")
MEAN = torch.tensor(PoseMeta(COCO, BottomUpCodec()).mean).view(1, 3, 1, 1)
STD = torch.tensor(PoseMeta(COCO, BottomUpCodec()).std).view(1, 3, 1, 1)

#: A standing person in heatmap pixels (stride 4) around its centre: ``(dx, dy)`` per COCO joint. The person's left
#: joints are on the image's right (larger x), as for a person facing the camera.
TEMPLATE = np.array(
    [
        *([0, -12], [1, -13], [-1, -13], [3, -12], [-3, -12], [5, -8], [-5, -8], [7, -3], [-7, -3]),
        *([8, 2], [-8, 2], [3, 4], [-3, 4], [3, 11], [-3, 11], [3, 18], [-3, 18]),
    ]
)
#: Three persons' centres in heatmap pixels of a 64 x 96 map (a 256 x 384 image at stride 4).
CENTRES = np.array([[16, 30], [48, 32], [80, 29]])


def scene_joints() -> np.ndarray:
    """``(3, 17, 2)`` joints in heatmap pixels: the template at each centre, arms raised by person."""
    joints = np.stack([TEMPLATE + c for c in CENTRES])
    joints[1, 9:11, 1] -= 6  # the middle person's wrists raised
    joints[2, 7:9, 1] += 2
    return joints


def _mark(canvas: np.ndarray, xy: np.ndarray, scale: int, colour: tuple[float, float, float]) -> None:
    """A square around image pixel ``scale * xy``: 3 x 3 at scale 4, 6 x 6 at scale 8."""
    x, y = (int(v) * scale for v in xy)
    lo, hi = (1, 1) if scale == 4 else (2, 3)
    canvas[y - lo : y + hi + 1, x - lo : x + hi + 1] = colour


def draw_scene(joints: np.ndarray, zoom: int = 1, centres: np.ndarray = CENTRES) -> np.ndarray:
    """A ``(256 * zoom, 384 * zoom, 3)`` uint8 image of the persons: grey limbs, each joint a square whose red
    channel is full and whose green channel codes its kind (the nose, or a left/right pair), each centre a blue
    square (:func:`_mark`)."""
    scale = 4 * zoom
    canvas = np.zeros((64 * scale, 96 * scale, 3), np.float32)
    for person in joints:
        for a, b in COCO.skeleton:  # limbs, for the eye: they carry neither a full red nor a full blue channel
            xs = np.linspace(person[a, 0], person[b, 0], 40) * scale
            ys = np.linspace(person[a, 1], person[b, 1], 40) * scale
            canvas[ys.round().astype(int), xs.round().astype(int)] = (0.5, 0.5, 0.5)
    for person, centre in zip(joints, centres):
        for j, xy in enumerate(person):
            _mark(canvas, xy, scale, (1.0, ((j + 1) // 2 + 1) / 10, 0.0))  # nose kind 0, then one per pair
        _mark(canvas, centre, scale, (0.0, 0.0, 1.0))
    return (canvas * 255).round().astype(np.uint8)


class DrawingReader(nn.Module):
    """A hand-made bottom-up 'network' that reads the drawing of :func:`draw_scene` from its normalised input.

    Heatmap pixel ``i`` looks at input pixel ``stride * i``: a joint square there of kind ``c`` lights the kind's
    joint channel, a pair's two joints told apart by their side of the nearest centre (the larger x is the left
    joint, as a real network would see it, so the flip test holds); a centre square lights the centre channel.
    Every pixel belongs to its nearest centre's person: DEKR's offsets point from the pixel to that person's joints
    (``pixel - joint``), and associative embedding's tags are the person's rank by x, times 3.
    """

    def __init__(self, method: str, protocol: str = "reference") -> None:
        super().__init__()
        codec = BottomUpCodec(method, protocol=protocol, input_size=(256, 256), detection_threshold=0.05)
        self.pose_meta = PoseMeta(COCO, codec)
        self.method = method
        self.anchor = nn.Parameter(torch.zeros(()))  # a parameter: the estimator takes the device from it

    def _read(self, x: Tensor, stride: int) -> tuple[Tensor, Tensor, Tensor]:
        """``(K + 1, H, W)`` heatmaps, ``(2K, H, W)`` offsets and ``(H, W)`` person ranks at ``stride``."""
        pixels = (x * STD + MEAN)[0, :, ::stride, ::stride]
        red, green, blue = pixels
        h, w = red.shape
        joint = (red - 1).abs() < 1e-3
        kind = torch.round(green * 10 - 1)
        centres = ((blue - 1).abs() < 1e-3) & (red < 1e-3)
        centre_yx = centres.nonzero().double()
        centre_yx = centre_yx[centre_yx[:, 1].argsort()]
        grid = torch.stack(torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij"), -1).double()
        owner = torch.cdist(grid.reshape(-1, 2), centre_yx).argmin(1).reshape(h, w)
        k = len(COCO)
        heatmaps = torch.zeros(k + 1, h, w)
        heatmaps[k] = centres.float()
        joints = torch.zeros(len(centre_yx), k, 2, dtype=torch.float64)
        for y, x_ in joint.nonzero().tolist():
            c, person = int(kind[y, x_]), int(owner[y, x_])
            j = 0 if c == 0 else 2 * c - 1 if x_ > centre_yx[person, 1] else 2 * c
            heatmaps[j, y, x_] = 1.0
            joints[person, j] = torch.tensor([x_, y], dtype=torch.float64)
        pixel_xy = grid.flip(-1)  # (H, W, 2) x, y
        offsets = pixel_xy[:, :, None] - joints[owner]  # (H, W, K, 2)
        return heatmaps, offsets.reshape(h, w, 2 * k).permute(2, 0, 1).float(), owner.float()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor] | list[Tensor]:
        heatmaps, offsets, owner = self._read(x, 4)
        if self.method == "dekr":
            return heatmaps[None], offsets[None]
        k = len(COCO)
        tags = (3 * (owner + 1)).expand(k, -1, -1)
        fine, _, _ = self._read(x, 2)
        return [torch.cat([heatmaps[:k], tags])[None], fine[None, :k]]


def _estimate(model: nn.Module, image: np.ndarray, **kwargs) -> hrnet_zoo.PoseResult:
    (result,) = BottomUpEstimator(model, optimize=False, **kwargs).predict(image)
    return result


def _by_centre(result: hrnet_zoo.PoseResult) -> np.ndarray:
    """The result's keypoints, persons ordered by x as :data:`CENTRES`."""
    return result.keypoints[np.argsort(result.keypoints[:, :, 0].mean(1))]


@pytest.mark.parametrize("flip_test", [False, True])
def test_dekr_finds_the_drawn_persons_exactly(flip_test):
    joints = scene_joints()
    result = _estimate(DrawingReader("dekr"), draw_scene(joints), flip_test=flip_test)
    found = _by_centre(result)
    assert found.shape == (3, 17, 3)
    np.testing.assert_allclose(found[..., :2], 4 * joints, atol=1e-4)  # heatmap pixels to image pixels
    np.testing.assert_allclose(found[..., 2], 1.0, atol=1e-6)  # centre score 1 x heat value 1
    np.testing.assert_allclose(result.scores, 1.0, atol=1e-6)
    boxes = result.boxes[np.argsort(result.boxes[:, 0])]
    np.testing.assert_allclose(boxes[:, :2], 4 * joints.min(1), atol=1e-4)  # the extent of the joints
    np.testing.assert_allclose(boxes[:, 2:], 4 * joints.max(1), atol=1e-4)


def test_dekr_maps_a_resized_image_back_and_tests_at_several_scales():
    joints = scene_joints()
    image = draw_scene(joints, zoom=2)  # 512 x 768: resized by half for the 256 input
    found = _by_centre(_estimate(DrawingReader("dekr"), image, flip_test=True))
    np.testing.assert_allclose(found[..., :2], 8 * joints, atol=1e-3)
    # scale 2 sees the same persons at twice the resolution; the proposals of both scales meet in the pose NMS,
    # which keeps one of each person
    both = _estimate(DrawingReader("dekr"), image, flip_test=False, scales=(2.0, 1.0))
    assert len(both.keypoints) == 3
    np.testing.assert_allclose(_by_centre(both)[..., :2], 8 * joints, atol=1e-3)


def test_dekr_with_mmpose_protocol():
    joints = scene_joints()
    result = _estimate(DrawingReader("dekr", "openmmlab1"), draw_scene(joints), flip_test=False)
    found = _by_centre(result)
    np.testing.assert_allclose(found[..., :2], 4 * joints, atol=1e-4)
    assert (found[..., 2] > 0).all() and (found[..., 2] <= 1).all()  # sampled bilinearly near the peak
    np.testing.assert_allclose(result.scores, result.keypoints[..., 2].mean(1), rtol=1e-6)


def test_associative_embedding_groups_the_drawn_persons():
    joints = scene_joints()
    result = _estimate(DrawingReader("associative_embedding"), draw_scene(joints), flip_test=False)
    found = _by_centre(result)
    assert found.shape == (3, 17, 3)
    # the stride-4 and stride-2 heatmaps are averaged and brought to the input size, where each peak spans two
    # pixels; the reference's +0.5 and quarter-pixel adjustment keep every joint within 1.5 pixels
    error = np.abs(found[..., :2] - 4 * joints)
    assert error.max() <= 1.5, error.max()
    assert (found[..., 2] > 0.1).all()


def test_bottom_up_refuses_boxes_and_top_down_models():
    estimator = BottomUpEstimator(DrawingReader("dekr"), optimize=False)
    with pytest.raises(ValueError, match="takes no boxes"):
        estimator.predict(draw_scene(scene_joints()), boxes=[[0, 0, 10, 10]])
    with pytest.raises(ValueError, match="detect_every=3"):
        next(estimator.stream(str(REPO / "examples" / "images" / "astronaut.jpg"), detect_every=3))
    with pytest.raises(ValueError, match=r"not a bottom-up model.*PoseEstimator"):
        BottomUpEstimator(hrnet_zoo.create_model("hrnet_w18_small_pose"))
    with pytest.raises(ValueError, match=r"is a bottom-up model.*BottomUpEstimator"):
        PoseEstimator(DrawingReader("dekr"))
    with pytest.raises(ValueError, match="single scale 1"):
        BottomUpEstimator(DrawingReader("dekr", "openmmlab1"), scales=(1.0, 0.5))
    assert estimator.predict([]) == []


def _walk_video(path, frames: int = 3) -> str:
    """A losslessly coded video (PNG frames in a .mov) of the three persons walking one heatmap pixel right per
    frame."""
    container = av.open(str(path), "w")
    stream = container.add_stream("png", rate=10)
    stream.width, stream.height, stream.pix_fmt = 384, 256, "rgb24"
    for i in range(frames):
        joints = scene_joints()
        joints[:, :, 0] += i
        image = draw_scene(joints, centres=CENTRES + np.array([i, 0]))
        container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
    container.mux(stream.encode())
    container.close()
    return str(path)


def test_stream_tracks_and_run_writes_the_persons(tmp_path):
    video = _walk_video(tmp_path / "walk.mov")
    estimator = BottomUpEstimator(DrawingReader("dekr"), optimize=False)
    tracked = [result for _, result in estimator.stream(video, track=True, smooth="one_euro")]
    ids = [r.track_ids[np.argsort(r.keypoints[:, 0, 0])].tolist() for r in tracked]
    assert ids[0] == ids[1] == ids[2] and sorted(ids[0]) == [1, 2, 3]  # each person keeps a track through the video
    noses = np.stack([_by_centre(r)[:, 0, 0] for r in tracked])  # (frames, persons) smoothed nose x
    drawn = 4 * (scene_joints()[:, 0, 0] + np.arange(3)[:, None])
    np.testing.assert_allclose(noses[0], drawn[0], atol=1e-4)  # the filter starts at the first pose
    assert (noses[1:] > drawn[:-1]).all() and (noses[1:] < drawn[1:]).all()  # then follows, lagging a little
    summary = estimator.run(video, tmp_path / "run", draw=False, track=True)
    assert summary.frames == 3 and summary.persons == 9
    results = json.loads(summary.results_file.read_text())
    assert sorted({r["track_id"] for r in results}) == [1, 2, 3] and all(len(r["keypoints"]) == 51 for r in results)


def test_evaluate_scores_the_drawn_persons_perfectly(tmp_path):
    joints = scene_joints()
    Image.fromarray(draw_scene(joints)).save(tmp_path / "scene.png")
    annotations = []
    for i, person in enumerate(4 * joints):
        x0, y0 = person.min(0)
        x1, y1 = person.max(0)
        keypoints = np.concatenate([person, np.full((17, 1), 2)], 1).reshape(-1).tolist()
        annotations.append(
            {
                "id": i + 1,
                "image_id": 1,
                "category_id": 1,
                "keypoints": keypoints,
                "num_keypoints": 17,
                "bbox": [float(x0), float(y0), float(x1 - x0), float(y1 - y0)],
                "area": float((x1 - x0) * (y1 - y0)) * 1.5,
                "iscrowd": 0,
            }
        )
    coco = {
        "images": [{"id": 1, "file_name": "scene.png", "width": 384, "height": 256}],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "person", "keypoints": list(COCO.names), "skeleton": []}],
    }
    (tmp_path / "ann.json").write_text(json.dumps(coco))
    estimator = BottomUpEstimator(DrawingReader("dekr"), optimize=False)
    report = evaluate(estimator, tmp_path / "ann.json", tmp_path)
    assert report["stats"]["AP"] == pytest.approx(1.0) and len(report["results"]) == 3
    with pytest.raises(ValueError, match="without detections"):
        evaluate(estimator, tmp_path / "ann.json", tmp_path, detections=[])


def test_bottom_up_estimator_runs_the_registered_models():
    torch.manual_seed(0)
    for name, cls in (("dekr_hrnet_w32", "DEKR"), ("higherhrnet_w32", "HigherHRNet")):
        model = hrnet_zoo.create_model(name, pretrained=False)
        assert type(model).__name__ == cls
        with torch.no_grad():  # a centre / joint everywhere: the decoders have proposals to work on
            head = model.head
            last = head.heatmap_final if cls == "DEKR" else head.final_layers[0]
            last.bias.fill_(3.0)
        model.pose_meta = replace(model.pose_meta, codec=replace(model.pose_meta.codec, protocol="reference"))
        higher = cls == "HigherHRNet"  # the flip test and the folded copy there, DEKR's deformable convs are slow
        estimator = BottomUpEstimator(model, device="cpu", flip_test=higher, input_size=(256, 256), optimize=higher)
        (result,) = estimator.predict(np.zeros((60, 90, 3), np.uint8))
        assert result.keypoints.shape[1:] == (17, 3) and len(result.keypoints) > 0
        assert np.isfinite(result.keypoints).all() and result.image_size == (60, 90)
        assert model.training  # the caller's model keeps its mode


def test_cli_predicts_with_a_bottom_up_model(tmp_path, capsys):
    photo = str(REPO / "examples" / "images" / "astronaut.jpg")
    out_dir = tmp_path / "out"
    args = ["predict", photo, "--model", "dekr_hrnet_w32", "--no-pretrained", "--no-flip", "--device", "cpu"]
    assert main([*args, "--out-dir", str(out_dir)]) == 0
    assert json.loads((out_dir / "images.json").read_text())["info"]["detector"] is None
    assert (out_dir / "astronaut_pose.png").is_file()
    capsys.readouterr()
    refused = tmp_path / "refused"
    assert main([*args, "--out-dir", str(refused), "--detect-every", "3", "--decoder", "dark"]) == 2
    err = capsys.readouterr().err
    assert "bottom-up model" in err and "--detect-every, --decoder do not apply" in err and not refused.exists()
    assert main([*args[:4], "--model", "hrnet_w18_small_pose", "--scales", "1", "2", "--out-dir", str(refused)]) == 2
    assert "--scales sets a bottom-up model's test scales" in capsys.readouterr().err and not refused.exists()
