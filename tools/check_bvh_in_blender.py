"""Import a poselift BVH with Blender's own importer and compare the joints with poselift's reading of it.

Run with a Python that has Blender as a module (``pip install "bpy>=4.1,<4.3"``, Python 3.11;
not a poselift dependency) and poselift importable:

    python tools/check_bvh_in_blender.py out/poses3d.bvh

Blender imports the BVH (Y up, metres, ``axis_forward=-Z``, ``axis_up=Y``), the pose bones' heads
are read back in Blender's Z-up world at every frame and compared with
:func:`poselift.data.bvh.forward_kinematics` of the same file, mapped (x, y, z) -> (x, -z, y).
"""

from __future__ import annotations

import sys

import bpy
import numpy as np

from poselift.data.bvh import forward_kinematics, read_bvh


def main(path: str) -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.ops.import_anim.bvh(filepath=path, axis_forward="-Z", axis_up="Y", global_scale=1.0,
                            use_fps_scale=False, update_scene_fps=True, update_scene_duration=True)
    arm = next(o for o in bpy.context.scene.objects if o.type == "ARMATURE")
    motion = read_bvh(path)
    names = list(motion.skeleton.joint_names)
    bones = [pb.name for pb in arm.pose.bones]
    fk = forward_kinematics(motion)[:, [names.index(n) for n in bones]]
    expected = np.stack([fk[..., 0], -fk[..., 2], fk[..., 1]], axis=-1)
    scene = bpy.context.scene
    heads = []
    for f in range(motion.num_frames):
        scene.frame_set(scene.frame_start + f)
        heads.append([list(arm.matrix_world @ pb.head) for pb in arm.pose.bones])
    err = np.linalg.norm(np.asarray(heads) - expected, axis=-1)
    print(f"Blender {bpy.app.version_string}: {len(bones)} bones, {motion.num_frames} frames at "
          f"{scene.render.fps / scene.render.fps_base:.2f} fps; joints vs poselift's reading: "
          f"max {err.max() * 1000:.4f} mm, mean {err.mean() * 1000:.4f} mm")


if __name__ == "__main__":
    main(sys.argv[1])
