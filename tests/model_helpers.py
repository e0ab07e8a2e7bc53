"""Shared test helpers: lifter models and Human3.6M-17 poses."""

import torch


def randomise_bn(model: torch.nn.Module, seed: int = 0) -> None:
    """Running statistics and affine terms away from the identity, so eval-mode batch norm matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                n = m.num_features
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)


def h36m_pose_without_legs():
    """(17, 3) Human3.6M-17 pose facing +z, y up, right side at -x, metres: torso, head, arms and hips set,
    knees and ankles left at 0 for the caller."""
    import numpy as np

    from poselift.skeleton import H36M_17

    j = {n: i for i, n in enumerate(H36M_17.joint_names)}
    p = np.zeros((17, 3))
    for side, sx in (("right", -1.0), ("left", 1.0)):
        p[j[f"{side}_hip"]] = (0.1 * sx, 1.0, 0.0)
        p[j[f"{side}_shoulder"]] = (0.17 * sx, 1.48, 0.0)
        p[j[f"{side}_elbow"]] = (0.2 * sx, 1.2, 0.02)
        p[j[f"{side}_wrist"]] = (0.2 * sx, 0.97, 0.12)
    p[j["pelvis"]] = (0.0, 1.0, 0.0)
    p[j["spine"]] = (0.0, 1.25, 0.01)
    p[j["thorax"]] = (0.0, 1.5, 0.0)
    p[j["neck_nose"]] = (0.0, 1.6, 0.08)
    p[j["head"]] = (0.0, 1.7, 0.0)
    return p
