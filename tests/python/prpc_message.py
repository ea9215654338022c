"""The stand-ins' `PRPCMessage`: the fields PRPC's message carries, under PRPC's class name.

Importing this module registers it as `prpc.prpcmessage`, so jsonpickle writes and
restores `{"py/object": "prpc.prpcmessage.PRPCMessage", ...}` as PRPC itself does.
"""

import datetime
import sys
import types
import uuid


class PRPCMessage:
    """A call and, once done, its outcome."""

    def __init__(self, func_name, func_args, func_kwargs, message_id=None):
        self.func_name = func_name
        self.func_args = func_args
        self.func_kwargs = func_kwargs
        self.message_id = uuid.uuid4() if message_id is None else message_id
        self.date_create_message = datetime.datetime.now(datetime.timezone.utc)
        self.result = None
        self.exception_info = None
        self.date_done_message = None

    def is_message_done(self):
        return self.date_done_message is not None


_package = types.ModuleType("prpc")
_module = types.ModuleType("prpc.prpcmessage")
PRPCMessage.__module__ = "prpc.prpcmessage"
_module.PRPCMessage = PRPCMessage
_package.prpcmessage = _module
sys.modules["prpc"] = _package
sys.modules["prpc.prpcmessage"] = _module
