"""`train_cuda`: `kernels.batch.train` on an NVIDIA GPU, one thread per network.

Same arguments (the model family and the per-layer learning rates included; but
`threads`/`tile`, which are the CPU's), same validation
(`kernels.batch.prepare`, shared), same `TrainResult`, final weights written
back into the given arrays. The kernel and its design are in
`kernels.cuda_kernel`; results agree with the CPU kernels to rounding, not
bitwise (CUDA's exp and tanh and fused multiply-adds; see there).

numba-cuda is an optional dependency (`pip install numba-cuda`): this
module imports it only when asked. `cuda_available()` says whether a GPU can
be used and, if not, why; `train_cuda` raises `CudaUnavailableError` with that
one-line reason. With NUMBA_ENABLE_CUDASIM=1 (set before numba.cuda is first
imported) the same kernel runs in numba's CUDA simulator, on the CPU, in
Python threads: slow, for tests.
"""
import importlib.util

from kernels.batch import prepare

INSTALL_HINT = "pip install numba-cuda"
DEFAULT_THREADS_PER_BLOCK = 128
DIAGNOSTICS_ON_CPU = ("diagnostics are computed by the CPU kernels only (the Hessian's eigenvalues of every state "
                      "take LAPACK, which a GPU thread does not have): train these runs on the CPU")


class CudaUnavailableError(RuntimeError):
    """No usable CUDA GPU: numba-cuda is missing, or no driver or device was found."""


def _one_line(message):
    return " ".join(str(message).split()).rstrip(" :")


def _numba_cuda():
    """The numba.cuda module of numba-cuda, or CudaUnavailableError."""
    if importlib.util.find_spec("numba_cuda") is None:
        raise CudaUnavailableError(f"numba-cuda is not installed ({INSTALL_HINT})")
    try:
        from numba import cuda
    except ImportError as exc:  # e.g. the CUDA Python bindings are missing
        raise CudaUnavailableError(f"numba-cuda cannot be imported: {_one_line(exc)} ({INSTALL_HINT})") from None
    return cuda


def simulated():
    """True when numba.cuda is the CUDA simulator (NUMBA_ENABLE_CUDASIM=1)."""
    try:
        from numba.cuda.core import config  # numba-cuda's own configuration
    except ImportError:
        from numba.core import config
    return bool(config.ENABLE_CUDASIM)


def cuda_available():
    """(True, what will run the kernels) or (False, why not), in one line each."""
    try:
        cuda = _numba_cuda()
    except CudaUnavailableError as exc:
        return False, str(exc)
    if simulated():
        return True, "CUDA simulator (NUMBA_ENABLE_CUDASIM=1): the kernels run in Python on the CPU"
    try:
        device = cuda.get_current_device()
        name = device.name.decode() if isinstance(device.name, bytes) else str(device.name)
        major, minor = device.compute_capability
    except Exception as exc:  # CudaSupportError (no driver), CudaDriverError (no device), ...
        return False, f"no usable CUDA GPU: {_one_line(exc)}"
    return True, f"{name} (compute capability {major}.{minor})"


def train_cuda(X, Y, W1, b1, W2, b2, epochs, *, lr=None, lr_hidden=None, lr_output=None, loss="mse", bce_eps=1e-8,
               momentum=0.0, criterion="margin", margin=0.4, tol=0.01, early_stop=False, checkpoints=10,
               activation="sigmoid", output="sigmoid", bias=True, scaling="standard", reduction="sum",
               optimizer="gd", beta1=0.9, beta2=0.999, opt_eps=1e-8, weight_decay=0.0, decay_biases=False,
               batch_size=0, shuffle=False, shuffle_seed=0, diagnostics=False, outputs=True, threads_per_block=None,
               timings=None):
    """Train L networks of shape D-H-1 on the GPU: `kernels.batch.train`'s arguments (the model
    family -- activation, output, bias, scaling, reduction -- and the learning rates lr or
    lr_hidden and lr_output included), validation, results and in-place update of W1, b1, W2, b2
    (b1 and b2 may be None with bias=False).

    The update scheme too, with the same meaning as for `train` (kernels.reference gives the
    math): optimizer ('gd' with `momentum` as heavy ball, 'nesterov', 'adam', 'adamw',
    'rmsprop': torch.optim's forms), batch_size (0: the whole data set per update; k:
    minibatches of k) and shuffle (each epoch's samples in the order drawn from the lane's
    `shuffle_seed`) for every lane; per lane beta1, beta2 (RMSprop's alpha), opt_eps,
    weight_decay (L2 in the gradient, decoupled for 'adamw'), decay_biases and shuffle_seed.
    The defaults are the notebooks' full-batch gradient descent, whose kernel is unchanged.
    diagnostics=True is refused (ValueError): the curvature diagnostics are the CPU kernels'.

    outputs=False: no outputs per sample, as for `train` (nor their copy from the device).
    `threads_per_block` (default 128) changes speed, never results. `timings`, if
    a dict, receives the seconds spent copying to the device ('h2d'), training
    ('kernel') and copying back ('d2h'). Arguments are validated first, so bad
    ones raise the same TypeError/ValueError as `train` on any machine; then a
    missing GPU raises `CudaUnavailableError`. The first call for a new shape, dtype,
    model variant, update scheme (optimizer, batch_size, shuffle), switch (momentum, BCE, weight
    decay) or -- for a data set small enough for constant memory -- data set compiles a kernel
    (a second or two).
    Calls from several threads are safe; they take turns on the GPU.
    """
    batch = prepare(X, Y, W1, b1, W2, b2, epochs, lr=lr, lr_hidden=lr_hidden, lr_output=lr_output, loss=loss,
                    bce_eps=bce_eps, momentum=momentum, criterion=criterion, margin=margin, tol=tol,
                    early_stop=early_stop, checkpoints=checkpoints, activation=activation, output=output, bias=bias,
                    scaling=scaling, reduction=reduction, optimizer=optimizer, beta1=beta1, beta2=beta2,
                    opt_eps=opt_eps, weight_decay=weight_decay, decay_biases=decay_biases, batch_size=batch_size,
                    shuffle=shuffle, shuffle_seed=shuffle_seed, diagnostics=diagnostics)
    if batch.variant.diagnostics:
        raise ValueError(DIAGNOSTICS_ON_CPU)
    if threads_per_block is None:
        threads_per_block = DEFAULT_THREADS_PER_BLOCK
    threads_per_block = int(threads_per_block)
    if not 1 <= threads_per_block <= 1024:
        raise ValueError(f"threads_per_block must be in 1..1024; got {threads_per_block}")
    ok, reason = cuda_available()
    if not ok:
        raise CudaUnavailableError(f"cannot train on the GPU: {reason}")
    from kernels import cuda_kernel
    return cuda_kernel.run(batch, W1, batch.b1, W2, batch.b2, threads_per_block, timings, simulator=simulated(),
                           outputs=outputs)
