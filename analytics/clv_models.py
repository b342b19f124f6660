"""The CLV models under their original module name (see ``analytics.clv``).

Everything lives in the ``analytics.clv`` package now; this module re-exports it so that
``from analytics.clv_models import BetaGeoModel`` keeps working.
"""
from analytics.clv import *  # noqa: F401,F403
from analytics.clv import __all__  # noqa: F401
