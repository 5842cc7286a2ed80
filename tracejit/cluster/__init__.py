"""The cluster runtime: tasks of a ClusterSpec serving their devices and variables over
ZeroMQ, and sessions that place graphs over them (docs/distributed.md).

>>> from tracejit.cluster import ClusterSpec
>>> ClusterSpec({"ps": ["127.0.0.1:2222"], "worker": ["127.0.0.1:2223"]}).jobs
['ps', 'worker']
"""

from .remote import RemoteError  # noqa: F401
from .resolve import ClusterInfo, resolve  # noqa: F401
from .security import Keys, generate_keys  # noqa: F401
from .server import Server, free_port  # noqa: F401
from .session import connect  # noqa: F401
from .spec import ClusterError, ClusterSpec, split_target  # noqa: F401
