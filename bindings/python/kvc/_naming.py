"""How kvc names the Python classes of the header's status codes.

Shared by kvc/__init__.py (which makes the classes at import from the
KVC_ERR_* constants of the SWIG module) and gen_stub.py (which writes their
type stubs from capi/kvc.h at build time), so the two cannot disagree.
"""

import builtins

PREFIX = "KVC_ERR_"

# Built-in exceptions a code's class also derives from, so that generic
# handlers (``except KeyError``) work. Codes not listed derive from Error only.
ALSO = {
    "INVALID_ARGUMENT": (ValueError,),
    "NOT_FOUND": (KeyError,),
    "TIMEOUT": (builtins.TimeoutError,),
    "LAYOUT": (ValueError,),
    "NO_MEMORY": (MemoryError,),
    "UNSUPPORTED": (NotImplementedError,),
    "PARSE": (ValueError,),
    "PERMISSION": (builtins.PermissionError,),
}


def class_name(symbol: str) -> str:
    """``KVC_ERR_NO_SPACE`` -> ``NoSpaceError``."""
    return "".join(w.capitalize() for w in symbol[len(PREFIX):].split("_")) + "Error"


def also(symbol: str) -> tuple:
    """The built-in bases of the class of ``symbol``."""
    return ALSO.get(symbol[len(PREFIX):], ())


# kvc_namespace_options fields a node request leaves unset (capi/kvc.h): the
# tenant and credential are the connection's (kvc_node_options), the salt
# comes from the node's tenants file, TTLs and the write mode are the node's.
# Node.namespace refuses them; its stub does not list them.
NODE_NAMESPACE_UNSET = ("tenant", "credential", "salt", "default_ttl_ms", "write_mode")
