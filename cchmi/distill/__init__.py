"""The reference cross-modal KD trainer and experiment runner (needs torch).

* :func:`run_kd`: one teacher view -> student view run, end to end, from a :class:`KDConfig`
  (trainer.py; its layers: config, rows, training, predictors, summary);
* :func:`cchmi.distill.sweep.run_experiment`: sweeps from a TOML config, resumable, parallel;
* :mod:`cchmi.distill.report`: aggregation over seeds, agreement of verdict and gain, plots.
"""

from cchmi._extras import require

require("torch", "torch", "the KD trainer cchmi.distill")

from cchmi.distill.config import (  # noqa: E402
    CONTROLS,
    PAIRINGS,
    TEACHER_ROWS,
    Budget,
    CCHSettings,
    KDConfig,
    KDOptions,
    SplitConfig,
    TrainConfig,
)
from cchmi.distill.rows import pairing_index, random_pairing  # noqa: E402
from cchmi.distill.summary import PREDICTORS, RunSummary  # noqa: E402
from cchmi.distill.trainer import run_kd  # noqa: E402

__all__ = ["run_kd", "KDConfig", "TrainConfig", "SplitConfig", "Budget", "KDOptions", "CCHSettings", "RunSummary",
           "pairing_index", "random_pairing", "PAIRINGS", "CONTROLS", "TEACHER_ROWS", "PREDICTORS"]
