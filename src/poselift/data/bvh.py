"""BioVision Hierarchy (BVH) motion files: a strict reader and vectorised forward kinematics.

Conventions (the BVH format leaves some of them open, so they are fixed here):

* Rotations are intrinsic, applied in the order the channels are listed, angles
  in degrees, column vectors: ``Zrotation Yrotation Xrotation`` gives
  ``R = Rz @ Ry @ Rx``.
* Every joint's local translation is ``OFFSET + position channels`` (each
  ``Xposition``/``Yposition``/``Zposition`` channel is added to that component
  of the offset; missing ones add 0). This holds for the root too: position
  channels are a displacement from the rest pose, not a replacement of it. The
  data decides: the cmu-cc-avatar files whose root is ``CC_Base_Hip`` have
  ``OFFSET 0 105.2 0`` (rest hip height, cm) and ``Yposition`` values near 0, so
  dropping the offset would put the hips on the floor; with it, the feet touch
  y ~ 0. CMU's cgspeed files (cmu-131, cmu-mb) have a zero root offset, so both
  readings agree there.
* Global position: ``p_child = p_parent + R_parent_global @ translation_child``
  and ``R_child_global = R_parent_global @ R_child_local``.
* End sites are kept as joints named ``"<parent>_end"`` (``_end2``... if a
  parent has several) with no channels: they carry head-top and toe-tip points.
  Positions are in file units and axes (CMU: 56.444 mm, CC rigs: cm).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from poselift.errors import DataFormatError
from poselift.geometry.rotations import axis_rotation

__all__ = ["BvhSkeleton", "BvhMotion", "read_bvh", "forward_kinematics", "local_rotations"]

_CHANNELS = {f"{a}{k}".upper(): f"{a}{k}" for a in "XYZ" for k in ("position", "rotation")}
_KEYWORDS = {"ROOT", "JOINT", "END", "OFFSET", "CHANNELS", "{", "}", "MOTION", "HIERARCHY"}
_TOKEN = re.compile(r"[{}]|[^\s{}]+")  # braces are tokens even when glued to a name ("Hips{")


@dataclass
class BvhSkeleton:
    """Joint hierarchy in file order; a parent always precedes its children.

    ``offsets`` is (J, 3) in file units; ``channels[j]`` lists joint j's channel
    names in file order ([] for end sites).
    """

    joint_names: list[str]
    parents: list[int]
    offsets: np.ndarray
    channels: list[list[str]]
    is_end_site: list[bool]

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    def channel_start(self) -> np.ndarray:
        """(J,) column of each joint's first channel in a MOTION row."""
        counts = np.array([len(c) for c in self.channels], dtype=np.int64)
        return np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)


@dataclass
class BvhMotion:
    """A skeleton plus ``values``: (T, C) float64 channel values, columns in file order."""

    skeleton: BvhSkeleton
    frame_time: float
    values: np.ndarray

    @property
    def fps(self) -> float:
        return 1.0 / self.frame_time

    @property
    def num_frames(self) -> int:
        return int(self.values.shape[0])


class _Tokens:
    """Hierarchy tokens with their 1-based line numbers, for error messages."""

    def __init__(self, path: Path, lines: list[str], end_line: int):
        self.path = path
        self.end_line = end_line  # line of MOTION (or past the end): where a truncated hierarchy stops
        self.items = [(tok, n) for n, line in enumerate(lines, 1) for tok in _TOKEN.findall(line)]
        self.i = 0

    def peek(self) -> tuple[str, int]:
        return self.items[self.i] if self.i < len(self.items) else ("end of hierarchy", self.end_line)

    def next(self, expected: str) -> tuple[str, int]:
        if self.i >= len(self.items):
            self.fail(self.end_line, f"expected {expected}, found the end of the hierarchy (unbalanced braces?)")
        self.i += 1
        return self.items[self.i - 1]

    def expect(self, word: str) -> int:
        tok, line = self.next(f"'{word}'")
        if tok.upper() != word.upper():
            self.fail(line, f"expected '{word}', found '{tok}'")
        return line

    def fail(self, line: int, message: str):  # never returns
        raise DataFormatError(f"{self.path}: line {line}: {message}")


def _parse_joint(tk: _Tokens, name: str, parent: int, out: dict) -> None:
    """Parse ``{ OFFSET .. CHANNELS .. children }`` of one joint (the name is already read)."""
    tk.expect("{")
    j = _add(out, name, parent, False, _parse_offset(tk))
    if tk.peek()[0].upper() == "CHANNELS":
        out["channels"][j] = _parse_channels(tk)
    while True:
        tok, line = tk.next("JOINT, End Site or '}'")
        key = tok.upper()
        if key == "}":
            return
        if key == "JOINT":
            _parse_joint(tk, _read_name(tk, line, "JOINT"), j, out)
        elif key == "END":
            tk.expect("Site")
            base = end = f"{name}_end"
            k = 2
            while end in out["names"]:  # a second end site under the same parent
                end, k = f"{base}{k}", k + 1
            tk.expect("{")
            _add(out, end, j, True, _parse_offset(tk))
            tk.expect("}")
        else:
            tk.fail(line, f"expected JOINT, End Site or '}}' in joint '{name}', found '{tok}'")


def _add(out: dict, name: str, parent: int, end: bool, offset: list[float]) -> int:
    for key, v in (("names", name), ("parents", parent), ("end", end), ("channels", []), ("offsets", offset)):
        out[key].append(v)
    return len(out["names"]) - 1


def _read_name(tk: _Tokens, line: int, what: str) -> str:
    # A name is every token on the keyword's line up to '{' (names may contain spaces).
    parts = []
    while tk.peek()[1] == line and tk.peek()[0] not in "{}":
        parts.append(tk.next("a name")[0])
    if not parts:
        tk.fail(line, f"{what} without a name")
    return " ".join(parts)


def _parse_offset(tk: _Tokens) -> list[float]:
    tk.expect("OFFSET")
    vals = []
    for _ in range(3):
        tok, n = tk.next("a number after OFFSET")
        try:
            vals.append(float(tok))
        except ValueError:
            vals.append(np.nan)
        if not np.isfinite(vals[-1]):
            tk.fail(n, f"OFFSET needs 3 finite numbers, found '{tok}'")
    return vals


def _parse_channels(tk: _Tokens) -> list[str]:
    line = tk.expect("CHANNELS")
    tok, _ = tk.next("a channel count")
    if not tok.isdigit():
        tk.fail(line, f"CHANNELS needs a count, found '{tok}'")
    count, names = int(tok), []
    # Take names until a keyword, then check the count: a wrong count must not
    # silently shift every later column of the MOTION rows.
    while tk.peek()[0].upper() not in _KEYWORDS and tk.peek()[0] != "end of hierarchy":
        tok, n = tk.next("a channel name")
        if tok.upper() not in _CHANNELS:
            tk.fail(n, f"unknown channel name '{tok}' (expected X/Y/Z position/rotation, e.g. 'Zrotation')")
        names.append(_CHANNELS[tok.upper()])
    if len(names) != count:
        tk.fail(line, f"CHANNELS declares {count} channels but lists {len(names)}")
    if len(set(names)) != len(names):
        tk.fail(line, f"CHANNELS lists a channel twice: {' '.join(names)}")
    return names


def read_bvh(path: str | Path) -> BvhMotion:
    """Read a BVH file. Raises :class:`DataFormatError` naming the file and line on any problem."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig", errors="replace")
    except OSError as e:
        raise DataFormatError(f"{path}: cannot read BVH file ({e.strerror or e})") from None
    lines = text.splitlines()  # \n, \r\n and lone \r alike
    motion_at = next((i for i, s in enumerate(lines) if [w.upper() for w in s.split()[:1]] == ["MOTION"]), None)
    tk = _Tokens(path, lines[:motion_at], (motion_at if motion_at is not None else len(lines)) + 1)
    tk.expect("HIERARCHY")
    out: dict = {"names": [], "parents": [], "end": [], "channels": [], "offsets": []}
    while tk.peek()[0] != "end of hierarchy":  # usually one ROOT; several roots make a forest
        tok, line = tk.next("ROOT")
        if tok.upper() != "ROOT":
            tk.fail(line, f"expected ROOT or MOTION, found '{tok}' (unbalanced braces?)")
        _parse_joint(tk, _read_name(tk, line, "ROOT"), -1, out)
    if not out["names"]:
        tk.fail(tk.end_line, "no ROOT joint in HIERARCHY")
    if motion_at is None:
        raise DataFormatError(f"{path}: no MOTION section after the hierarchy (line {len(lines)})")
    skeleton = BvhSkeleton(out["names"], out["parents"], np.array(out["offsets"], dtype=np.float64),
                           out["channels"], out["end"])
    num_channels = sum(len(c) for c in skeleton.channels)

    # MOTION header: "Frames: N" then "Frame Time: t", each on its own line.
    rest = [(n, s) for n, s in enumerate(lines[motion_at + 1:], motion_at + 2) if s.strip()]

    def header(k: int, label: str, convert):
        if k >= len(rest):
            raise DataFormatError(f"{path}: line {len(lines)}: expected '{label} ...' after MOTION, found end of file")
        n, s = rest[k]
        key, _, val = s.partition(":")
        if " ".join(key.split()).upper() != label.upper():
            raise DataFormatError(f"{path}: line {n}: expected '{label}: <value>', found '{s.strip()[:60]}'")
        try:
            v = convert(val.strip())
        except ValueError:
            raise DataFormatError(f"{path}: line {n}: bad {label} value '{val.strip()}'") from None
        return v, n

    num_frames, frames_line = header(0, "Frames", int)
    frame_time, time_line = header(1, "Frame Time", float)
    if num_frames < 0:
        raise DataFormatError(f"{path}: line {frames_line}: Frames must be >= 0, got {num_frames}")
    if not (np.isfinite(frame_time) and frame_time > 0):
        raise DataFormatError(f"{path}: line {time_line}: Frame Time must be a positive number, got {frame_time}")
    rows = rest[2:]
    flat: list[str] = []
    for n, s in rows:  # widths first: a wrapped or truncated row is named precisely
        toks = s.split()
        if len(toks) != num_channels:
            raise DataFormatError(f"{path}: line {n}: expected {num_channels} values (the channels "
                                  f"declared in HIERARCHY), found {len(toks)}")
        flat.extend(toks)
    if len(rows) != num_frames:  # point at the first surplus row, or at the end of the file
        where = f"line {rows[num_frames][0]}" if len(rows) > num_frames else f"end of file (line {len(lines)})"
        raise DataFormatError(f"{path}: {where}: 'Frames: {num_frames}' (line {frames_line}) "
                              f"but the file has {len(rows)} data rows")
    try:
        values = np.array(flat, dtype=np.float64).reshape(num_frames, num_channels)
    except ValueError:
        values = None
    if values is None or not np.isfinite(values).all():
        for n, s in rows:  # slow path, only to name the culprit
            for tok in s.split():
                try:
                    ok = np.isfinite(float(tok))
                except ValueError:
                    ok = False
                if not ok:
                    raise DataFormatError(f"{path}: line {n}: expected a finite number, found '{tok}'")
    return BvhMotion(skeleton, float(frame_time), values)


def _select(values: np.ndarray, frames) -> np.ndarray:
    if frames is None:
        return values
    if isinstance(frames, (int, np.integer)):
        frames = [frames]
    return values[frames]


def local_rotations(motion: BvhMotion, frames: slice | np.ndarray | None = None) -> np.ndarray:
    """(T, J, 3, 3) local rotation of each joint (identity for joints without rotation channels)."""
    sk = motion.skeleton
    values = _select(motion.values, frames)
    out = np.broadcast_to(np.eye(3), (len(values), sk.num_joints, 3, 3)).copy()
    for j, (chans, start) in enumerate(zip(sk.channels, sk.channel_start())):
        rot = None
        for c, name in enumerate(chans):
            if name.endswith("rotation"):
                r = axis_rotation(name[0], values[:, start + c], degrees=True)
                rot = r if rot is None else rot @ r  # intrinsic: later channels multiply on the right
        if rot is not None:
            out[:, j] = rot
    return out


def local_translations(motion: BvhMotion, frames: slice | np.ndarray | None = None) -> np.ndarray:
    """(T, J, 3) local translation of each joint: OFFSET + its position channels (see module docs)."""
    sk = motion.skeleton
    values = _select(motion.values, frames)
    out = np.broadcast_to(sk.offsets, (len(values), sk.num_joints, 3)).copy()
    for j, (chans, start) in enumerate(zip(sk.channels, sk.channel_start())):
        for c, name in enumerate(chans):
            if name.endswith("position"):
                out[:, j, "XYZ".index(name[0])] += values[:, start + c]
    return out


def forward_kinematics(motion: BvhMotion, frames: slice | np.ndarray | None = None) -> np.ndarray:
    """(T, J, 3) global joint positions in file units and file axes, end sites included.

    ``frames`` selects rows of ``motion.values`` (slice, index array or boolean
    mask) before any work is done, so a few frames of a long clip are cheap.
    """
    sk = motion.skeleton
    rot = local_rotations(motion, frames)
    trans = local_translations(motion, frames)
    pos = np.empty_like(trans)
    glob = np.empty_like(rot)
    for j, p in enumerate(sk.parents):  # parents precede children: one pass suffices
        if p < 0:
            pos[:, j], glob[:, j] = trans[:, j], rot[:, j]
        else:
            pos[:, j] = pos[:, p] + np.einsum("tab,tb->ta", glob[:, p], trans[:, j])
            if not sk.is_end_site[j]:  # end sites have no children: skip their matrix product
                glob[:, j] = glob[:, p] @ rot[:, j]
    return pos
