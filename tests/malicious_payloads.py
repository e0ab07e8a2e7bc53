"""Objects whose pickles run code when loaded: used to prove poselift's loaders refuse them."""

import builtins
import os


class CustomPayload:
    """An arbitrary user class: must not be unpickled from a checkpoint."""

    def __init__(self):
        self.value = 42


class SystemPayload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


class EvalPayload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (builtins.eval, (f"open({str(self.marker)!r}, 'w').close() or {{}}",))
