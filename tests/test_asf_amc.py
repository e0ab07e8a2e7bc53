"""ASF/AMC reader and forward kinematics (poselift.data.asf_amc).

Every ASF/AMC text here is written by hand for these tests (no CMU data is stored); expected
positions are computed independently with rotations built from Rodrigues' formula and applied
one at a time, exactly as the format describes them: about fixed axes, in the order written.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from poselift.data.asf_amc import AmcMotion, forward_kinematics, read_amc, read_asf
from poselift.errors import DataFormatError

CMU_UNIT = 0.0254 / 0.45  # CMU FAQ: (1/0.45) * 2.54 / 100 = 0.056444 m per file unit

# root + a lhipjoint/lfemur/ltibia-like chain; axes are deliberately non-trivial
CHAIN_ASF = """\
# synthetic test skeleton, written by hand
:version 1.10
:name TESTCHAIN
:units
  mass 1.0
  length 1.0
  angle deg
:documentation
  A made-up three-bone leg. begin end dof (free text is ignored)
:root
   order TX TY TZ RX RY RZ
   axis XYZ
   position 0 0 0
   orientation 0 0 0
:bonedata
  begin
     id 1
     name hip
     direction 0.6 -0.8 0
     length 2.5
     axis 0 0 36.87 XYZ
  end
  begin
     id 2
     name femur
     direction 0 -1 0
     length 7
     axis 30 0 -40 XYZ
    dof rx ry rz
    limits (-160.0 20.0)
           (-70.0 70.0)
           (-60.0 70.0)
  end
  begin
     id 3
     name tibia
     direction 0 0 -2
     length 6
     axis 0 90 0 XYZ
    dof rx
    limits (-10.0 170.0)
  end
:hierarchy
  begin
    root hip
    hip femur
    femur tibia
  end
"""
# each bone's rest offset (unit direction * length, file units)
START = {"hip": np.array([1.5, -2.0, 0.0]), "femur": np.array([0.0, -7.0, 0.0]), "tibia": np.array([0.0, 0.0, -6.0])}


def rot(axis: str, degrees: float) -> np.ndarray:
    """Rotation about a unit coordinate axis by Rodrigues' formula (independent of the module)."""
    k = np.eye(3)["xyz".index(axis)]
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    t = math.radians(degrees)
    return np.eye(3) + math.sin(t) * K + (1 - math.cos(t)) * K @ K


def fixed_axes(*steps: tuple[str, float]) -> np.ndarray:
    """The matrix that applies rotations about fixed axes one after another, first step first."""
    out = np.eye(3)
    for axis, degrees in steps:
        out = rot(axis, degrees) @ out
    return out


def amc_text(frames: list[dict[str, list[float]]], header: str = ":FULLY-SPECIFIED\n:DEGREES\n", first: int = 1) -> str:
    lines = ["#!OML:ASF written-by-hand.asf", header.rstrip("\n")]
    for n, frame in enumerate(frames, first):
        lines.append(str(n))
        lines += [" ".join([bone] + [f"{v:.10g}" for v in vals]) for bone, vals in frame.items()]
    return "\n".join(lines) + "\n"


def zero_frame(**overrides) -> dict[str, list[float]]:
    frame = {"root": [0.0] * 6, "femur": [0.0, 0.0, 0.0], "tibia": [0.0]}
    frame.update({k: list(v) for k, v in overrides.items()})
    return frame


@pytest.fixture
def chain(tmp_path):
    path = tmp_path / "chain.asf"
    path.write_text(CHAIN_ASF)
    return read_asf(path)


def run_fk(tmp_path, skeleton, frames, header=":FULLY-SPECIFIED\n:DEGREES\n"):
    path = tmp_path / "motion.amc"
    path.write_text(amc_text(frames, header))
    motion = read_amc(path, skeleton)
    return motion, forward_kinematics(motion)


def test_asf_structure(chain):
    assert chain.bone_names == ["root", "hip", "femur", "tibia"]
    assert chain.parents == [-1, 0, 1, 2]
    assert chain.dofs == [["tx", "ty", "tz", "rx", "ry", "rz"], [], ["rx", "ry", "rz"], ["rx"]]
    np.testing.assert_allclose(chain.lengths, [0, 2.5, 7, 6])
    np.testing.assert_allclose(chain.directions[3], [0, 0, -1])  # normalised
    np.testing.assert_allclose(chain.axes[0], np.eye(3))
    np.testing.assert_allclose(chain.axes[2], fixed_axes(("x", 30), ("z", -40)), atol=1e-12)
    assert chain.length_unit_m == pytest.approx(0.0254)  # length 1.0: one unit is one inch


def test_zero_motion_is_rest_pose_whatever_the_axes(tmp_path, chain):
    motion, pos = run_fk(tmp_path, chain, [zero_frame(), zero_frame()])
    assert pos.shape == (2, 4, 3) and motion.num_frames == 2 and motion.fps == 120.0
    u = chain.length_unit_m
    expected_hip = START["hip"]
    expected_femur = expected_hip + START["femur"]
    expected_tibia = expected_femur + START["tibia"]
    for t in range(2):
        np.testing.assert_allclose(pos[t], np.array([[0, 0, 0], expected_hip, expected_femur, expected_tibia]) * u,
                                   atol=1e-12)


def test_ninety_degrees_about_an_identity_axis_by_hand(tmp_path):
    asf = CHAIN_ASF.replace("axis 30 0 -40 XYZ", "axis 0 0 0 XYZ").replace("direction 0 0 -2", "direction 0 -1 0")
    (tmp_path / "s.asf").write_text(asf)
    sk = read_asf(tmp_path / "s.asf")
    _, pos = run_fk(tmp_path, sk, [zero_frame(femur=[0, 0, 90])])
    u = sk.length_unit_m
    hip = np.array([1.5, -2.0, 0.0])
    # rz = +90 turns "down" (0,-1,0) into +x (right-handed about z): femur end 7 units along +x,
    # and the tibia (also pointing down at rest, no motion of its own) follows: 6 more along +x.
    np.testing.assert_allclose(pos[0, 2] / u, hip + [7, 0, 0], atol=1e-9)
    np.testing.assert_allclose(pos[0, 3] / u, hip + [13, 0, 0], atol=1e-9)


def test_axis_turns_the_dof_axis_by_hand(tmp_path, chain):
    # tibia: axis 0 90 0 => its local x is Ry(90) x = (0, 0, -1), i.e. along its own direction:
    # rx is a twist and the end point does not move...
    _, pos = run_fk(tmp_path, chain, [zero_frame(), zero_frame(tibia=[50])])
    np.testing.assert_allclose(pos[1], pos[0], atol=1e-12)
    # ...whereas on a bone pointing down (0,-1,0), rx = +90 about local x = global -z swings
    # the end from down to -x (Rz(-90) maps (0,-1,0) to (-1,0,0)).
    asf = CHAIN_ASF.replace("direction 0 0 -2", "direction 0 -1 0")
    (tmp_path / "s.asf").write_text(asf)
    sk = read_asf(tmp_path / "s.asf")
    _, pos = run_fk(tmp_path, sk, [zero_frame(), zero_frame(tibia=[90])])
    np.testing.assert_allclose((pos[1, 3] - pos[1, 2]) / sk.length_unit_m, [-6, 0, 0], atol=1e-9)


def test_non_identity_axis_and_several_dofs_against_explicit_matrices(tmp_path, chain):
    femur_dofs, tibia_dof = [25.0, -15.0, 40.0], 70.0
    _, pos = run_fk(tmp_path, chain, [zero_frame(femur=femur_dofs, tibia=[tibia_dof])])
    C_f = fixed_axes(("x", 30), ("z", -40))  # axis 30 0 -40 XYZ: about x first, then z
    M_f = fixed_axes(("x", femur_dofs[0]), ("y", femur_dofs[1]), ("z", femur_dofs[2]))
    C_t = fixed_axes(("y", 90))
    M_t = fixed_axes(("x", tibia_dof))
    G_hip = np.eye(3)  # hip has no dofs
    G_f = G_hip @ C_f @ M_f @ np.linalg.inv(C_f)
    G_t = G_f @ C_t @ M_t @ np.linalg.inv(C_t)
    hip = START["hip"]
    femur = hip + G_f @ START["femur"]
    tibia = femur + G_t @ START["tibia"]  # direction (0,0,-2) normalised, times length 6
    u = chain.length_unit_m
    np.testing.assert_allclose(pos[0, 1:] / u, [hip, femur, tibia], atol=1e-9)
    # the test discriminates the composition order: the other reading (Rx then Rz as
    # Rx @ Rz) puts the femur end somewhere else
    C_other = rot("x", 30) @ rot("z", -40)
    other = hip + C_other @ M_f @ C_other.T @ START["femur"]
    assert np.linalg.norm(other - femur) > 0.5


def test_root_translation_rotation_and_asf_position(tmp_path):
    asf = CHAIN_ASF.replace("position 0 0 0", "position 0.5 0 0")
    (tmp_path / "s.asf").write_text(asf)
    sk = read_asf(tmp_path / "s.asf")
    _, pos = run_fk(tmp_path, sk, [zero_frame(root=[1, 2, 3, 0, 90, 0])])
    u = sk.length_unit_m
    root = np.array([1.5, 2.0, 3.0])
    np.testing.assert_allclose(pos[0, 0] / u, root, atol=1e-12)
    # Ry(90) maps (1.5, -2, 0) to (0, -2, -1.5)
    np.testing.assert_allclose(pos[0, 1] / u, root + [0, -2, -1.5], atol=1e-9)
    # the chain below rotates rigidly with the root
    _, rest = run_fk(tmp_path, sk, [zero_frame(root=[1, 2, 3, 0, 0, 0])])
    np.testing.assert_allclose((pos[0] - pos[0, :1]) / u, (rot("y", 90) @ ((rest[0] - rest[0, :1]) / u).T).T, atol=1e-9)


def test_root_channel_order_is_read_from_the_asf(tmp_path):
    asf = CHAIN_ASF.replace("order TX TY TZ RX RY RZ", "order RZ RX TX TY TZ RY")
    (tmp_path / "s.asf").write_text(asf)
    sk = read_asf(tmp_path / "s.asf")
    assert sk.dofs[0] == ["rz", "rx", "tx", "ty", "tz", "ry"]
    motion, pos = run_fk(tmp_path, sk, [zero_frame(root=[30, 20, 1, 2, 3, 10])])
    u = sk.length_unit_m
    np.testing.assert_allclose(pos[0, 0] / u, [1, 2, 3], atol=1e-12)
    # rotations in the order written: rz first, then rx, then ry
    G = fixed_axes(("z", 30), ("x", 20), ("y", 10))
    np.testing.assert_allclose(pos[0, 1] / u, [1, 2, 3] + G @ START["hip"], atol=1e-9)


def test_cmu_units_and_radians(tmp_path):
    asf = CHAIN_ASF.replace("length 1.0", "length 0.45")
    (tmp_path / "s.asf").write_text(asf)
    sk = read_asf(tmp_path / "s.asf")
    assert sk.length_unit_m == pytest.approx(0.056444, abs=5e-7)
    assert sk.length_unit_m == pytest.approx(CMU_UNIT)
    _, pos = run_fk(tmp_path, sk, [zero_frame(root=[10, 0, 0, 0, 0, 0])])
    assert pos[0, 0, 0] == pytest.approx(10 * 0.0564444, abs=1e-6)  # root translation is scaled too
    assert np.linalg.norm(pos[0, 2] - pos[0, 1]) == pytest.approx(7 * CMU_UNIT)
    # :RADIANS in the AMC header: values come back in degrees and give the same pose
    deg = zero_frame(femur=[25, -15, 40], tibia=[70])
    rad = zero_frame(femur=np.radians([25, -15, 40]), tibia=np.radians([70]))
    m_deg, p_deg = run_fk(tmp_path, sk, [deg])
    m_rad, p_rad = run_fk(tmp_path, sk, [rad], header=":FULLY-SPECIFIED\n:RADIANS\n")
    np.testing.assert_allclose(m_rad.values["femur"], m_deg.values["femur"], atol=1e-8)
    np.testing.assert_allclose(p_rad, p_deg, atol=1e-10)


def test_bone_lengths_constant_across_frames(tmp_path, chain):
    rng = np.random.default_rng(0)
    frames = [zero_frame(root=np.r_[rng.normal(0, 20, 3), rng.uniform(-180, 180, 3)],
                         femur=rng.uniform(-180, 180, 3), tibia=rng.uniform(-180, 180, 1)) for _ in range(40)]
    motion, pos = run_fk(tmp_path, chain, frames)
    assert motion.values["femur"].shape == (40, 3) and motion.values["hip"].shape == (40, 0)
    for b in range(1, 4):
        seg = np.linalg.norm(pos[:, b] - pos[:, chain.parents[b]], axis=-1)
        np.testing.assert_allclose(seg, chain.lengths[b] * chain.length_unit_m, rtol=1e-10)
    assert np.ptp(pos[:, 3, 1]) > 0.1  # the pose really changes


# ---------------------------------------------------------------- errors name file and line

def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


ASF_ERRORS = [
    ("unknown section", lambda t: t.replace(":documentation", ":bogus"), ":bogus", "unknown section"),
    ("no name", lambda t: t.replace("     name femur\n", ""), "  end\n  begin\n     id 3", "'name'"),
    ("no direction", lambda t: t.replace("     direction 0 -1 0\n", ""), "  end\n  begin\n     id 3", "'direction'"),
    ("no length", lambda t: t.replace("     length 7\n", ""), "  end\n  begin\n     id 3", "'length'"),
    ("unknown bone", lambda t: t.replace("femur tibia", "femur tibiaa"), "femur tibiaa", "unknown bone 'tibiaa'"),
    ("bad number", lambda t: t.replace("length 6", "length six"), "length six", "expected numbers"),
    ("bad dof", lambda t: t.replace("dof rx\n", "dof rq\n"), "dof rq", "expected distinct tokens"),
    ("bad axis order", lambda t: t.replace("axis 0 90 0 XYZ", "axis 0 90 0 XYY"), "XYY", "rotation order"),
    ("orphan", lambda t: t.replace("    femur tibia\n", ""), ":hierarchy", "expected a parent"),
    ("cycle", lambda t: t.replace("hip femur", "tibia femur"), ":hierarchy", "cycle"),
    ("dup child", lambda t: t.replace("femur tibia", "femur tibia hip"), "femur tibia hip", "already has a parent"),
    ("no end", lambda t: t.replace("  end\n:hierarchy", ":hierarchy"), ":hierarchy", "has no 'end'"),
]


@pytest.mark.parametrize("label,mutate,needle,message", ASF_ERRORS, ids=[e[0] for e in ASF_ERRORS])
def test_asf_errors_name_file_and_line(tmp_path, label, mutate, needle, message):
    text = mutate(CHAIN_ASF)
    path = tmp_path / "bad.asf"
    path.write_text(text)
    if "\n" in needle:  # the error points at the 'end' closing the broken block
        lineno = text[: text.index(needle)].count("\n") + 1
    else:
        lineno = _line_of(text, needle)
    with pytest.raises(DataFormatError, match=re.escape(f"{path}:{lineno}:") + ".*" + re.escape(message)):
        read_asf(path)


AMC_ERRORS = [
    ("unknown bone", lambda t: t.replace("tibia 0\n", "shin 0\n", 1), "shin 0", "unknown bone 'shin'"),
    ("too few values", lambda t: t.replace("femur 0 0 0\n", "femur 0 0\n", 1), "femur 0 0", "expected 3 number(s)"),
    ("too many values", lambda t: t.replace("tibia 0\n", "tibia 0 1\n", 1), "tibia 0 1", "expected 1 number(s), got 2"),
    ("not a number", lambda t: t.replace("femur 0 0 0\n", "femur 0 abc 0\n", 1), "abc", "expected numbers"),
    ("nan", lambda t: t.replace("femur 0 0 0\n", "femur 0 nan 0\n", 1), "nan", "finite"),
    ("out of order", lambda t: t.replace("\n3\n", "\n5\n"), "5", "frame 5 out of order: expected frame 3"),
    ("missing bone", lambda t: t.replace("femur 0 0 0\n", "", 1), "1", "frame 1 has no line for bone(s) femur"),
    ("duplicate bone", lambda t: t.replace("tibia 0\n", "tibia 0\ntibia 5\n", 1), "tibia 5", "appears twice"),
    ("unknown keyword", lambda t: t.replace(":DEGREES", ":FURLONGS"), ":FURLONGS", "unknown keyword"),
    ("values before frame", lambda t: t.replace(":DEGREES\n", ":DEGREES\nfemur 0 0 0\n"), "femur", "a frame number"),
]


@pytest.mark.parametrize("label,mutate,needle,message", AMC_ERRORS, ids=[e[0] for e in AMC_ERRORS])
def test_amc_errors_name_file_and_line(tmp_path, chain, label, mutate, needle, message):
    text = mutate(amc_text([zero_frame(), zero_frame(), zero_frame()]))
    path = tmp_path / "bad.amc"
    path.write_text(text)
    lineno = next(i for i, line in enumerate(text.splitlines(), 1) if line.split() and
                  (line.strip() == needle or (len(needle) > 1 and needle in line)))
    with pytest.raises(DataFormatError, match=re.escape(f"{path}:{lineno}:") + ".*" + re.escape(message)):
        read_amc(path, chain)


def test_missing_files_and_empty_motion(tmp_path, chain):
    with pytest.raises(DataFormatError, match=re.escape(str(tmp_path / "nope.asf"))):
        read_asf(tmp_path / "nope.asf")
    with pytest.raises(DataFormatError, match=re.escape(str(tmp_path / "nope.amc"))):
        read_amc(tmp_path / "nope.amc", chain)
    (tmp_path / "empty.amc").write_text(":FULLY-SPECIFIED\n:DEGREES\n")
    with pytest.raises(DataFormatError, match="no frames"):
        read_amc(tmp_path / "empty.amc", chain)


def test_radian_asf_angles(tmp_path, chain):
    axis_rad = f"axis {math.radians(30)!r} 0 {math.radians(-40)!r} XYZ"
    asf = CHAIN_ASF.replace("angle deg", "angle rad").replace("axis 30 0 -40 XYZ", axis_rad)
    (tmp_path / "s.asf").write_text(asf)
    sk = read_asf(tmp_path / "s.asf")
    assert not sk.angles_in_degrees
    np.testing.assert_allclose(sk.axes[2], chain.axes[2], atol=1e-9)
    # with no :DEGREES/:RADIANS header the AMC follows the ASF's angle unit; values come back in degrees
    motion, _ = run_fk(tmp_path, sk, [zero_frame(tibia=[math.pi / 2])], header=":FULLY-SPECIFIED\n")
    assert motion.values["tibia"][0, 0] == pytest.approx(90.0)


def test_bones_without_dofs_may_be_listed_or_left_out(tmp_path, chain):
    frames = [zero_frame(), dict(zero_frame(), hip=[])]
    motion, pos = run_fk(tmp_path, chain, frames)
    assert motion.num_frames == 2
    np.testing.assert_allclose(pos[0], pos[1])


# ------------------------------------------------- SYNTHETIC CMU-like skeleton (not CMU data)
# CMU's 31 bone names and hierarchy, with directions and lengths made up for this test
# (plausible adult proportions in CMU's 1/0.45-inch units, Y up, +X to the subject's left).
# Columns: name, parent, direction, length, axis, dof.
SYNTHETIC_CMU = [
    ("lhipjoint", "root", (0.6, -0.75, 0.3), 2.4, (0, 0, 0), ""),
    ("lfemur", "lhipjoint", (0.1, -0.995, 0), 7.1, (0, 0, 6), "rx ry rz"),
    ("ltibia", "lfemur", (0.1, -0.995, 0), 7.2, (0, 0, 6), "rx"),
    ("lfoot", "ltibia", (0.1, -0.05, 0.99), 2.2, (-90, 7, 6), "rx rz"),
    ("ltoes", "lfoot", (0, 0, 1), 1.1, (-90, 7, 6), "rx"),
    ("rhipjoint", "root", (-0.6, -0.75, 0.3), 2.4, (0, 0, 0), ""),
    ("rfemur", "rhipjoint", (-0.1, -0.995, 0), 7.1, (0, 0, -6), "rx ry rz"),
    ("rtibia", "rfemur", (-0.1, -0.995, 0), 7.2, (0, 0, -6), "rx"),
    ("rfoot", "rtibia", (-0.1, -0.05, 0.99), 2.2, (-90, -7, -6), "rx rz"),
    ("rtoes", "rfoot", (0, 0, 1), 1.1, (-90, -7, -6), "rx"),
    ("lowerback", "root", (0, 1, -0.05), 2.1, (0, 0, 0), "rx ry rz"),
    ("upperback", "lowerback", (0, 1, 0.02), 2.1, (0, 0, 0), "rx ry rz"),
    ("thorax", "upperback", (0, 1, 0.03), 2.1, (0, 0, 0), "rx ry rz"),
    ("lowerneck", "thorax", (0, 1, -0.05), 1.6, (0, 0, 0), "rx ry rz"),
    ("upperneck", "lowerneck", (0, 1, 0.1), 1.6, (0, 0, 0), "rx ry rz"),
    ("head", "upperneck", (0, 1, 0.05), 1.6, (0, 0, 0), "rx ry rz"),
    ("lclavicle", "thorax", (0.9, 0.3, -0.05), 3.3, (0, 0, 0), "ry rz"),
    ("lhumerus", "lclavicle", (1, 0, 0), 5.1, (0, 0, 90), "rx ry rz"),
    ("lradius", "lhumerus", (1, 0, 0), 3.5, (0, 0, 90), "rx"),
    ("lwrist", "lradius", (1, 0, 0), 1.8, (0, 0, 90), "ry"),
    ("lhand", "lwrist", (1, 0, 0), 0.7, (0, 0, 90), "rx rz"),
    ("lfingers", "lhand", (1, 0, 0), 0.6, (0, 0, 90), "rx"),
    ("lthumb", "lwrist", (0.7, 0, 0.7), 0.7, (-90, 45, 90), "rx rz"),
    ("rclavicle", "thorax", (-0.9, 0.3, -0.05), 3.3, (0, 0, 0), "ry rz"),
    ("rhumerus", "rclavicle", (-1, 0, 0), 5.1, (0, 0, -90), "rx ry rz"),
    ("rradius", "rhumerus", (-1, 0, 0), 3.5, (0, 0, -90), "rx"),
    ("rwrist", "rradius", (-1, 0, 0), 1.8, (0, 0, -90), "ry"),
    ("rhand", "rwrist", (-1, 0, 0), 0.7, (0, 0, -90), "rx rz"),
    ("rfingers", "rhand", (-1, 0, 0), 0.6, (0, 0, -90), "rx"),
    ("rthumb", "rwrist", (-0.7, 0, 0.7), 0.7, (-90, -45, -90), "rx rz"),
]


def synthetic_cmu_asf() -> str:
    out = ["# SYNTHETIC fixture in the layout of a CMU ASF file; numbers invented for tests",
           ":version 1.10", ":name VICON", ":units", "  mass 1.0", "  length 0.45", "  angle deg",
           ":documentation", "   Synthetic skeleton for poselift tests", ":root", "   order TX TY TZ RX RY RZ",
           "   axis XYZ", "   position 0 0 0", "   orientation 0 0 0", ":bonedata"]
    for i, (name, _, d, length, axis, dof) in enumerate(SYNTHETIC_CMU, 1):
        out += ["  begin", f"     id {i}", f"     name {name}", "     direction {} {} {}".format(*d),
                f"     length {length}", "     axis {} {} {}  XYZ".format(*axis)]
        if dof:
            out.append(f"    dof {dof}")
            out += [("    limits" if j == 0 else "          ") + " (-180.0 180.0)" for j in range(len(dof.split()))]
        out.append("  end")
    children: dict[str, list[str]] = {}
    for name, parent, *_ in SYNTHETIC_CMU:
        children.setdefault(parent, []).append(name)
    out += [":hierarchy", "  begin"] + [f"    {p} {' '.join(c)}" for p, c in children.items()] + ["  end"]
    return "\n".join(out) + "\n"


def test_synthetic_cmu_skeleton_standing_pose(tmp_path):
    (tmp_path / "synthetic.asf").write_text(synthetic_cmu_asf())
    sk = read_asf(tmp_path / "synthetic.asf")
    assert len(sk.bone_names) == 31 and sk.bone_names[0] == "root"
    assert sk.length_unit_m == pytest.approx(0.056444, abs=5e-7)
    frame = {"root": [0, 17.5, 0, 0, 0, 0]}
    frame.update({name: [0.0] * len(dof.split()) for name, _, _, _, _, dof in SYNTHETIC_CMU if dof})
    # arms down from the rest T-pose: with axis 0 0 +-90 the humerus' local z is global z, so
    # rz = -70 swings the left arm (+x) down and rz = +70 the right arm (-x)
    frame["lhumerus"] = [0, 0, -70]
    frame["rhumerus"] = [0, 0, 70]
    path = tmp_path / "stand.amc"
    path.write_text(amc_text([frame] * 3))
    motion = read_amc(path, sk)
    pos = forward_kinematics(motion)
    assert pos.shape == (3, 31, 3)
    j = {name: i for i, name in enumerate(sk.bone_names)}
    y = pos[0, :, 1]
    assert y[j["head"]] > y[j["thorax"]] > y[j["root"]]
    for side in "lr":
        assert y[j[f"{side}toes"]] < y[j[f"{side}tibia"]] < y[j[f"{side}femur"]] < y[j["root"]]
        assert y[j[f"{side}fingers"]] < y[j[f"{side}clavicle"]]  # arms hang down
    assert pos[0, j["lhand"], 0] > 0 > pos[0, j["rhand"], 0]  # left is +x
    height = y[j["head"]] - min(y[j["ltoes"]], y[j["lfoot"]])
    assert 1.4 < height < 2.0, height
    assert abs(y[j["lfoot"]]) < 0.15  # root at 17.5 units (0.99 m) puts the feet near the floor
