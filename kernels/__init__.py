"""Pure numerics: train batches of tiny sigmoid networks (arrays in, arrays out).

`train` runs the Numba kernels; `kernels.reference.train_reference` is the
plain NumPy ground truth they are tested against. `kernels.cuda.train_cuda`
runs the same training on an NVIDIA GPU (optional: numba-cuda); it is not
imported here, so that importing `kernels` never imports numba.cuda.
"""
from kernels.batch import CRITERIA, LOSSES, TrainResult, checkpoint_epochs, train, warm_up

__all__ = ["train", "warm_up", "TrainResult", "checkpoint_epochs", "LOSSES", "CRITERIA"]
