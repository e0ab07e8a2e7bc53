"""Acclaim ASF (skeleton) and AMC (motion) files, the format of the CMU Graphics Lab motion
capture database, with vectorised forward kinematics.

Conventions (column vectors, ``v' = R @ v``):

* An order such as ``XYZ`` (``axis`` lines) or a channel list such as ``rx ry rz`` (``dof``,
  root ``order``) means rotations about *fixed* axes applied in the order written, X first, so
  the first is the rightmost factor: ``axis a b c XYZ`` gives ``C = Rz(c) Ry(b) Rx(a)`` and
  ``dof rx ry rz`` gives ``M = Rz Ry Rx``. Why: Acclaim's notes write transforms for row
  vectors (``v C^-1 M C B``, leftmost acting first), which transposing to column vectors
  reverses; Vicon's notes on the format say root rotations are "calculated about fixed, global
  axes" in ``order`` sequence; CMU's reference viewer issues glRotate(z), glRotate(y), glRotate(x).
* Bone: ``L = C M C^-1`` (the spec's ``C^-1 M C`` transposed), so AMC angles turn about the
  bone's ``axis`` directions; ``G = G_parent L``; ``end = start + G (direction * length)`` with
  ``start`` the parent's end. Directions are global at rest, so zero motion gives the ASF rest
  pose whatever ``axis`` is.
* Root: like a bone whose ``axis`` is its ``orientation`` (in its ``axis`` order), rotated by
  its RX/RY/RZ channels in ``order``; position = ASF ``position`` + TX/TY/TZ. CMU files have
  zero position/orientation (packages disagree on how a non-zero pre-set applies).
* ``:units length L``: one file unit is 1/L inch, metres = value * 0.0254 / L (CMU: L = 0.45,
  0.056444 m). Angles are ``deg`` unless the ASF says ``angle rad`` (or the AMC ``:RADIANS``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from poselift.errors import DataFormatError
from poselift.geometry.rotations import axis_rotation

INCH_M = 0.0254
_ASF_SECTIONS = ("version", "name", "units", "documentation", "root", "bonedata", "hierarchy", "skin")
_ROOT_TOKENS = ("tx", "ty", "tz", "rx", "ry", "rz")
_BONE_DOFS = ("rx", "ry", "rz")  # the spec's tx/ty/tz/l bone channels never occur in CMU data
_AMC_KEYWORDS = ("FULLY-SPECIFIED", "DEGREES", "RADIANS")


@dataclass
class AsfSkeleton:
    """A parsed ASF file. B = number of bones including ``root`` (index 0)."""

    bone_names: list[str]  # "root" first, then bones in file order
    parents: list[int]  # (B,) parent index; -1 for root
    directions: np.ndarray  # (B, 3) unit vectors in the skeleton frame at rest (root: zeros)
    lengths: np.ndarray  # (B,) in file units
    axes: np.ndarray  # (B, 3, 3) C matrices (root: from its orientation)
    dofs: list[list[str]]  # e.g. ["rx", "ry", "rz"]; root: its order, e.g. ["tx", ..., "rz"]
    length_unit_m: float  # metres per file length unit
    root_position: np.ndarray = field(default_factory=lambda: np.zeros(3))  # (3,) file units
    angles_in_degrees: bool = True  # ASF ``angle``; the default unit of AMC values


@dataclass
class AmcMotion:
    """A parsed AMC file; ``values[bone]`` is (T, len(dofs)): degrees and file length units."""

    skeleton: AsfSkeleton
    values: dict[str, np.ndarray]
    num_frames: int
    fps: float = 120.0  # CMU's capture rate; AMC stores none


def _check(ok: bool, path: Path, lineno: int, message: str) -> None:
    """Raise the module's one error type, "file:line: what was expected"."""
    if not ok:
        raise DataFormatError(f"{path}:{lineno}: {message}")


def _tokenised_lines(path) -> tuple[Path, list[tuple[int, list[str]]]]:
    """(1-based line number, tokens) of non-blank lines. The spec treats commas and
    parentheses as whitespace (``limits (-160 20)``) and ``#`` as a comment to end of line."""
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path} does not exist or is not a file")
    text = path.read_text(encoding="utf-8", errors="replace")
    lines = text.translate(str.maketrans({",": " ", "(": " ", ")": " "})).splitlines()
    tokenised = ((n, (line.split("#", 1)[0] if "#" in line else line).split()) for n, line in enumerate(lines, 1))
    return path, [(n, tokens) for n, tokens in tokenised if tokens]


def _numbers(tokens: list[str], count: int, path: Path, lineno: int, what: str, finite: bool = True) -> list[float]:
    got = " ".join(tokens)
    _check(len(tokens) == count, path, lineno, f"{what}: expected {count} number(s), got {len(tokens)}: {got!r}")
    try:
        values = [float(t) for t in tokens]
    except ValueError:
        raise DataFormatError(f"{path}:{lineno}: {what}: expected numbers, got {got!r}") from None
    _check(not finite or bool(np.isfinite(values).all()), path, lineno, f"{what}: expected finite numbers, got {got!r}")
    return values


def euler_to_matrix(letters: str | list[str], radians: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation from angles (..., n) about fixed axes applied in the order of
    ``letters`` (n of x/y/z): ``"xyz"`` gives ``Rz @ Ry @ Rx``, the first letter acting first."""
    radians = np.asarray(radians, dtype=np.float64)
    out = np.broadcast_to(np.eye(3), radians.shape[:-1] + (3, 3)).copy()
    for n, letter in enumerate(letters):
        out = axis_rotation(letter, radians[..., n]) @ out
    return out


def _axis_order(token: str, path: Path, lineno: int) -> str:
    _check(sorted(token.lower()) == ["x", "y", "z"], path, lineno, f"expected a rotation order like XYZ, got {token!r}")
    return token.lower()


def _bone_order(parents: list[int]) -> list[int]:
    """Bone indices, every parent before its children (root first)."""
    children: list[list[int]] = [[] for _ in parents]
    for child, parent in enumerate(parents):
        if parent >= 0:
            children[parent].append(child)
    order = [0]
    for bone in order:  # the list grows while iterating: a breadth-first walk
        order.extend(children[bone])
    return order


def read_asf(path) -> AsfSkeleton:
    """Read an ASF skeleton file; raises DataFormatError naming the file and line at fault."""
    path, lines = _tokenised_lines(path)
    section, length_mult, degrees = None, 1.0, True
    root_order, root_axis, root_pos, root_orient = list(_ROOT_TOKENS), "xyz", np.zeros(3), np.zeros(3)
    bones: list[dict] = []
    bone: dict | None = None
    in_limits, parent_of, hierarchy_line = False, {}, None
    for lineno, tokens in lines:
        key, args, got = tokens[0].lower(), tokens[1:], " ".join(tokens[1:])
        if key.startswith(":"):
            _check(bone is None, path, lineno, f"bone block opened at line {bone and bone['line']} has no 'end'")
            section = key[1:]
            _check(section in _ASF_SECTIONS, path, lineno,
                   f"unknown section {tokens[0]!r}; expected one of " + ", ".join(":" + s for s in _ASF_SECTIONS))
            hierarchy_line = lineno if section == "hierarchy" else hierarchy_line
            continue  # ":version 1.10" / ":name VICON" carry their values on this line
        _check(section is not None, path, lineno, f"expected a section keyword such as :units, got {tokens[0]!r}")
        if section in ("version", "name", "documentation", "skin"):
            continue  # free text or metadata that kinematics does not need
        if section == "units":
            if key == "length":
                length_mult = _numbers(args, 1, path, lineno, "units length")[0]
                _check(length_mult > 0, path, lineno, f"units length must be positive, got {length_mult}")
            elif key == "angle":
                _check(got.lower() in ("deg", "rad"), path, lineno, f"units angle: expected deg or rad, got {got!r}")
                degrees = got.lower() == "deg"
        elif section == "root":
            if key == "order":
                root_order = [t.lower() for t in args]
                _check(0 < len(set(root_order)) == len(root_order) and set(root_order) <= set(_ROOT_TOKENS), path,
                       lineno, f"root order: expected distinct tokens from TX TY TZ RX RY RZ, got {got!r}")
            elif key == "axis":
                root_axis = _axis_order(got, path, lineno)
            elif key in ("position", "orientation"):
                values = np.array(_numbers(args, 3, path, lineno, f"root {key}"))
                root_pos, root_orient = (values, root_orient) if key == "position" else (root_pos, values)
        elif section == "bonedata":
            if key == "begin":
                _check(bone is None, path, lineno, f"'begin' inside the bone block of line {bone and bone['line']}")
                bone, in_limits = {"line": lineno, "dof": [], "axis": np.zeros(3), "order": "xyz"}, False
                continue
            _check(bone is not None, path, lineno, f"expected 'begin' of a bone block, got {tokens[0]!r}")
            if key == "end":
                missing = ", ".join(repr(k) for k in ("name", "direction", "length") if k not in bone)
                _check(not missing, path, lineno, f"bone block opened at line {bone['line']} has no {missing}")
                bones.append(bone)
                bone = None
                continue
            was_limits, in_limits = in_limits, key == "limits"
            if key == "name":
                _check(len(args) == 1, path, lineno, f"name: expected one bone name, got {got!r}")
                _check(got != "root" and all(b["name"] != got for b in bones), path, lineno,
                       f"bone name {got!r} is already used")
                bone["name"] = got
            elif key == "direction":
                bone["direction"], bone["direction_line"] = np.array(_numbers(args, 3, path, lineno, key)), lineno
            elif key == "length":
                bone["length"] = _numbers(args, 1, path, lineno, key)[0]
                _check(bone["length"] >= 0, path, lineno, f"length must not be negative, got {bone['length']}")
            elif key == "axis":
                _check(len(args) == 4, path, lineno, f"axis: expected three angles and an order like XYZ, got {got!r}")
                bone["axis"] = np.array(_numbers(args[:3], 3, path, lineno, key))
                bone["order"] = _axis_order(args[3], path, lineno)
            elif key == "dof":
                bone["dof"] = [t.lower() for t in args]
                _check(len(set(bone["dof"])) == len(args) and set(bone["dof"]) <= set(_BONE_DOFS), path, lineno,
                       f"dof: expected distinct tokens from rx ry rz (no bone translations), got {got!r}")
            elif key == "limits" or (was_limits and key[0] in "+-.0123456789"):  # "(-inf 10)" -> "-inf 10"
                _numbers(args if key == "limits" else tokens, 2, path, lineno, "limits", finite=False)
                in_limits = True  # a limits entry continues with one (min max) line per dof
            # id, bodymass, cofmass and vendor extensions do not affect kinematics
        elif section == "hierarchy" and key not in ("begin", "end"):
            known = {"root"} | {b["name"] for b in bones}
            for name in tokens:
                _check(name in known, path, lineno, f"hierarchy names unknown bone {name!r}; bones are "
                       + ", ".join(sorted(known)))
            for child in tokens[1:]:
                _check(child != "root" and child not in parent_of, path, lineno,
                       f"bone {child!r} already has a parent ({parent_of.get(child, 'it is the root')!r})")
                parent_of[child] = tokens[0]
    last = lines[-1][0] if lines else 1
    _check(bone is None, path, last, f"bone block opened at line {bone and bone['line']} has no 'end'")
    orphans = ", ".join(b["name"] for b in bones if b["name"] not in parent_of)
    _check(not orphans, path, hierarchy_line or last, f"expected a parent in :hierarchy for bone(s) {orphans}")
    names = ["root"] + [b["name"] for b in bones]
    parents = [-1] + [names.index(parent_of[b["name"]]) for b in bones]
    _check(len(_bone_order(parents)) == len(names), path, hierarchy_line or last,
           "hierarchy has a cycle: some bones are not connected to root")
    directions = np.zeros((len(names), 3))
    for i, b in enumerate(bones, 1):
        norm = np.linalg.norm(b["direction"])
        _check(norm > 0 or b["length"] == 0, path, b["direction_line"], f"bone {b['name']!r}: direction is zero")
        directions[i] = b["direction"] / norm if norm > 0 else 0.0  # the spec means unit vectors
    scale = np.pi / 180.0 if degrees else 1.0
    axes = np.stack([euler_to_matrix(root_axis, root_orient * scale)]
                    + [euler_to_matrix(b["order"], b["axis"] * scale) for b in bones])
    return AsfSkeleton(names, parents, directions, np.array([0.0] + [b["length"] for b in bones]), axes,
                       [root_order] + [b["dof"] for b in bones], INCH_M / length_mult, root_pos, degrees)


def read_amc(path, skeleton: AsfSkeleton, fps: float = 120.0) -> AmcMotion:
    """Read an AMC motion for ``skeleton``; rotation values come back in degrees whatever the file uses."""
    path, lines = _tokenised_lines(path)
    ndofs = {name: len(dofs) for name, dofs in zip(skeleton.bone_names, skeleton.dofs)}
    rows: dict[str, list[list[float]]] = {name: [] for name in ndofs}
    line_of: dict[str, list[int]] = {name: [] for name in ndofs}  # to name the line of a NaN later
    degrees = skeleton.angles_in_degrees
    frame, frame_line, seen, count = None, 0, set(), 0

    def close_frame() -> None:
        missing = ", ".join(n for n in ndofs if n not in seen and ndofs[n])
        _check(not missing, path, frame_line, f"frame {frame} has no line for bone(s) {missing}")
        for name in ndofs:  # bones without dofs may be left out of a frame
            if name not in seen:
                rows[name].append([])
                line_of[name].append(frame_line)

    for lineno, tokens in lines:
        head = tokens[0]
        if head.startswith(":"):
            keyword = head[1:].upper()
            _check(keyword in _AMC_KEYWORDS, path, lineno,
                   f"unknown keyword {head!r}; expected one of " + ", ".join(":" + k for k in _AMC_KEYWORDS))
            degrees = degrees if keyword == "FULLY-SPECIFIED" else keyword == "DEGREES"
            continue
        if len(tokens) == 1 and head.lstrip("+-").isdigit():  # a frame number starts a frame
            if frame is not None:
                _check(int(head) == frame + 1, path, lineno, f"frame {head} out of order: expected frame {frame + 1}")
                close_frame()
            frame, frame_line, seen, count = int(head), lineno, set(), count + 1
            continue
        try:  # the fast path: a CMU motion has ~30 bone lines per frame at 120 fps
            if frame is None or head in seen or len(tokens) - 1 != ndofs[head]:
                raise ValueError
            rows[head].append([float(t) for t in tokens[1:]])
        except (KeyError, ValueError):  # slow path: one of these checks raises, naming what is wrong
            _check(frame is not None, path, lineno, f"expected a frame number before bone values, got {head!r}")
            _check(head in ndofs, path, lineno, f"unknown bone {head!r}; the skeleton has {', '.join(ndofs)}")
            _check(head not in seen, path, lineno, f"bone {head!r} appears twice in frame {frame}")
            dofs = skeleton.dofs[skeleton.bone_names.index(head)]
            _numbers(tokens[1:], len(dofs), path, lineno, f"bone {head!r} ({' '.join(dofs) or 'no dofs'})")
        line_of[head].append(lineno)
        seen.add(head)
    if frame is None:
        raise DataFormatError(f"{path}: no frames found; expected a frame number line followed by bone lines")
    close_frame()
    values = {}
    for name, dofs in zip(skeleton.bone_names, skeleton.dofs):
        values[name] = np.array(rows[name], dtype=np.float64).reshape(count, len(dofs))
        bad = np.flatnonzero(~np.isfinite(values[name]).all(axis=1))
        _check(not bad.size, path, line_of[name][bad[0]] if bad.size else 0, f"bone {name!r}: expected finite values")
        if not degrees:  # one angle unit downstream
            rot = [i for i, d in enumerate(dofs) if d.startswith("r")]
            values[name][:, rot] = np.degrees(values[name][:, rot])
    return AmcMotion(skeleton=skeleton, values=values, num_frames=count, fps=float(fps))


def forward_kinematics(motion: AmcMotion) -> np.ndarray:
    """(T, B, 3) positions of each bone's end point (root: the root position), in metres,
    ASF axes (CMU: Y up). Vectorised over frames; bones visited parents first."""
    sk, T = motion.skeleton, motion.num_frames
    B = len(sk.bone_names)
    rotations = np.empty((T, B, 3, 3))
    positions = np.empty((T, B, 3))
    for b in _bone_order(sk.parents):
        name, dofs = sk.bone_names[b], sk.dofs[b]
        values = np.asarray(motion.values.get(name, np.zeros((T, 0))), dtype=np.float64)
        if values.shape != (T, len(dofs)):
            raise DataFormatError(f"values for bone {name!r} have shape {values.shape}, expected {(T, len(dofs))}")
        rot = [i for i, d in enumerate(dofs) if d.startswith("r")]
        motion_rot = euler_to_matrix([dofs[i][1] for i in rot], np.radians(values[:, rot]))
        C = sk.axes[b]
        local = C @ motion_rot @ C.T  # C is orthonormal: its inverse is its transpose
        if sk.parents[b] < 0:
            translation = np.zeros((T, 3))
            for i, d in enumerate(dofs):
                if d.startswith("t"):
                    translation[:, "xyz".index(d[1])] = values[:, i]
            rotations[:, b] = local
            positions[:, b] = sk.root_position + translation
        else:
            p = sk.parents[b]
            rotations[:, b] = rotations[:, p] @ local
            positions[:, b] = positions[:, p] + rotations[:, b] @ (sk.directions[b] * sk.lengths[b])
    return positions * sk.length_unit_m
