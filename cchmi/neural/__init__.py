"""Neural MI estimators (torch): variational bounds with learned critics, and latent MI.

* :func:`neural_mi` / :class:`NeuralMI`: InfoNCE, NWJ, MINE (DV), SMILE, JS with separable, bilinear
  or joint critics; fused Triton kernels for separable critics on GPUs (estimator.py);
* :func:`latent_mi`: KSG on learned low-dimensional embeddings (latent.py);
* :func:`diffusion_mi` / :class:`DiffusionMI`: half the integrated gap between a conditional and an
  unconditional denoiser (diffusion.py);
* :mod:`cchmi.neural.bounds`: the bounds from a score matrix (the torch references);
* :mod:`cchmi.neural.rowstats`: the bounds of separable critics from row statistics (one batch, or
  a rank's rows of a process group's global batch with ``gather_negatives``);
* :mod:`cchmi.neural.gather`: the torch.distributed pieces of gathered negatives
  (``neural_mi(..., gather_negatives=True)``).
"""

from cchmi._extras import require

# first, so that a missing torch is an ImportError naming the extra to install
require("torch", "torch", "cchmi.neural (neural_mi, NeuralMI, latent_mi, cch(estimator='latent'))")

from cchmi.neural.bounds import BOUNDS
from cchmi.neural.critics import CRITICS
from cchmi.neural.diffusion import DiffusionMI, DiffusionMIResult, diffusion_mi
from cchmi.neural.estimator import NeuralMI, neural_mi
from cchmi.neural.latent import latent_mi

__all__ = ["neural_mi", "NeuralMI", "latent_mi", "BOUNDS", "CRITICS"]
__all__ += ["diffusion_mi", "DiffusionMI", "DiffusionMIResult"]
