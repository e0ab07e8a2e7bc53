"""VideoPose3D dataset files (poselift.data.vp3d_format) and the restricted .npz reader (safe_npz)."""

from __future__ import annotations

import io
import pickle
import zipfile

import numpy as np
import pytest

from poselift.data.safe_npz import load_npz
from poselift.data.vp3d_format import (
    load_positions_2d,
    load_positions_3d,
    metadata_for,
    save_positions_2d,
    save_positions_3d,
)
from poselift.errors import DataFormatError
from poselift.geometry.published_cameras import published_cameras
from poselift.skeleton import COCO_17, H36M_17
from malicious_payloads import EvalPayload, SystemPayload


def _pos3d(seed=0):
    rng = np.random.default_rng(seed)
    return {
        "S1": {"Walking 1": rng.normal(size=(12, 32, 3)), "Directions": rng.normal(size=(5, 32, 3))},
        "S5": {"Eating": rng.normal(size=(7, 32, 3))},
    }


def _pos2d(seed=0, j=17, c=2):
    rng = np.random.default_rng(seed)
    return {
        "S1": {"Walking 1": [rng.uniform(0, 1000, size=(12, j, c)) for _ in range(4)]},
        "S9": {"Sitting": [rng.uniform(0, 1000, size=(3, j, c)) for _ in range(2)]},
    }


# --------------------------------------------------------------------------- round trips


def test_3d_round_trip(tmp_path):
    pos = _pos3d()
    path = save_positions_3d(tmp_path / "data_3d_h36m.npz", pos)
    assert path.exists()
    assert not list(tmp_path.glob("*.tmp"))  # atomic write left nothing behind
    back, cams = load_positions_3d(path)
    assert cams is None
    assert set(back) == {"S1", "S5"} and set(back["S1"]) == {"Walking 1", "Directions"}
    for s in pos:
        for a in pos[s]:
            assert back[s][a].dtype == np.float32
            np.testing.assert_array_equal(back[s][a], pos[s][a].astype(np.float32))


def test_3d_round_trip_with_cameras(tmp_path):
    cams = {"S1": published_cameras("h36m")["S1"][:2]}
    path = save_positions_3d(tmp_path / "d3.npz", {"S1": {"a": np.zeros((2, 17, 3))}}, cameras=cams)
    _, back = load_positions_3d(path)
    assert set(back) == {"S1"} and len(back["S1"]) == 2
    for c0, c1 in zip(cams["S1"], back["S1"]):
        assert c0.id == c1.id and (c0.res_w, c0.res_h) == (c1.res_w, c1.res_h)
        np.testing.assert_array_equal(c0.intrinsic_vector(), c1.intrinsic_vector())
        np.testing.assert_array_equal(c0.orientation, c1.orientation)
        np.testing.assert_array_equal(c0.translation, c1.translation)


def test_2d_round_trip_with_video_metadata(tmp_path):
    pos = _pos2d(c=3)
    vm = {"clip.mp4": {"w": 1920, "h": 1080}}
    path = save_positions_2d(tmp_path / "data_2d_custom_myvids.npz", pos, COCO_17, video_metadata=vm)
    back, meta = load_positions_2d(path)
    assert meta["layout_name"] == "coco" and meta["num_joints"] == 17
    assert meta["keypoints_symmetry"] == [list(COCO_17.joints_left), list(COCO_17.joints_right)]
    assert meta["video_metadata"] == vm
    assert set(back) == {"S1", "S9"}
    assert len(back["S1"]["Walking 1"]) == 4 and len(back["S9"]["Sitting"]) == 2
    for s in pos:
        for a in pos[s]:
            for c0, c1 in zip(pos[s][a], back[s][a]):
                assert c1.dtype == np.float32
                np.testing.assert_array_equal(c1, c0.astype(np.float32))
    assert metadata_for(H36M_17) == {"layout_name": "h36m", "num_joints": 17,
                                     "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}


def test_reference_written_files_load(tmp_path):
    """Files written the way VideoPose3D's prepare_data_*.py scripts write them."""
    rng = np.random.default_rng(1)
    positions_3d = {"S1": {"Walking": rng.normal(size=(9, 32, 3)).astype("float32")}}
    p3 = tmp_path / "data_3d_h36m.npz"
    np.savez_compressed(p3, positions_3d=positions_3d)
    back3, cams = load_positions_3d(p3)
    np.testing.assert_array_equal(back3["S1"]["Walking"], positions_3d["S1"]["Walking"])
    assert cams is None

    metadata = {"num_joints": 17, "keypoints_symmetry": [[4, 5, 6, 11, 12, 13], [1, 2, 3, 14, 15, 16]]}
    positions_2d = {"S1": {"Walking": [rng.uniform(0, 1000, size=(9, 17, 2)).astype("float32") for _ in range(4)]}}
    p2 = tmp_path / "data_2d_h36m_cpn_ft_h36m_dbb.npz"
    np.savez_compressed(p2, positions_2d=positions_2d, metadata=metadata)
    back2, meta = load_positions_2d(p2)
    assert meta["num_joints"] == 17
    assert meta["keypoints_symmetry"] == metadata["keypoints_symmetry"]
    for c0, c1 in zip(positions_2d["S1"]["Walking"], back2["S1"]["Walking"]):
        np.testing.assert_array_equal(c0, c1)

    # the custom (in-the-wild) format: layout_name, video_metadata, numpy-int symmetry arrays
    meta_c = {"layout_name": "coco", "num_joints": 17,
              "keypoints_symmetry": [np.array([1, 3, 5, 7, 9, 11, 13, 15]), np.array([2, 4, 6, 8, 10, 12, 14, 16])],
              "video_metadata": {"v.mp4": {"w": 640, "h": 480}}}
    out = {"v.mp4": {"custom": [rng.uniform(0, 640, size=(5, 17, 2)).astype("float32")]}}
    pc = tmp_path / "data_2d_custom_x.npz"
    np.savez_compressed(pc, positions_2d=out, metadata=meta_c)
    backc, metac = load_positions_2d(pc)
    assert metac["keypoints_symmetry"] == [[1, 3, 5, 7, 9, 11, 13, 15], [2, 4, 6, 8, 10, 12, 14, 16]]
    assert metac["video_metadata"] == {"v.mp4": {"w": 640, "h": 480}}
    np.testing.assert_array_equal(backc["v.mp4"]["custom"][0], out["v.mp4"]["custom"][0])


def test_load_npz_plain_arrays_match_numpy(tmp_path):
    rng = np.random.default_rng(2)
    arrays = {"a": rng.normal(size=(3, 4)), "b": np.arange(10, dtype=np.int16),
              "c": np.asfortranarray(rng.normal(size=(5, 6)).astype(np.float32)), "d": np.float64(3.5)}
    p = tmp_path / "plain.npz"
    np.savez(p, **arrays)
    out = load_npz(p)
    ref = np.load(p)
    assert set(out) == set(arrays)
    for k in arrays:
        np.testing.assert_array_equal(out[k], ref[k])
        assert out[k].dtype == ref[k].dtype and out[k].shape == ref[k].shape


# --------------------------------------------------------------------------- malformed files


def _savez(path, **entries):
    np.savez_compressed(path, **entries)
    return path


def test_missing_keys(tmp_path):
    p = _savez(tmp_path / "x3.npz", something=np.zeros(3))
    with pytest.raises(DataFormatError, match="x3.npz") as ei:
        load_positions_3d(p)
    assert "positions_3d" in str(ei.value)
    p = _savez(tmp_path / "x2.npz", positions_2d={"S1": {}})
    with pytest.raises(DataFormatError, match="x2.npz") as ei:
        load_positions_2d(p)
    assert "metadata" in str(ei.value)
    p = _savez(tmp_path / "x2b.npz", positions_2d={"S1": {}}, metadata={"num_joints": 17})
    with pytest.raises(DataFormatError, match="x2b.npz") as ei:
        load_positions_2d(p)
    assert "keypoints_symmetry" in str(ei.value)
    p = _savez(tmp_path / "x3b.npz", positions_3d=np.zeros((2, 17, 3)))
    with pytest.raises(DataFormatError, match="x3b.npz"):
        load_positions_3d(p)


def test_wrong_ndim(tmp_path):
    p = _savez(tmp_path / "nd3.npz", positions_3d={"S1": {"a": np.zeros((17, 3))}})
    with pytest.raises(DataFormatError, match="nd3.npz"):
        load_positions_3d(p)
    meta = metadata_for(H36M_17)
    p = _savez(tmp_path / "nd2.npz", positions_2d={"S1": {"a": [np.zeros((2, 5, 17, 2))]}}, metadata=meta)
    with pytest.raises(DataFormatError, match="nd2.npz"):
        load_positions_2d(p)
    p = _savez(tmp_path / "str.npz", positions_3d={"S1": {"a": "not an array"}})
    with pytest.raises(DataFormatError, match="str.npz"):
        load_positions_3d(p)


def test_wrong_coordinate_count(tmp_path):
    p = _savez(tmp_path / "c3.npz", positions_3d={"S1": {"a": np.zeros((4, 17, 2))}})
    with pytest.raises(DataFormatError, match="c3.npz"):
        load_positions_3d(p)
    meta = metadata_for(H36M_17)
    p = _savez(tmp_path / "c2.npz", positions_2d={"S1": {"a": [np.zeros((4, 17, 4))]}}, metadata=meta)
    with pytest.raises(DataFormatError, match="c2.npz"):
        load_positions_2d(p)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("coord", [0, 1])
def test_nan_in_keypoints(tmp_path, bad, coord):
    arr = np.zeros((6, 17, 2))
    arr[3, 5, coord] = bad
    p = _savez(tmp_path / "nan2.npz", positions_2d={"S1": {"a": [np.zeros((6, 17, 2)), arr]}},
               metadata=metadata_for(H36M_17))
    with pytest.raises(DataFormatError, match="nan2.npz") as ei:
        load_positions_2d(p)
    assert "frame 3" in str(ei.value) and "joint 5" in str(ei.value)


@pytest.mark.parametrize("coord", [0, 1, 2])
def test_nan_in_3d_positions(tmp_path, coord):
    arr = np.zeros((6, 17, 3))
    arr[2, 4, coord] = np.nan
    p = _savez(tmp_path / "nan3.npz", positions_3d={"S1": {"a": arr}})
    with pytest.raises(DataFormatError, match="nan3.npz") as ei:
        load_positions_3d(p)
    assert "frame 2" in str(ei.value) and "joint 4" in str(ei.value)


def test_joint_count_differs_from_metadata(tmp_path):
    p = _savez(tmp_path / "jc.npz", positions_2d={"S1": {"a": [np.zeros((6, 16, 2))]}},
               metadata=metadata_for(H36M_17))
    with pytest.raises(DataFormatError, match="jc.npz") as ei:
        load_positions_2d(p)
    assert "16" in str(ei.value) and "17" in str(ei.value)
    # and inconsistent joint counts inside a 3D file
    p = _savez(tmp_path / "jc3.npz", positions_3d={"S1": {"a": np.zeros((2, 17, 3)), "b": np.zeros((2, 32, 3))}})
    with pytest.raises(DataFormatError, match="jc3.npz"):
        load_positions_3d(p)


def test_non_zip_and_missing_file(tmp_path):
    p = tmp_path / "text.npz"
    p.write_text("hello, I am not a zip archive\n" * 5)
    with pytest.raises(DataFormatError, match="text.npz"):
        load_positions_3d(p)
    with pytest.raises(DataFormatError, match="text.npz"):
        load_positions_2d(p)
    with pytest.raises(DataFormatError, match="absent.npz"):
        load_positions_3d(tmp_path / "absent.npz")
    # a plain .npy (not an archive) is refused too
    q = tmp_path / "plain.npz"
    np.save(q.with_suffix(".npy"), np.zeros(3))
    q.with_suffix(".npy").rename(q)
    with pytest.raises(DataFormatError, match="plain.npz"):
        load_npz(q)


# --------------------------------------------------------------------------- malicious files




def _npy_object_bytes(payload, wrap: bool = True) -> bytes:
    """A .npy file by hand: object-dtype header then a raw pickle, as NumPy writes object arrays
    (the pickle of a 0-d object array holding ``payload``; ``wrap=False``: of ``payload`` itself)."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": ()})
    if wrap:
        holder = np.empty((), dtype=object)
        holder[()] = payload
        payload = holder
    pickle.dump(payload, buf, protocol=3)
    return buf.getvalue()


def _write_npz(path, members: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name + ".npy", data)
    return path


def test_hand_built_npz_format_is_what_numpy_reads(tmp_path):
    # sanity check of the hand-built format with a harmless payload
    p = _write_npz(tmp_path / "ok.npz", {"positions_3d": _npy_object_bytes({"S1": {"a": np.ones((2, 17, 3))}})})
    ref = np.load(p, allow_pickle=True)["positions_3d"].item()
    np.testing.assert_array_equal(ref["S1"]["a"], np.ones((2, 17, 3)))
    back, _ = load_positions_3d(p)
    np.testing.assert_array_equal(back["S1"]["a"], np.ones((2, 17, 3)))


@pytest.mark.parametrize("kind", ["system", "eval"])
@pytest.mark.parametrize("loader", ["3d", "2d", "npz"])
def test_dangerous_pickle_is_refused_and_not_executed(tmp_path, kind, loader):
    marker = tmp_path / "pwned"
    payload = SystemPayload(marker) if kind == "system" else EvalPayload(marker)
    entry = "positions_3d" if loader == "3d" else "positions_2d"
    members = {entry: _npy_object_bytes({"S1": {"a": payload}})}
    if loader == "2d":
        buf = io.BytesIO()
        np.save(buf, np.array(metadata_for(H36M_17), dtype=object), allow_pickle=True)
        members["metadata"] = buf.getvalue()
    p = _write_npz(tmp_path / f"evil_{kind}_{loader}.npz", members)
    assert not marker.exists()
    fn = {"3d": load_positions_3d, "2d": load_positions_2d, "npz": load_npz}[loader]
    with pytest.raises(DataFormatError, match=f"evil_{kind}_{loader}.npz") as ei:
        fn(p)
    assert ("system" in str(ei.value)) or ("eval" in str(ei.value))
    assert not marker.exists()


def test_top_level_dangerous_pickle(tmp_path):
    marker = tmp_path / "pwned"
    p = _write_npz(tmp_path / "evil_top.npz", {"positions_3d": _npy_object_bytes(SystemPayload(marker), wrap=False)})
    with pytest.raises(DataFormatError, match="evil_top.npz"):
        load_positions_3d(p)
    assert not marker.exists()


def test_legacy_numpy1_pickles_with_scalars_load(tmp_path):
    """Files written by NumPy 1.x name ``numpy.core.multiarray`` (VideoPose3D's era); scalars included."""
    meta = {"layout_name": "coco", "num_joints": np.int64(17),
            "keypoints_symmetry": [[1, 3, 5, 7, 9, 11, 13, 15], [2, 4, 6, 8, 10, 12, 14, 16]],
            "video_metadata": {"v.mp4": {"w": np.int64(640), "h": np.float64(480.0)}}}
    pos = {"v.mp4": {"custom": [np.full((3, 17, 2), 7.5, dtype=np.float32)]}}
    # whichever NumPy runs the test, write both spellings: NumPy 1.x's and NumPy 2's module path
    for spelling in (b"numpy.core.multiarray", b"numpy._core.multiarray"):
        members = {}
        for name, obj in (("positions_2d", pos), ("metadata", meta)):
            raw = _npy_object_bytes(obj)
            assert b"numpy._core.multiarray" in raw or b"numpy.core.multiarray" in raw
            members[name] = raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray").replace(
                b"numpy.core.multiarray", spelling)
        p = _write_npz(tmp_path / "legacy.npz", members)
        back, m = load_positions_2d(p)
        assert m["num_joints"] == 17
        assert m["video_metadata"]["v.mp4"]["w"] == 640 and m["video_metadata"]["v.mp4"]["h"] == 480.0
        np.testing.assert_array_equal(back["v.mp4"]["custom"][0], pos["v.mp4"]["custom"][0])
