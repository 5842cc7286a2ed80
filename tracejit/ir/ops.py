"""The op table. Importing this module declares every op (each in one ``ops_*`` file).

``OPS`` maps an op's name to its OpDef; the UPPER names are the ops themselves.
"""

from __future__ import annotations

from .opdef import OPS, OpDef, Tag, get_op  # noqa: F401
from .ops_autodiff import *  # noqa: F401,F403
from .ops_control import *  # noqa: F401,F403
from .ops_creation import *  # noqa: F401,F403
from .ops_cumulative import *  # noqa: F401,F403
from .ops_elementwise import *  # noqa: F401,F403
from .ops_host import *  # noqa: F401,F403
from .ops_kernel import *  # noqa: F401,F403
from .ops_linalg import *  # noqa: F401,F403
from .ops_movement import *  # noqa: F401,F403
from .ops_nn import *  # noqa: F401,F403
from .ops_random import *  # noqa: F401,F403
from .ops_reduce import *  # noqa: F401,F403
from .ops_scatter import *  # noqa: F401,F403
from .ops_sort import *  # noqa: F401,F403
