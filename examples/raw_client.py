"""Calls a prpc server from Python through the raw protocol, with redis-py only.

Run `deno task example:redis-server` in one terminal, then
`python3 examples/raw_client.py` (Debian: `apt-get install python3-redis`).
PRPC_URL_BROKER and PRPC_QUEUE_NAME are read as the server reads them.
"""

import json
import os
import time
import uuid
from datetime import datetime, timezone

import redis

QUEUE = os.environ.get("PRPC_QUEUE_NAME", "task_prpc")
connection = redis.Redis.from_url(os.environ.get("PRPC_URL_BROKER", "redis://localhost:6379/0"))


def call(func_name, args=(), kwargs=None, timeout=10.0):
    """Adds the request to prpc_raw_{queue}, then reads its result key until it is there."""
    message_id = str(uuid.uuid4())
    request = {
        "func_name": func_name,
        "func_args": list(args),
        "func_kwargs": kwargs or {},
        "message_id": message_id,
        "date_create_message": datetime.now(timezone.utc).isoformat(),
    }
    connection.xadd(f"prpc_raw_{QUEUE}", {"message": json.dumps(request)})
    key = f"prpc_feedback_raw_{QUEUE}_{message_id}"
    give_up_at = time.monotonic() + timeout
    while time.monotonic() < give_up_at:
        body = connection.get(key)
        if body is not None:
            result = json.loads(body)
            if result["exception_info"] is not None:
                raise RuntimeError(result["exception_info"])
            return result["result"]
        time.sleep(0.02)
    raise TimeoutError(f"no result from {func_name} within {timeout} s")


print(call("summ", [1, 2]))  # 3.5
print(call("summ", [1, 2], {"z": 3}))  # 6
try:
    call("summ", [1])
except RuntimeError as error:
    print(error)  # ArgumentError: summ() missing required argument "b" ...
