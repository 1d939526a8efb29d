"""The vocabulary every part of sweep shares, in one place.

The names a run's parameters take (a name's index is the code the kernels
use), the limits on shapes, the lanes of a kernel tile, the layout of the
statistics the kernels return (the options every Numba function is
compiled with are in kernels/jit.py). `sweep.params`, the kernels, the reference and the GPU kernel
import these; adding a loss or a criterion touches this module, the kernels
and the reference, and nothing that merely lists names.

Numba compiles the constants below into the cached kernels: a change to a
layout here comes with a change to the kernels (which recompiles them).
"""
LOSSES = ("mse", "bce")
MSE, BCE = range(len(LOSSES))
LOSS_LABELS = {"mse": "MSE", "bce": "cross-entropy (BCE)"}

CRITERIA = ("margin", "loss")
BY_MARGIN, BY_LOSS = range(len(CRITERIA))

# The model family (codes = index, compiled into the kernels: see kernels/variant.py).
ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity")  # hidden units
SIGMOID, TANH, RELU, IDENTITY = range(len(ACTIVATIONS))
OUTPUTS = ("sigmoid", "identity")  # the output unit; codes are those of ACTIVATIONS
SCALINGS = ("standard", "ntk", "mean-field")
STANDARD, NTK, MEAN_FIELD = range(len(SCALINGS))
REDUCTIONS = ("sum", "mean")
SUM, MEAN = range(len(REDUCTIONS))

# Optimizers (kernels/optimizers.py gives their updates): compiled into the kernels, one per call.
OPTIMIZERS = ("gd", "nesterov", "adam", "adamw", "rmsprop")
GD, NESTEROV, ADAM, ADAMW, RMSPROP = range(len(OPTIMIZERS))
# The optimizers' per-lane values, rows of the kernels' (5, lanes) argument (decay_biases as 1 or 0).
OPT_ARGS = ("beta1", "beta2", "opt_eps", "weight_decay", "decay_biases")
A_BETA1, A_BETA2, A_EPS, A_WD, A_DECAY_BIASES = range(len(OPT_ARGS))

INIT_SCHEMES = ("normal", "uniform", "xavier", "numpy-legacy-normal", "numpy-legacy-uniform")
DTYPES = ("float64", "float32")

MAX_SAMPLES, MAX_INPUTS, MAX_HIDDEN = 1024, 64, 256

# Lanes a kernel thread trains together: 8 SIMD vectors of the widest (AVX-512) registers.
TILE_LANES = {"float64": 64, "float32": 128}

# A pre-activation counts as saturated beyond this |z|, by activation (sigmoid'(4) is 0.018, tanh'(2) 0.071);
# ReLU units die instead (z <= 0 on every sample) and identity units never saturate.
# Indexed by activation code; the entries of ReLU and identity are never used.
SATURATION_Z = (4.0, 2.0, 0.0, 0.0)

# The trainability score (kernels/trainability.py): loss ratios L_t / L_0 not finite or above RATIO_CAP count
# as RATIO_CAP, and the tail is the mean over the last TAIL_STATES states.
RATIO_CAP = 1e6
TAIL_STATES = 20

# The statistics a kernel returns per lane: rows of its float and integer output arrays.
# sat_hidden_* are NaN for ReLU hidden units, dead_hidden_* NaN for all others (null in the results).
# loss_ratio_* and trainability: the trainability score (kernels/trainability.py).
FLOAT_STATS = ("final_loss", "min_loss", "final_mse", "accuracy", "sat_hidden_start", "sat_output_start",
               "sat_hidden_end", "sat_output_end", "grad_norm", "dead_hidden_start", "dead_hidden_end",
               "loss_ratio_sum", "loss_ratio_tail", "trainability")
INT_STATS = ("epoch_converged", "converged", "epochs_run", "diverged", "epoch_diverged")
BOOL_STATS = ("converged", "diverged")  # integer rows that are flags
(F_FINAL_LOSS, F_MIN_LOSS, F_FINAL_MSE, F_ACCURACY, F_SAT_HIDDEN_START, F_SAT_OUTPUT_START, F_SAT_HIDDEN_END,
 F_SAT_OUTPUT_END, F_GRAD_NORM, F_DEAD_HIDDEN_START, F_DEAD_HIDDEN_END, F_LOSS_RATIO_SUM, F_LOSS_RATIO_TAIL,
 F_TRAINABILITY) = range(len(FLOAT_STATS))
I_EPOCH_CONVERGED, I_CONVERGED, I_EPOCHS_RUN, I_DIVERGED, I_EPOCH_DIVERGED = range(len(INT_STATS))
N_FLOAT_STATS, N_INT_STATS = len(FLOAT_STATS), len(INT_STATS)

# The curvature diagnostics a kernel compiled with them writes per lane (kernels/hessian.py; the columns they
# become are in kernels/batch.py's `TrainResult`): rows of its (len(DIAG_ROWS), lanes) float64 output, NaN
# where not computed. loss_init, loss_max and loss_rose (a later loss above the initial one, 1 or 0) give
# loss_peak_ratio and catapult.
DIAG_ROWS = ("sharpness_init", "sharpness_final", "sharpness_max", "epoch_sharpness_max", "steps_above_edge",
             "ntk_lambda0", "lr_lambda0", "loss_init", "loss_max", "loss_rose")
(D_SHARPNESS_INIT, D_SHARPNESS_FINAL, D_SHARPNESS_MAX, D_EPOCH_SHARPNESS_MAX, D_STEPS_ABOVE_EDGE, D_NTK_LAMBDA0,
 D_LR_LAMBDA0, D_LOSS_INIT, D_LOSS_MAX, D_LOSS_ROSE) = range(len(DIAG_ROWS))
N_DIAG_ROWS = len(DIAG_ROWS)
