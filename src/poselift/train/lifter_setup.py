"""Preparing a freshly built lifter for a training run: its starting weights, data normalisation, trained parameters.

The trainer calls these three in order after :func:`poselift.train.model_factory.lifter_from_config`:

- :func:`initialise_from`: ``train.init_from`` weights (a previous RIE stage, the
  lifter under a refiner, or a same-kind model to fine-tune);
- :func:`fit_normalization`: the FC baseline's z-scoring from the labelled data;
- :func:`optimizer_groups`: which parameters the optimiser sees (RIE stages, a
  refiner on a fixed lifter) and at which learning-rate scale.
"""

from __future__ import annotations

import numpy as np
import torch

from poselift.errors import ConfigError
from poselift.models.baseline import FCBaselineLifter
from poselift.models.refined import RefinedLifter
from poselift.models.registry import kind_of
from poselift.models.rie import STAGE_LR_SCALE, RIELifter, set_stage
from poselift.train.config import TrainConfig


def initialise_from(model: torch.nn.Module, path: str, stage: int | None) -> str:
    """Load ``path`` into ``model`` (or into a refined chain's first stage); returns a log line.

    For RIE stage 2 the decoders are re-initialised afterwards, as the reference's
    stage 2 keeps only the stage-1 encoders and starts fusion-aware decoders afresh.
    """
    from poselift.models.weights import load_model

    source, _, _ = load_model(path)
    target, what = model, "the model"
    if isinstance(model, RefinedLifter) and kind_of(source) != "refined":
        target, what = model.lifter, "the refiner's first-stage lifter"
    if kind_of(source) != kind_of(target):
        raise ConfigError(f"train.init_from: {path} holds a {kind_of(source)} lifter, {what} is a {kind_of(target)}")
    try:
        target.load_state_dict(source.state_dict())
    except RuntimeError as exc:
        raise ConfigError(f"train.init_from: {path} does not match this model config: "
                          f"{str(exc).splitlines()[0]}") from None
    if stage == 2:
        target.reset_decoders()
    return f"initialised {what} from {path}" + (" (decoders reset for stage 2)" if stage == 2 else "")


def fit_normalization(model: torch.nn.Module, inputs_2d: list[np.ndarray], targets_3d: list[np.ndarray]) -> None:
    """Set an FC baseline's (or a chain's FC first stage's) z-scoring from (T, J, 2) / root-relative (T, J, 3) data.

    Other kinds are left as they are (Martinez et al. normalise; the others' reference code does not).
    """
    lifter = model.lifter if isinstance(model, RefinedLifter) else model
    if isinstance(lifter, FCBaselineLifter):
        lifter.set_normalization(torch.from_numpy(np.concatenate(inputs_2d)),
                                 torch.from_numpy(np.concatenate(targets_3d)))


def optimizer_groups(model: torch.nn.Module, train: TrainConfig) -> tuple[list[dict], float]:
    """Optimizer parameter groups (each with an ``lr_scale``) and the run's learning-rate scale.

    Sets ``requires_grad`` (and RIE's fusion switch) as the stage or the frozen
    first stage requires.
    """
    if isinstance(model, RIELifter) and train.stage is not None:
        return set_stage(model, train.stage), STAGE_LR_SCALE[train.stage]
    if isinstance(model, RefinedLifter) and train.freeze_lifter:
        model.freeze_lifter(True)
        return [{"name": "refiner", "params": list(model.refiner.parameters()), "lr_scale": 1.0}], 1.0
    return [{"name": "lifter", "params": list(model.parameters()), "lr_scale": 1.0}], 1.0
