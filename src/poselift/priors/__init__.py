"""Pose priors for weak supervision: bone-length ratios (BPC) and free-bone orientations (JMC).

After Amadi & Agam's PoseReg (ICIP 2022, Sensors 2023): fitted once on
labelled 3D poses (:func:`poselift.priors.fit.fit_priors`), saved as one
safetensors file (:class:`poselift.priors.model.PosePriors`), then scored on
unlabelled predictions by the weak losses. ``free_bones`` and ``bone_ratios``
hold the geometry both the priors and the posture metrics (MPBOE) share.
"""

from poselift.priors.bone_ratios import (BONE_NAMES, BONE_RATIOS, BONES, RATIO_NAMES, SYMMETRIC_BONE_PAIRS,
                                         bone_lengths, bone_ratios)
from poselift.priors.free_bones import (FREE_BONE_JOINT_WEIGHTS, FREE_BONE_NAMES, FREE_BONES, MIRROR_PAIRS, FreeBone,
                                        free_bone_frames, free_bone_vectors, mirror_free_bone_vectors)
from poselift.priors.model import PosePriors

__all__ = [
    "BONES", "BONE_NAMES", "BONE_RATIOS", "RATIO_NAMES", "SYMMETRIC_BONE_PAIRS", "bone_lengths", "bone_ratios",
    "FREE_BONES", "FREE_BONE_NAMES", "FREE_BONE_JOINT_WEIGHTS", "MIRROR_PAIRS", "FreeBone", "free_bone_frames",
    "free_bone_vectors", "mirror_free_bone_vectors", "PosePriors",
]
