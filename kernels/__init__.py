"""Pure numerics: train batches of tiny sigmoid networks (arrays in, arrays out).

`train` runs the Numba kernels; `kernels.reference.train_reference` is the
plain NumPy ground truth they are tested against. `kernels.cuda.train_cuda`
runs the same training on an NVIDIA GPU (optional: numba-cuda). The
vocabulary shared with `sweep` is in `kernels.vocab`. Importing the package
is cheap: Numba is imported when `train` or its neighbours are first used.
"""
from kernels.vocab import CRITERIA, LOSSES

__all__ = ["train", "warm_up", "TrainResult", "checkpoint_epochs", "LOSSES", "CRITERIA"]


def __getattr__(name):
    if name in ("train", "warm_up", "TrainResult", "checkpoint_epochs"):
        from kernels import batch

        return getattr(batch, name)
    raise AttributeError(f"module 'kernels' has no attribute {name!r}")
