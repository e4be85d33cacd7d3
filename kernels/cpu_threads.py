"""Thread settings for the Numba CPU kernels; imported first by every kernel module here.

The conv kernels alternate Numba parallel loops (OpenMP threads) with OpenBLAS sgemm calls
(OpenBLAS's own threads) on the same 2 cores. GNU OpenMP's default wait policy spins its idle
workers for a long time after each parallel region, so they steal the cores from OpenBLAS and the
two pools take turns spinning: measured 10–30× slow-downs on the blocked conv versions
(e.g. Winograd 64→64 at 256²: 6 GFLOP/s spinning, 58 GFLOP/s passive). A passive wait policy
makes idle OpenMP workers sleep. setdefault: a user's own OMP_WAIT_POLICY wins. It must be set
before Numba starts its OpenMP pool (the first parallel call), which importing a kernel module
before running one guarantees.
"""
import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
