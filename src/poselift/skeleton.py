"""Joint sets and conversions between them.

A :class:`Skeleton` owns joint names, the kinematic tree (parents), left/right
symmetry and the bones derived from it. The layouts shipped here are the ones
people's data already use: Human3.6M (32-joint source and the 17-joint subset
VideoPose3D trains on), COCO-17, HumanEva-15 and MPII-16.

Conversions are linear: every target joint is a weighted mean of source joints
(``pelvis = (left_hip + right_hip) / 2``), so one ``(J_dst, J_src)`` matrix
converts 2D, 3D and confidences alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from poselift.errors import PoseliftError


@dataclass(frozen=True)
class Skeleton:
    """A named joint layout with a kinematic tree.

    Attributes:
        name: layout name, e.g. ``"h36m"`` (stored in data files' metadata).
        joint_names: one name per joint, in storage order.
        parents: parent index per joint, ``-1`` for the root.
        joints_left / joints_right: paired indices swapped by a horizontal flip
            (``joints_left[i]`` mirrors ``joints_right[i]``).
    """

    name: str
    joint_names: tuple[str, ...]
    parents: tuple[int, ...]
    joints_left: tuple[int, ...]
    joints_right: tuple[int, ...]
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        n = len(self.joint_names)
        if len(self.parents) != n:
            raise ValueError(f"skeleton {self.name}: {len(self.parents)} parents for {n} joints")
        if len(self.joints_left) != len(self.joints_right):
            raise ValueError(f"skeleton {self.name}: left/right joint lists differ in length")
        for j, p in enumerate(self.parents):
            if p >= n or p < -1 or p == j:
                raise ValueError(f"skeleton {self.name}: joint {j} has invalid parent {p}")

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def root(self) -> int:
        return self.parents.index(-1)

    def index(self, joint_name: str) -> int:
        try:
            return self.joint_names.index(joint_name)
        except ValueError:
            raise PoseliftError(
                f"skeleton {self.name} has no joint {joint_name!r}; joints are {list(self.joint_names)}"
            ) from None

    @cached_property
    def bones(self) -> tuple[tuple[int, int], ...]:
        """(child, parent) pairs, one per non-root joint, in joint order."""
        return tuple((j, p) for j, p in enumerate(self.parents) if p >= 0)

    @cached_property
    def children(self) -> tuple[tuple[int, ...], ...]:
        return tuple(tuple(c for c, p in enumerate(self.parents) if p == j) for j in range(self.num_joints))

    @cached_property
    def flip_permutation(self) -> np.ndarray:
        """Index array that swaps left and right joints: ``x_flipped = x[..., perm, :]``."""
        perm = np.arange(self.num_joints)
        perm[list(self.joints_left)] = self.joints_right
        perm[list(self.joints_right)] = self.joints_left
        return perm

    def subset(self, keep: list[int], name: str, rewire: dict[int, int] | None = None) -> "Skeleton":
        """A skeleton with only the ``keep`` joints (source indices, in order).

        A removed joint's children are re-parented to its nearest kept
        ancestor; ``rewire`` (new child -> new parent, indices in the subset)
        then overrides parents where anatomy says otherwise.
        """
        remap = {old: new for new, old in enumerate(keep)}
        parents = []
        for old in keep:
            p = self.parents[old]
            while p != -1 and p not in remap:
                p = self.parents[p]
            parents.append(remap[p] if p != -1 else -1)
        for child, parent in (rewire or {}).items():
            parents[child] = parent
        left = [remap[j] for j in self.joints_left if j in remap]
        right = [remap[j] for j in self.joints_right if j in remap]
        return Skeleton(name, tuple(self.joint_names[i] for i in keep), tuple(parents), tuple(left), tuple(right))


H36M_32 = Skeleton(
    name="h36m32",
    joint_names=(
        "hip", "right_up_leg", "right_leg", "right_foot", "right_toe_base", "right_toe_site",
        "left_up_leg", "left_leg", "left_foot", "left_toe_base", "left_toe_site",
        "spine", "spine1", "neck", "head", "head_site",
        "left_shoulder", "left_arm", "left_fore_arm", "left_hand", "left_hand_thumb", "left_thumb_site",
        "left_wrist_end", "left_wrist_site",
        "right_shoulder", "right_arm", "right_fore_arm", "right_hand", "right_hand_thumb", "right_thumb_site",
        "right_wrist_end", "right_wrist_site",
    ),
    parents=(-1, 0, 1, 2, 3, 4, 0, 6, 7, 8, 9, 0, 11, 12, 13, 14, 12,
             16, 17, 18, 19, 20, 19, 22, 12, 24, 25, 26, 27, 28, 27, 30),
    joints_left=(6, 7, 8, 9, 10, 16, 17, 18, 19, 20, 21, 22, 23),
    joints_right=(1, 2, 3, 4, 5, 24, 25, 26, 27, 28, 29, 30, 31),
)

#: The 17 joints VideoPose3D keeps from the 32 Human3.6M markers (indices into H36M_32).
H36M_17_FROM_32 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)

H36M_17 = Skeleton(
    name="h36m",
    joint_names=(
        "pelvis", "right_hip", "right_knee", "right_ankle", "left_hip", "left_knee", "left_ankle",
        "spine", "thorax", "neck_nose", "head",
        "left_shoulder", "left_elbow", "left_wrist", "right_shoulder", "right_elbow", "right_wrist",
    ),
    # Equal to H36M_32.subset(H36M_17_FROM_32) with the shoulders re-parented to the thorax
    # (in the 32-joint source they hang off spine1 through a removed clavicle).
    parents=(-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
    joints_left=(4, 5, 6, 11, 12, 13),
    joints_right=(1, 2, 3, 14, 15, 16),
)

COCO_17 = Skeleton(
    name="coco",
    joint_names=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    # COCO has no anatomical tree; this one hangs everything off the nose for drawing and bones.
    parents=(-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14),
    joints_left=(1, 3, 5, 7, 9, 11, 13, 15),
    joints_right=(2, 4, 6, 8, 10, 12, 14, 16),
)

HUMANEVA_15 = Skeleton(
    name="humaneva15",
    joint_names=(
        "pelvis", "thorax", "left_shoulder", "left_elbow", "left_wrist",
        "right_shoulder", "right_elbow", "right_wrist",
        "left_hip", "left_knee", "left_ankle", "right_hip", "right_knee", "right_ankle", "head",
    ),
    parents=(-1, 0, 1, 2, 3, 1, 5, 6, 0, 8, 9, 0, 11, 12, 1),
    joints_left=(2, 3, 4, 8, 9, 10),
    joints_right=(5, 6, 7, 11, 12, 13),
)

MPII_16 = Skeleton(
    name="mpii",
    joint_names=(
        "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
        "pelvis", "thorax", "upper_neck", "head_top",
        "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow", "left_wrist",
    ),
    parents=(1, 2, 6, 6, 3, 4, -1, 6, 7, 8, 11, 12, 7, 7, 13, 14),
    joints_left=(3, 4, 5, 13, 14, 15),
    joints_right=(2, 1, 0, 12, 11, 10),
)

MEDIAPIPE_33 = Skeleton(
    name="mediapipe33",
    # MediaPipe Pose (BlazePose) landmark order; "left" is the person's left, as in COCO.
    joint_names=(
        "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye",
        "right_eye_outer", "left_ear", "right_ear", "mouth_left", "mouth_right",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
        "left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb",
        "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
        "left_heel", "right_heel", "left_foot_index", "right_foot_index",
    ),
    # Rooted at the nose like COCO_17 (face joints chain outwards from it, shoulders hang off it,
    # hips off the shoulders), so the subset of the 17 COCO joints has exactly COCO_17's parents;
    # fingers hang off the wrists, heels and toes off the ankles.
    parents=(-1, 0, 1, 2, 0, 4, 5, 3, 6, 0, 0,
             0, 0, 11, 12, 13, 14, 15, 16, 15, 16, 15, 16,
             11, 12, 23, 24, 25, 26, 27, 28, 27, 28),
    joints_left=(1, 2, 3, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31),
    joints_right=(4, 5, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32),
)

SKELETONS: dict[str, Skeleton] = {
    s.name: s for s in (H36M_32, H36M_17, COCO_17, HUMANEVA_15, MPII_16, MEDIAPIPE_33)
}


def get_skeleton(name: str) -> Skeleton:
    try:
        return SKELETONS[name]
    except KeyError:
        raise PoseliftError(f"unknown skeleton layout {name!r}; known layouts: {sorted(SKELETONS)}") from None


def skeleton_for_joint_count(num_joints: int) -> Skeleton:
    """The layout a VideoPose3D-format file with this many joints uses (3D files carry no layout name)."""
    by_count = {17: H36M_17, 32: H36M_32, 15: HUMANEVA_15, 16: MPII_16}
    if num_joints not in by_count:
        raise PoseliftError(f"no known skeleton has {num_joints} joints (known: {sorted(by_count)})")
    return by_count[num_joints]


# Each target joint as the mean of named source joints. Joints that map one to one
# by name need no entry; missing joints make the conversion unavailable.
_RECIPES: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {
    ("coco", "h36m"): {
        "pelvis": ("left_hip", "right_hip"),
        "right_hip": ("right_hip",), "right_knee": ("right_knee",), "right_ankle": ("right_ankle",),
        "left_hip": ("left_hip",), "left_knee": ("left_knee",), "left_ankle": ("left_ankle",),
        "spine": ("left_hip", "right_hip", "left_shoulder", "right_shoulder"),
        "thorax": ("left_shoulder", "right_shoulder"),
        "neck_nose": ("nose",),
        "head": ("left_eye", "right_eye"),
    },
    ("mpii", "h36m"): {
        "spine": ("pelvis", "thorax"),
        "neck_nose": ("upper_neck",),
        "head": ("head_top",),
    },
    ("humaneva15", "h36m"): {
        "spine": ("pelvis", "thorax"),
        "neck_nose": ("thorax", "head"),
    },
    ("h36m", "mpii"): {
        "upper_neck": ("neck_nose",),
        "head_top": ("head",),
    },
    ("h36m", "humaneva15"): {},
    # Every COCO joint is a MediaPipe landmark of the same name and the same anatomical point,
    # so the conversion is a pure selection of 17 of the 33 landmarks.
    ("mediapipe33", "coco"): {},
}


def conversion_matrix(src: Skeleton, dst: Skeleton) -> np.ndarray:
    """(J_dst, J_src) weights such that ``x_dst = W @ x_src`` joint-wise."""
    if src.name == "h36m32" and dst.name == "h36m":
        w = np.zeros((dst.num_joints, src.num_joints))
        w[np.arange(dst.num_joints), list(H36M_17_FROM_32)] = 1.0
        return w
    if src.name == dst.name:
        return np.eye(src.num_joints)
    recipe = _RECIPES.get((src.name, dst.name))
    if recipe is None:
        raise PoseliftError(
            f"no conversion from {src.name} to {dst.name}; available: "
            f"{sorted(f'{a}->{b}' for a, b in _RECIPES) + ['h36m32->h36m']}"
        )
    w = np.zeros((dst.num_joints, src.num_joints))
    for j, name in enumerate(dst.joint_names):
        sources = recipe.get(name, (name,))
        for s in sources:
            w[j, src.index(s)] = 1.0 / len(sources)
    return w


def convert_keypoints(x: np.ndarray, src: Skeleton, dst: Skeleton) -> np.ndarray:
    """Convert keypoints ``(..., J_src, C)`` to ``(..., J_dst, C)`` (any C: 2D, 3D, scores)."""
    x = np.asarray(x)
    if x.shape[-2] != src.num_joints:
        raise PoseliftError(f"expected {src.num_joints} {src.name} joints on axis -2, got shape {x.shape}")
    w = conversion_matrix(src, dst).astype(x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64)
    return np.einsum("ds,...sc->...dc", w, x)
