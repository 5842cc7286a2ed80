"""TensorFlow 1.x's graph API on tracejit: ``import tracejit.compat.v1 as tf``.

>>> import tracejit.compat.v1 as tf
>>> with tf.Graph().as_default():
...     x = tf.placeholder(tf.float32, shape=[None])
...     y = x * 2.0 + 1.0
...     with tf.Session() as sess:
...         sess.run(y, {x: [1.0, 2.0]}).tolist()
[3.0, 5.0]
"""

import sys as _sys
import types as _types

from ...initializers import Constant as constant_initializer  # noqa: F401
from ...initializers import GlorotNormal as glorot_normal_initializer  # noqa: F401
from ...initializers import GlorotUniform as glorot_uniform_initializer  # noqa: F401
from ...initializers import Ones as ones_initializer  # noqa: F401
from ...initializers import RandomNormal as random_normal_initializer  # noqa: F401
from ...initializers import RandomUniform as random_uniform_initializer  # noqa: F401
from ...initializers import TruncatedNormal as truncated_normal_initializer  # noqa: F401
from ...initializers import VarianceScaling as variance_scaling_initializer  # noqa: F401
from ...initializers import Zeros as zeros_initializer  # noqa: F401
from ...ir.dtypes import (  # noqa: F401
    DType,
    as_dtype,
    bfloat16,
    bool_,
    float16,
    float32,
    float64,
    int8,
    int32,
    int64,
    uint8,
)
from ...runtime.devices import DeviceSpec  # noqa: F401
from . import (  # noqa: F401
    contrib,
    data,
    errors,
    graph_util,
    io,
    layer_classes,
    layers,
    losses,
    metrics,
    nn,
    python_io,
    sparse_namespace,  # noqa: F401
    strings_namespace,  # noqa: F401
    summary,
    train,
)
from . import math_namespace as math  # noqa: F401
from .clip_ops import (  # noqa: F401
    clip_by_average_norm,
    clip_by_global_norm,
    clip_by_norm,
    global_norm,
)
from .config import ConfigProto, GPUOptions, GraphOptions, RunMetadata, RunOptions  # noqa: F401
from .control_flow import case, cond, switch_case, while_loop  # noqa: F401
from .default_session import get_default_session  # noqa: F401
from .errors import OpError  # noqa: F401
from .file_ops import matching_files, read_file, write_file  # noqa: F401
from .functional import foldl, foldr, map_fn, scan  # noqa: F401
from .gradient_override import NotDifferentiable, RegisterGradient, no_gradient  # noqa: F401
from .graph import (  # noqa: F401
    Graph,
    Operation,
    Tensor,
    get_default_graph,
    reset_default_graph,
)
from .graph_export import export_graph_def  # noqa: F401  (also Graph.as_graph_def)
from .graph_import import import_graph_def  # noqa: F401
from .lookup_ops import lookup_namespace as lookup  # noqa: F401
from .lookup_ops import tables_initializer  # noqa: F401
from .meta_graph_messages import AttrValue, GraphDef, MetaGraphDef, NodeDef  # noqa: F401
from .ops import (  # noqa: F401
    constant,
    convert_to_tensor,
    dropout,
    gradients,
    group,
    no_op,
    ops,
    placeholder,
    placeholder_with_default,
    random_normal,
    random_uniform,
    set_random_seed,
    truncated_normal,
    tuple_,
)
from .parse_example import (  # noqa: F401
    FixedLenFeature,
    FixedLenSequenceFeature,
    VarLenFeature,
    parse_example,
    parse_single_example,
)
from .parsing import decode_compressed, decode_csv, decode_raw, string_to_number  # noqa: F401
from .partitioned import (  # noqa: F401
    fixed_size_partitioner,
    min_max_variable_partitioner,
    variable_axis_size_partitioner,
)
from .printing import Print, print_v2  # noqa: F401
from .py_funcs import numpy_function, py_func  # noqa: F401
from .queues import (  # noqa: F401
    FIFOQueue,
    PaddingFIFOQueue,
    PriorityQueue,
    QueueBase,
    RandomShuffleQueue,
)
from .readers import (  # noqa: F401
    FixedLengthRecordReader,
    IdentityReader,
    ReaderBase,
    TextLineReader,
    TFRecordReader,
    WholeFileReader,
)
from .rnn import reverse_sequence, sequence_mask  # noqa: F401
from .session import (  # noqa: F401
    FailedPreconditionError,
    InteractiveSession,
    InvalidArgumentError,
    Session,
)
from .shapes import Dimension, TensorShape  # noqa: F401
from .sort_ops import argsort, cumprod, cumsum, sort  # noqa: F401
from .sparse import SparseTensor, SparseTensorValue, sparse_tensor_to_dense  # noqa: F401
from .sparse_ops import (  # noqa: F401
    sparse_add,
    sparse_placeholder,
    sparse_reduce_sum,
    sparse_tensor_dense_matmul,
    sparse_to_dense,
)
from .string_ops import (  # noqa: F401
    as_string,
    string_join,
    string_split,
    string_to_hash_bucket_fast,
    substr,
)
from .strings import string  # noqa: F401
from .tensor_array import TensorArray  # noqa: F401
from .variable_scope import (  # noqa: F401
    AUTO_REUSE,
    VariableScope,
    get_variable,
    get_variable_scope,
    variable_scope,
)
from .variables import (  # noqa: F401
    GraphKeys,
    Variable,
    all_variables,
    assign,
    assign_add,
    assign_sub,
    global_variables,
    global_variables_initializer,
    initialize_all_variables,
    is_variable_initialized,
    local_variables,
    local_variables_initializer,
    report_uninitialized_variables,
    trainable_variables,
    variables_initializer,
)

globals().update(ops)
# tf.layers: the functions of layers.py and the classes (and newer functions) of
# layer_classes.py, which builds on layers.py and so cannot be imported by it
for _name in layer_classes.__all__:
    setattr(layers, _name, getattr(layer_classes, _name))
from .embeddings import IndexedSlices, IndexedSlicesValue, gather  # noqa: E402,F401

# TF1 code writes its own values as ``tf.Summary(value=[tf.Summary.Value(...)])``
Summary, Event, SessionLog = summary.Summary, summary.Event, summary.SessionLog
bool = bool_  # noqa: A001
# NOTE: the namespaces, not the submodules of the same names (strings.py: the dtype)
strings = strings_namespace
sparse = sparse_namespace
print = print_v2  # noqa: A001 - tf.print
tuple = tuple_  # noqa: A001


moving_average_variables = train.moving_average_variables


def name_scope(name, default_name=None, values=None):
    return get_default_graph().name_scope(name or default_name)


def control_dependencies(control_inputs):
    return get_default_graph().control_dependencies(control_inputs)


def device(device_name_or_function):
    return get_default_graph().device(device_name_or_function)


def colocate_with(op, ignore_existing=False):
    return get_default_graph().colocate_with(op, ignore_existing)


def get_collection(key, scope=None):
    return get_default_graph().get_collection(key, scope)


def add_to_collection(name, value):
    get_default_graph().add_to_collection(name, value)



# TF1 code written against TensorFlow 1.15+/2.x spells names ``tf.compat.v1.X``; with
# ``import tracejit.compat.v1 as tf`` that is this module itself.
compat = _types.SimpleNamespace(v1=_sys.modules[__name__])
