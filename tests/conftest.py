import os

# The CUDA tests (tests/test_cuda.py) run in numba's CUDA simulator unless told otherwise:
# it must be chosen before numba.cuda is first imported, hence here, at import time.
# On a GPU machine, NUMBA_ENABLE_CUDASIM=0 runs the same tests on the device.
os.environ.setdefault("NUMBA_ENABLE_CUDASIM", "1")

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")
