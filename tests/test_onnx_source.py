"""Top-down ONNX keypoint models (poselift.infer.sources.onnx_topdown) on tiny hand-built graphs.

The models are built with onnx.helper: constant SimCC / heatmap outputs with
peaks at known model-input pixels (so the expected image pixels follow from
the box by hand), and one whose SimCC output is the image's column / row
profile, so a bright dot in the frame must come back at its own pixel.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper  # noqa: E402

from poselift.errors import ConfigError, KeypointFormatError  # noqa: E402
from poselift.infer.sources.onnx_topdown import OnnxTopDown, crop_transform  # noqa: E402

W, H, K = 48, 64, 2  # model input (width, height) and SimCC split ratio
J = np.arange(17)
PEAK_U = 2.0 + 2 * J  # joint j peaks at input pixel (u, v)
PEAK_V = 60.0 - 3 * J
PEAK_X_VAL = 0.5 + J / 40  # maxima of the two SimCC vectors: score = the smaller
PEAK_Y_VAL = 0.9 - J / 40


def _save(tmp_path, name, nodes, outputs, batch=1):
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, H, W])], outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path = tmp_path / name
    onnx.save(model, path)
    return path


def _const(name, arr):
    arr = np.asarray(arr, dtype=np.float32)
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(
        name + "_value", TensorProto.FLOAT, arr.shape, arr.ravel().tolist()))


def _simcc_model(tmp_path, joints=17, name="simcc.onnx"):
    sx = np.zeros((1, joints, W * K), np.float32)
    sy = np.zeros((1, joints, H * K), np.float32)
    for j in range(joints):
        sx[0, j, int(PEAK_U[j % 17] * K)] = PEAK_X_VAL[j % 17]
        sy[0, j, int(PEAK_V[j % 17] * K)] = PEAK_Y_VAL[j % 17]
        sx[0, j, int(PEAK_U[j % 17] * K) + 1] = 0.1  # a lower neighbour must not win
    return _save(tmp_path, name, [_const("simcc_x", sx), _const("simcc_y", sy)],
                 [helper.make_tensor_value_info("simcc_x", TensorProto.FLOAT, [1, joints, W * K]),
                  helper.make_tensor_value_info("simcc_y", TensorProto.FLOAT, [1, joints, H * K])])


def _expected(box, u, v, padding=1.25):
    """Hand-computed inverse of the crop: centre of the box, scale from its padded, aspect-fixed width."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    bw, bh = (x1 - x0) * padding, (y1 - y0) * padding
    bw = max(bw, bh * W / H)
    s = W / bw
    return np.stack([cx + (u - W / 2) / s, cy + (v - H / 2) / s], axis=-1)


def test_crop_transform_by_hand():
    # box 96 x 128 -> padded 120 x 160, already 3:4 -> scale 48 / 120
    assert crop_transform(np.array([100, 50, 196, 178]), (W, H)) == pytest.approx((0.4, 148, 114))
    # wide box 100 x 40 -> padded 125 x 50; height grows to 125 * 4 / 3; scale 48 / 125
    assert crop_transform(np.array([10, 20, 110, 60]), (W, H)) == pytest.approx((0.384, 60, 40))
    # tall box 30 x 200 -> padded 37.5 x 250; width grows to 250 * 3 / 4 = 187.5; scale 48 / 187.5
    assert crop_transform(np.array([0, 0, 30, 200]), (W, H)) == pytest.approx((0.256, 15, 100))


def test_simcc_constant_peaks_map_back_through_the_box(tmp_path):
    model = OnnxTopDown(_simcc_model(tmp_path))
    assert model.input_size == (W, H) and model.kind == "simcc"
    frame = np.zeros((240, 320, 3), np.uint8)
    boxes = np.array([[100, 50, 196, 178], [10, 20, 110, 60]], np.float32)
    people = model.detect(frame, boxes)  # batch size 1 in the model: one run per box
    assert len(people) == 2
    for p, box in zip(people, boxes):
        np.testing.assert_allclose(p.keypoints, _expected(box, PEAK_U, PEAK_V), atol=1e-3)
        np.testing.assert_allclose(p.scores, np.minimum(PEAK_X_VAL, PEAK_Y_VAL), atol=1e-6)
        np.testing.assert_array_equal(p.box, box)
    # first box by hand: scale 0.4, centre (148, 114): joint 0 at input (2, 60) -> (148 - 22 / 0.4, 114 + 28 / 0.4)
    np.testing.assert_allclose(people[0].keypoints[0], [93.0, 184.0], atol=1e-3)
    # no boxes: the whole 320 x 240 frame -> padded 400 x 300 -> scale 48 / 400, centre (160, 120)
    (whole,) = model.detect(frame)
    np.testing.assert_array_equal(whole.box, [0, 0, 320, 240])
    np.testing.assert_allclose(whole.keypoints[0], [160 + (2 - 24) / 0.12, 120 + (60 - 32) / 0.12], atol=1e-3)
    assert model.detect(frame, np.zeros((0, 4))) == []


def _int_const(name, values):
    return helper.make_node("Constant", [], [name], value=helper.make_tensor(
        name + "_value", TensorProto.INT64, [len(values)], values))


def _profile_model(tmp_path):
    """SimCC = the crop's column / row mean (upsampled by K): peaks where the image is brightest."""
    nodes = [
        _int_const("axis", [1]),
        _int_const("repeats", [1, 17, 1]),
        _const("scales", [1.0, 1.0, float(K)]),
        helper.make_node("ReduceMean", ["input"], ["cols"], axes=[1, 2], keepdims=0),  # (N, W)
        helper.make_node("ReduceMean", ["input"], ["rows"], axes=[1, 3], keepdims=0),  # (N, H)
        helper.make_node("Unsqueeze", ["cols", "axis"], ["cols1"]),  # (N, 1, W)
        helper.make_node("Unsqueeze", ["rows", "axis"], ["rows1"]),
        helper.make_node("Tile", ["cols1", "repeats"], ["cols17"]),  # (N, 17, W)
        helper.make_node("Tile", ["rows1", "repeats"], ["rows17"]),
        helper.make_node("Resize", ["cols17", "", "scales"], ["simcc_x"], mode="nearest"),  # (N, 17, W * K)
        helper.make_node("Resize", ["rows17", "", "scales"], ["simcc_y"], mode="nearest"),
    ]
    return _save(tmp_path, "profile.onnx", nodes,
                 [helper.make_tensor_value_info("simcc_x", TensorProto.FLOAT, ["N", 17, W * K]),
                  helper.make_tensor_value_info("simcc_y", TensorProto.FLOAT, ["N", 17, H * K])], batch="N")


def test_simcc_input_dependent_model_finds_a_dot(tmp_path):
    model = OnnxTopDown(_profile_model(tmp_path))
    frame = np.zeros((160, 200, 3), np.uint8)
    dot = (70, 65)
    frame[dot[1], dot[0]] = 255
    # boxes around the dot at scales >= 1 (crop magnified) so a pixel stays a pixel; two boxes: one batched run
    boxes = np.array([[60, 40, 92, 82], [50, 50, 80, 90]], np.float32)
    people = model.detect(frame, boxes)
    for p in people:
        np.testing.assert_allclose(p.keypoints, np.tile(dot, (17, 1)), atol=1.0)
    # the same dot seen through a box elsewhere in the frame lands elsewhere in the crop but at the same pixel
    assert crop_transform(boxes[0], (W, H))[1:] != crop_transform(boxes[1], (W, H))[1:]


def test_heatmap_model_with_quarter_offset(tmp_path):
    h, w = H // 4, W // 4
    hm = np.zeros((1, 17, h, w), np.float32)
    px, py = 3 + J % 8, 2 + J % 12
    for j in range(17):
        hm[0, j, py[j], px[j]] = 0.75
        hm[0, j, py[j], px[j] + 1] = 0.5  # right neighbour higher than left: +1/4
        hm[0, j, py[j], px[j] - 1] = 0.25
        hm[0, j, py[j] - 1, px[j]] = 0.3  # upper neighbour higher than lower: -1/4
        hm[0, j, py[j] + 1, px[j]] = 0.1
    path = _save(tmp_path, "heatmap.onnx", [_const("heatmaps", hm)],
                 [helper.make_tensor_value_info("heatmaps", TensorProto.FLOAT, [1, 17, h, w])])
    model = OnnxTopDown(path)
    assert model.kind == "heatmap"
    box = np.array([100, 50, 196, 178], np.float32)
    (p,) = model.detect(np.zeros((240, 320, 3), np.uint8), box[None])
    u, v = (px + 0.25) * W / w, (py - 0.25) * H / h
    np.testing.assert_allclose(p.keypoints, _expected(box, u, v), atol=1e-3)
    np.testing.assert_allclose(p.scores, 0.75)
    # joint 0 by hand: heatmap (3.25, 1.75) -> input (13, 7) -> image (148 - 11 / 0.4, 114 - 25 / 0.4)
    np.testing.assert_allclose(p.keypoints[0], [120.5, 51.5], atol=1e-3)


def test_model_with_18_keypoints_is_rejected(tmp_path):
    path = _simcc_model(tmp_path, joints=18, name="eighteen.onnx")
    with pytest.raises(KeypointFormatError, match=r"eighteen\.onnx: output simcc_x has 18 keypoints, expected 17"):
        OnnxTopDown(path)


def test_missing_onnxruntime_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes "import onnxruntime" fail
    with pytest.raises(ConfigError, match=r"pip install poselift\[onnx\]"):
        OnnxTopDown(tmp_path / "any.onnx")


def test_detect_video_follows_the_person_from_frame_to_frame(tmp_path):
    from poselift.infer.sources.onnx_topdown import detect_video_topdown
    from poselift.infer.types import VideoMeta

    meta = VideoMeta(200, 160, 25.0, 6, "dots")
    dots = [(40 + 3 * i, 50 + 2 * i) for i in range(6)]  # a few pixels per frame, as a person moves
    yy, xx = np.mgrid[:160, :200]
    frames = []
    for x, y in dots:  # a peaked blob: wide enough to survive the whole-frame crop's 5x shrink
        blob = 255 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 3.0 ** 2))
        frames.append(np.repeat(blob[..., None], 3, axis=2).astype(np.uint8))
    det = detect_video_topdown(_profile_model(tmp_path), iter(frames), meta, progress=False, min_score=0.0)
    assert det.num_frames == 6 and det.source == "onnx top-down profile.onnx"
    for t, (frame, dot) in enumerate(zip(det.frames, dots)):
        assert len(frame) == 1
        # frame 0 is searched in the whole frame: one SimCC bin is 250 / 48 / K = 2.6 px there; later frames
        # use the previous keypoints' box, where a bin is under a pixel
        np.testing.assert_allclose(frame[0].keypoints, np.tile(dot, (17, 1)), atol=2.7 if t == 0 else 1.0)
