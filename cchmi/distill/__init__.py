"""The reference cross-modal KD trainer and experiment runner (needs torch).

* :func:`run_kd`: one teacher view -> student view configuration, end to end (trainer.py);
* :func:`run_experiment`: sweeps from a config, resumable, parallel (experiment.py);
* :mod:`cchmi.distill.report`: aggregation over seeds, agreement of verdict and gain, plots.
"""

from cchmi._extras import require

require("torch", "torch", "the KD trainer cchmi.distill")

from cchmi.distill.pairing import PAIRINGS, pairing_index, random_pairing  # noqa: E402
from cchmi.distill.trainer import (  # noqa: E402
    CONTROLS,
    PREDICTORS,
    TEACHER_ROWS,
    SplitConfig,
    TrainConfig,
    run_kd,
)

__all__ = ["run_kd", "TrainConfig", "SplitConfig", "pairing_index", "random_pairing", "PAIRINGS", "CONTROLS",
           "TEACHER_ROWS", "PREDICTORS"]
