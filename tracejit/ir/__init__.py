"""The IR: dtypes, Graph/Var/Eqn, the op table, printer, parser, verifier and the
reference interpreter. Imports nothing else of tracejit."""

from . import dtypes, ops  # noqa: F401
from .builder import GraphBuilder  # noqa: F401
from .const_value import ConstValue  # noqa: F401
from .core import Eqn, Graph, Params, TensorType, Var, VarMeta  # noqa: F401
from .interpret import interpret  # noqa: F401
from .opdef import OPS, OpDef, Tag, get_op  # noqa: F401
