"""TensorFlow's graph messages under their ``tf.*`` names (``tf.GraphDef()``,
``graph_def.ParseFromString(...)`` in frozen-model loaders): the classes the
``tensorboard`` package generates from TensorFlow's ``.proto`` files."""

from tensorboard.compat.proto.attr_value_pb2 import AttrValue
from tensorboard.compat.proto.graph_pb2 import GraphDef
from tensorboard.compat.proto.meta_graph_pb2 import MetaGraphDef
from tensorboard.compat.proto.node_def_pb2 import NodeDef

__all__ = ["AttrValue", "GraphDef", "MetaGraphDef", "NodeDef"]
