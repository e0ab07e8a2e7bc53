"""Run a user's top-down 2D pose model (ONNX) on person boxes.

poselift's built-in detector is MediaPipe; users who want a stronger COCO-17
model usually already have one exported to ONNX (RTMPose from mmpose or
rtmlib, HRNet/ViTPose heatmap models). A top-down model sees one person crop
at a time, so this stage needs boxes from its caller: the previous frame's
keypoints, another detector, or the whole frame.

Per box (x0, y0, x1, y1, pixels): the box is enlarged by ``padding`` (1.25,
mmpose's default) around its centre, widened or heightened to the model's
aspect ratio, and warped (one affine, no rotation) so the box centre lands on
the centre of the (H, W) model input. Pixels are normalised with ``mean`` /
``std`` (RGB, 0-255 scale) and fed as (N, 3, H, W) float32. Outputs decoded:

* SimCC (RTMPose): two outputs (N, 17, W*k) and (N, 17, H*k) (``simcc_x``,
  ``simcc_y``; by name, else in that order): position = argmax / k, score =
  the smaller of the two maxima.
* Heatmap: one output (N, 17, h, w): position = argmax moved a quarter pixel
  towards the higher neighbour, scaled by (W / w, H / h); score = the maximum.

Positions go back to image pixels through the inverse of the crop's affine
map; scores are clipped into [0, 1] (0: not found).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from poselift.errors import CheckpointError, ConfigError, KeypointFormatError
from poselift.infer.types import PersonDetection

__all__ = ["OnnxTopDown", "crop_transform", "detect_video_topdown"]

_NUM_JOINTS = 17


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError("ONNX pose models need onnxruntime, which is not installed: "
                          "pip install poselift[onnx]") from None
    return onnxruntime


def crop_transform(box: np.ndarray, input_size: tuple[int, int], padding: float = 1.25
                   ) -> tuple[float, float, float]:
    """(scale, centre x, centre y) of the crop of ``box`` for a model input of ``input_size`` (W, H).

    Image point (x, y) maps to input pixel (s (x - cx) + W / 2, s (y - cy) + H / 2).
    """
    x0, y0, x1, y1 = (float(v) for v in np.asarray(box).reshape(4))
    if not np.isfinite([x0, y0, x1, y1]).all():
        raise ValueError(f"box {box} is not finite")
    w_in, h_in = input_size
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    bw, bh = max(abs(x1 - x0), 1.0) * padding, max(abs(y1 - y0), 1.0) * padding
    aspect = w_in / h_in
    # Grow the short side so the crop has the model's aspect ratio (no distortion).
    bw = max(bw, bh * aspect)
    return w_in / bw, cx, cy


class OnnxTopDown:
    """A top-down COCO-17 pose model in ONNX format (SimCC or heatmap output).

    Args:
        model_path: the ``.onnx`` file; its input must be (N, 3, H, W).
        input_size: (W, H), only needed when the model's input size is not fixed.
        mean / std: per-channel normalisation of RGB pixels (0-255).
        providers: onnxruntime execution providers, in order of preference.
        padding: box enlargement before cropping.
    """

    def __init__(self, model_path: str | Path, *, input_size: tuple[int, int] | None = None,
                 mean: tuple[float, float, float] = (123.675, 116.28, 103.53),
                 std: tuple[float, float, float] = (58.395, 57.12, 57.375),
                 providers: tuple[str, ...] = ("CPUExecutionProvider",), padding: float = 1.25) -> None:
        ort = _import_onnxruntime()
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise CheckpointError(f"{self.model_path}: ONNX pose model not found")
        try:
            self.session = ort.InferenceSession(str(self.model_path), providers=list(providers))
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise CheckpointError(f"{self.model_path}: cannot load the ONNX model ({exc})") from None
        self.mean = np.asarray(mean, dtype=np.float32)
        self.std = np.asarray(std, dtype=np.float32)
        self.padding = float(padding)
        inp = self.session.get_inputs()[0]
        self._input_name = inp.name
        self._input_dtype = np.float16 if inp.type == "tensor(float16)" else np.float32
        shape = list(inp.shape)
        if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 3):
            raise KeypointFormatError(f"{self.model_path}: model input {inp.name} has shape {shape}, "
                                      "expected (N, 3, H, W)")
        fixed = [d if isinstance(d, int) else None for d in shape]
        if fixed[2] is not None and fixed[3] is not None:
            model_size = (fixed[3], fixed[2])
            if input_size is not None and tuple(input_size) != model_size:
                raise ConfigError(f"{self.model_path}: input_size {tuple(input_size)} differs from the model's "
                                  f"fixed input (W, H) = {model_size}")
            self.input_size = model_size
        elif input_size is not None:
            self.input_size = (int(input_size[0]), int(input_size[1]))
        else:
            raise ConfigError(f"{self.model_path}: the model's input size is not fixed ({shape}); "
                              "pass input_size=(width, height)")
        self._batch = fixed[0]  # None: any batch size
        self.kind, self._outputs = self._find_outputs()

    def _find_outputs(self) -> tuple[str, list[str]]:
        outs = self.session.get_outputs()
        rank3 = [o for o in outs if len(o.shape) == 3]
        rank4 = [o for o in outs if len(o.shape) == 4]
        if len(rank3) >= 2:
            by_name = {o.name.lower()[-1:]: o for o in rank3}
            chosen = [by_name["x"], by_name["y"]] if {"x", "y"} <= set(by_name) else rank3[:2]
            kind = "simcc"
        elif rank4:
            chosen, kind = rank4[:1], "heatmap"
        else:
            raise KeypointFormatError(
                f"{self.model_path}: outputs {[(o.name, o.shape) for o in outs]}; expected SimCC "
                f"(N, {_NUM_JOINTS}, W*k) and (N, {_NUM_JOINTS}, H*k), or heatmaps (N, {_NUM_JOINTS}, h, w)")
        for o in chosen:
            if isinstance(o.shape[1], int) and o.shape[1] != _NUM_JOINTS:
                raise KeypointFormatError(f"{self.model_path}: output {o.name} has {o.shape[1]} keypoints, "
                                          f"expected {_NUM_JOINTS} (COCO-17)")
        return kind, [o.name for o in chosen]

    def detect(self, frame_rgb: np.ndarray, boxes: np.ndarray | None = None) -> list[PersonDetection]:
        """Keypoints of the person in each box.

        Args:
            frame_rgb: (H, W, 3) uint8 RGB image.
            boxes: (N, 4) x0, y0, x1, y1 pixels; None: the whole frame.

        Returns:
            One :class:`PersonDetection` per box, in order, with (17, 2)
            image pixels, (17,) scores and the box it came from.
        """
        import cv2

        frame = np.asarray(frame_rgb)
        if frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame_rgb should be (H, W, 3) RGB, got shape {frame.shape}")
        if boxes is None:
            boxes = np.array([[0, 0, frame.shape[1], frame.shape[0]]], dtype=np.float32)
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        if len(boxes) == 0:
            return []
        w_in, h_in = self.input_size
        transforms = [crop_transform(b, self.input_size, self.padding) for b in boxes]
        crops = np.empty((len(boxes), 3, h_in, w_in), dtype=np.float32)
        for i, (s, cx, cy) in enumerate(transforms):
            m = np.array([[s, 0, w_in / 2 - s * cx], [0, s, h_in / 2 - s * cy]], dtype=np.float64)
            crop = cv2.warpAffine(frame, m, (w_in, h_in), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                                  borderValue=0)
            crops[i] = ((crop.astype(np.float32) - self.mean) / self.std).transpose(2, 0, 1)
        xy, scores = self._infer(crops)
        people = []
        for i, (s, cx, cy) in enumerate(transforms):
            img = np.stack([cx + (xy[i, :, 0] - w_in / 2) / s, cy + (xy[i, :, 1] - h_in / 2) / s], axis=1)
            sc = np.clip(scores[i], 0.0, 1.0)
            people.append(PersonDetection(img.astype(np.float32), sc.astype(np.float32), box=boxes[i].copy()))
        return people

    def _infer(self, crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(N, 17, 2) positions in model-input pixels and (N, 17) scores."""
        step = self._batch or len(crops)
        xy, sc = [], []
        for start in range(0, len(crops), step):
            batch = crops[start:start + step]
            n = len(batch)
            if n < step:  # a fixed batch size: pad the last batch
                batch = np.concatenate([batch, np.zeros((step - n, *batch.shape[1:]), batch.dtype)])
            outs = self.session.run(self._outputs, {self._input_name: batch.astype(self._input_dtype)})
            outs = [np.asarray(o, dtype=np.float32) for o in outs]
            b_xy, b_sc = self._decode_simcc(*outs) if self.kind == "simcc" else self._decode_heatmap(outs[0])
            xy.append(b_xy[:n])
            sc.append(b_sc[:n])
        return np.concatenate(xy), np.concatenate(sc)

    def _check(self, out: np.ndarray, name: str, ndim: int) -> None:
        if out.ndim != ndim or out.shape[1] != _NUM_JOINTS:
            raise KeypointFormatError(f"{self.model_path}: output {name} has shape {out.shape}, expected "
                                      f"{_NUM_JOINTS} keypoints (COCO-17) in axis 1 of a {ndim}-d array")

    def _decode_simcc(self, simcc_x: np.ndarray, simcc_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._check(simcc_x, self._outputs[0], 3)
        self._check(simcc_y, self._outputs[1], 3)
        w_in, h_in = self.input_size
        kx, ky = simcc_x.shape[2] / w_in, simcc_y.shape[2] / h_in
        if abs(kx - ky) > 1e-6:
            raise KeypointFormatError(
                f"{self.model_path}: SimCC outputs of lengths {simcc_x.shape[2]} and {simcc_y.shape[2]} do not "
                f"share one split ratio for input (W, H) = {self.input_size}")
        ix, iy = simcc_x.argmax(axis=2), simcc_y.argmax(axis=2)
        vx, vy = simcc_x.max(axis=2), simcc_y.max(axis=2)
        xy = np.stack([ix / kx, iy / ky], axis=2)
        return xy, np.minimum(vx, vy)

    def _decode_heatmap(self, heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._check(heatmaps, self._outputs[0], 4)
        n, j, h, w = heatmaps.shape
        flat = heatmaps.reshape(n, j, h * w)
        idx = flat.argmax(axis=2)
        vals = flat.max(axis=2)
        py, px = np.divmod(idx, w)
        x, y = px.astype(np.float32), py.astype(np.float32)
        ni, ji = np.indices((n, j))
        # Quarter-pixel shift towards the higher neighbour: the true peak lies between samples.
        inner_x = (px > 0) & (px < w - 1)
        dx = heatmaps[ni, ji, py, np.minimum(px + 1, w - 1)] - heatmaps[ni, ji, py, np.maximum(px - 1, 0)]
        x += np.where(inner_x, 0.25 * np.sign(dx), 0.0)
        inner_y = (py > 0) & (py < h - 1)
        dy = heatmaps[ni, ji, np.minimum(py + 1, h - 1), px] - heatmaps[ni, ji, np.maximum(py - 1, 0), px]
        y += np.where(inner_y, 0.25 * np.sign(dy), 0.0)
        w_in, h_in = self.input_size
        return np.stack([x * w_in / w, y * h_in / h], axis=2), vals


def _box_from_keypoints(person: PersonDetection, width: int, height: int, min_score: float = 0.3) -> np.ndarray | None:
    """The next frame's search box: the confident keypoints' bounding box, grown 10% (the crop pads 25% more)."""
    ok = person.scores >= min_score
    if ok.sum() < 4:
        return None
    lo, hi = person.keypoints[ok].min(axis=0), person.keypoints[ok].max(axis=0)
    centre, half = (lo + hi) / 2, np.maximum((hi - lo) * 0.55, 8.0)
    box = np.concatenate([centre - half, centre + half])
    return np.clip(box, 0, [width, height, width, height]).astype(np.float32)


def detect_video_topdown(model_path, frames, meta, *, progress: bool = True, min_score: float = 0.3):
    """Run a top-down ONNX model over video frames, one person followed from frame to frame.

    A top-down model needs a box and poselift ships no person detector besides
    MediaPipe, so the box comes from the previous frame's keypoints; the whole
    frame is used at the start and whenever the person was lost (fewer than 4
    keypoints above ``min_score``). Suits videos of one main person.

    Args:
        frames: iterable of (H, W, 3) uint8 RGB frames. meta: the video's VideoMeta.
    Returns:
        Detections with at most one person per frame (COCO-17, pixels).
    """
    from tqdm import tqdm

    from poselift.infer.types import Detections

    model = OnnxTopDown(model_path)
    whole = np.array([0, 0, meta.width, meta.height], dtype=np.float32)
    box, out = None, []
    for frame in tqdm(frames, total=meta.num_frames or None, desc="detect 2D (onnx)", unit="frame",
                      disable=not progress, leave=False):
        people = model.detect(frame, (box if box is not None else whole)[None])
        person = people[0] if people else None
        box = None if person is None else _box_from_keypoints(person, meta.width, meta.height, min_score)
        if person is None or box is None:
            out.append([])
        else:
            out.append([person])
    return Detections(frames=out, meta=meta, source=f"onnx top-down {Path(model_path).name}")
