import torch

from poselift.losses import BoneLengthConsistencyLoss, MPJPELoss, ReprojectionLoss, WeightedMPJPELoss


def test_mpjpe_loss_hand_value_and_weight():
    target = torch.zeros(2, 1, 3, 3)
    pred = target.clone()
    pred[..., 0] = 3.0
    pred[..., 1] = 4.0
    assert MPJPELoss()(pred, target).item() == 5.0
    assert MPJPELoss(weight=0.5)(pred, target).item() == 2.5


def test_weighted_mpjpe_uses_inverse_depth():
    target = torch.zeros(2, 1, 1, 3)
    pred = torch.ones(2, 1, 1, 3)
    w = torch.tensor([1.0, 0.25]).view(2, 1, 1)
    expected = torch.sqrt(torch.tensor(3.0)) * (1.0 + 0.25) / 2
    assert torch.isclose(WeightedMPJPELoss()(pred, target, w), expected)


def test_reprojection_zero_for_consistent_pose_and_grows_with_error():
    intr = torch.tensor([[2.0, 2.0, 0.1, -0.1, 0.0, 0.0, 0.0, 0.0, 0.0]])
    pose = torch.tensor([[[[0.0, 0.0, 0.0], [0.2, -0.1, 0.1]]]])
    traj = torch.tensor([[[[0.1, 0.2, 4.0]]]])
    cam = pose + traj
    kps = intr[0, :2] * cam[..., :2] / cam[..., 2:] + intr[0, 2:4]
    loss = ReprojectionLoss()
    assert loss(pose, traj, kps, intr).item() < 1e-7
    assert loss(pose, traj, kps + 0.01, intr).item() > 0.01


def test_bone_length_consistency():
    parents = [-1, 0, 1]
    lab = torch.tensor([[[[0, 0, 0], [0, 1.0, 0], [0, 1.0, 0.5]]]])  # bones 1.0 and 0.5
    unl = lab * 2  # bones 2.0 and 1.0
    loss = BoneLengthConsistencyLoss(parents)
    assert abs(loss(lab, lab).item()) < 1e-7
    assert abs(loss(lab, unl).item() - 0.75) < 1e-6  # mean(|1-2|, |0.5-1|)
    unl.requires_grad_(True)
    loss(lab, unl).backward()
    assert torch.isfinite(unl.grad).all()
