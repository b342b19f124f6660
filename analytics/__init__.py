"""Valuescope analytics: the library behind the app and the CLI (never imports streamlit).

OpenMP threads (used by LightGBM and by torch on the CPU) busy-wait between
parallel regions by default. On a small shared machine (2 cores, a Streamlit
server, other jobs) that spinning made fits 5-100x slower in wall time than
one thread; passive waiting removes the penalty and costs nothing measurable
when the machine is idle. The policy is read when the OpenMP runtime loads
(the first import of torch or lightgbm), so it is set here, when the package
is first imported; a value the user already set is left alone. (Set in
``analytics.predict`` before, it came too late whenever torch was imported
first: a LightGBM fit in the test suite took 118 s instead of 9 s.)
"""
import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
