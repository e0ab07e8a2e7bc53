"""Turn a finished training run into a shipped pretrained model (weights + model card).

    python tools/publish_pretrained.py --run runs/cmu_open_h36m_rf81 --name cmu_h36m_rf81 \
        --input-layout h36m --data-dir data/cmu --eval-keypoints gt --heldout-noise gt \
        --description "..." --training-command "..."

Metrics come from evaluating the run's model on the CMU-open test subjects for each
``--eval-keypoints`` source; the held-out check is measured on ``--heldout-clips``
with :func:`poselift.pretrained.registry.evaluate_heldout`, exactly as the test suite
re-measures it.
"""

from __future__ import annotations

import argparse
import datetime
import tempfile
from pathlib import Path

from poselift.data.dataset import load_dataset, resolve_dataset_paths
from poselift.models.registry import is_causal
from poselift.models.weights import load_model
from poselift.pretrained.registry import evaluate_heldout, read_card, save_pretrained
from poselift.train.evaluation import evaluate_sequences

TEST_SUBJECTS = ["131", "79"]
WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "src" / "poselift" / "pretrained" / "weights"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True, type=Path)
    ap.add_argument("--name", required=True)
    ap.add_argument("--input-layout", required=True, choices=["h36m", "coco"])
    ap.add_argument("--data-dir", required=True, type=Path)
    ap.add_argument("--eval-keypoints", nargs="+", required=True, help="e.g. gt, or coco_noisy coco_gt")
    ap.add_argument("--heldout-noise", required=True, choices=["gt", "noisy"])
    ap.add_argument("--heldout-clips", nargs="+", default=["cmu-131/131_02.bvh", "cmu-mb/79_08.bvh"])
    ap.add_argument("--shared-data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    ap.add_argument("--weights-dir", type=Path, default=WEIGHTS_DIR)
    ap.add_argument("--description", required=True)
    ap.add_argument("--training-command", required=True)
    ap.add_argument("--training-2d", help="what the 2D training input was, for the card "
                                          "(default: data_2d_cmu_<first --eval-keypoints>.npz)")
    args = ap.parse_args()

    model, _, meta = load_model(args.run / "model.safetensors")
    metrics = {}
    for kp in args.eval_keypoints:
        path_2d, path_3d = resolve_dataset_paths(args.data_dir, "cmu", kp)
        dataset = load_dataset(path_2d, path_3d)
        report = evaluate_sequences(model, dataset.select(TEST_SUBJECTS), dataset, causal=is_causal(model))
        protocol = "cmu_open_gt" if kp in ("gt", "coco_gt") else "cmu_open_noisy"
        metrics[protocol] = {k: round(getattr(report.mean, k), 2) for k in ("mpjpe", "p_mpjpe", "n_mpjpe", "mpjve")}
        print(args.name, kp, metrics[protocol])
    fields = dict(
        description=args.description, input_layout=args.input_layout,
        training_data=("CMU-open train split (docs/cmu_open.md): CMU subjects 1, 2, 3, 5, 6, 7, 9, 16, 64, 74, 75, "
                       f"90, 143, 50 fps, 4 virtual cameras per subject; 2D: "
                       f"{args.training_2d or f'data_2d_cmu_{args.eval_keypoints[0]}.npz'}; "
                       f"{meta.get('epochs')} epochs"),
        training_command=args.training_command, metrics=metrics,
        license="weights: MIT (poselift); trained on CMU Graphics Lab motion capture (mocap.cs.cmu.edu, free for all uses, not for resale)",
        created=datetime.date.today().isoformat(), heldout_clips=args.heldout_clips, heldout_noise=args.heldout_noise,
        heldout_check={"mpjpe": 1e9, "margin": 0.05},  # placeholder for the draft card; measured below
        epochs=meta.get("epochs"),
        keypoints_symmetry=meta.get("keypoints_symmetry"), test_subjects=TEST_SUBJECTS,
    )
    with tempfile.TemporaryDirectory() as tmp:
        draft = save_pretrained(model, args.name, Path(tmp), **fields)
        heldout = evaluate_heldout(draft, args.shared_data, Path(tmp) / "heldout", model=model)
    fields["heldout_check"] = {"mpjpe": round(heldout.mean.mpjpe, 2), "margin": 0.05}
    card = save_pretrained(model, args.name, args.weights_dir, **fields)
    print(f"held-out P1 {heldout.mean.mpjpe:.2f} mm on {args.heldout_clips}")
    print(f"wrote {card.path} ({card.path.stat().st_size / 1e6:.1f} MB) and {card.card_path}")
    read_card(card.card_path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
