"""A Python caller of a prpc server that does what PRPC's own client does.

PRPC itself is on none of the registries CI reaches, so this stand-in rebuilds
only what PRPC's client does on the wire (see tests/fixtures/prpc-python/): a
`prpc.prpcmessage.PRPCMessage` object encoded with Debian's jsonpickle and added
to `prpc_{queue}`, then `GET` and `DEL` of `prpc_feedback_{queue}_{uuid}` until
the result is there, decoded with `jsonpickle.loads` into a `PRPCMessage`.
It also pastes `get_function_server`'s list into Python signatures the way
PRPC's stub generator does, and compiles them.

Usage: python3 prpc_client_standin.py REDIS_URL QUEUE [mixed N]
Prints one JSON line of what it saw; exits non-zero on any mismatch. With
`mixed N`, it sends N calls `add(i, 1000)` at once, then reads their results
(for a queue served by several servers) and prints them in order.
"""

import datetime
import json
import sys
import time

import jsonpickle
import redis

from prpc_message import PRPCMessage


def call(connection, queue, func_name, args=(), kwargs=None, timeout=10.0):
    # As PRPC's client: its message validates func_args as a list or tuple before sending.
    if not isinstance(args, (list, tuple)):
        raise AssertionError(f"{func_name}: PRPC's client refuses func_args {args!r}")
    message = PRPCMessage(func_name, args, kwargs or {})
    connection.xadd(f"prpc_{queue}", {"message": jsonpickle.dumps(message)})
    key = f"prpc_feedback_{queue}_{message.message_id}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = connection.get(key)
        if text is not None:
            connection.delete(key)
            done = jsonpickle.loads(text)
            if not isinstance(done, PRPCMessage):
                raise AssertionError(f"{func_name}: decoded a {type(done)}, not a PRPCMessage")
            if done.message_id != message.message_id:
                raise AssertionError(f"{func_name}: answered {done.message_id}")
            # What PRPC's AwaitableTask.time_execution computes.
            elapsed = done.date_done_message - done.date_create_message
            if not datetime.timedelta(0) <= elapsed < datetime.timedelta(seconds=timeout):
                raise AssertionError(f"{func_name}: took {elapsed}")
            return done
        time.sleep(0.01)
    raise AssertionError(f"{func_name}: no result within {timeout} s")


def stub(listed):
    """A function as PRPC's stub generator writes it from get_function_server."""
    params = []
    for param in listed["func_args"] + listed["func_kwargs"]:
        text = param["name"]
        if "default" in param:
            text += f"={param['default']}"
        params.append(text)
    args = ", ".join(p["name"] for p in listed["func_args"])
    kwargs = ", ".join(f"'{p['name']}': {p['name']}" for p in listed["func_kwargs"])
    return (f"def {listed['func_name']}({', '.join(params)}):\n"
            f"\treturn AwaitableTask('{listed['func_name']}', ({args}), {{{kwargs}}})")


def mixed(connection, queue, count, timeout=20.0):
    messages = [PRPCMessage("add", (i, 1000), {}) for i in range(count)]
    for message in messages:
        connection.xadd(f"prpc_{queue}", {"message": jsonpickle.dumps(message)})
    results = {}
    deadline = time.monotonic() + timeout
    while len(results) < count and time.monotonic() < deadline:
        for message in messages:
            if message.message_id in results:
                continue
            text = connection.get(f"prpc_feedback_{queue}_{message.message_id}")
            if text is not None:
                done = jsonpickle.loads(text)
                if not isinstance(done, PRPCMessage):
                    raise AssertionError(f"decoded a {type(done)}, not a PRPCMessage")
                results[message.message_id] = done.result
        time.sleep(0.02)
    print(json.dumps([results.get(m.message_id) for m in messages]))


def main():
    url, queue = sys.argv[1], sys.argv[2]
    connection = redis.Redis.from_url(url, decode_responses=True)
    if len(sys.argv) > 4 and sys.argv[3] == "mixed":
        mixed(connection, queue, int(sys.argv[4]))
        return
    seen = {}
    seen["ping"] = call(connection, queue, "ping").result
    seen["summ_tuple"] = call(connection, queue, "summ", (1, 2), {"z": 3}).result
    seen["summ_list"] = call(connection, queue, "summ", [1, 2], {"z": 3}).result
    seen["greet"] = call(connection, queue, "greet", ("Ada",), {}).result
    when = datetime.datetime(2026, 12, 5, 11, 38, 36, 961162, tzinfo=datetime.timezone.utc)
    seen["echo_date"] = call(connection, queue, "echo", (when,)).result
    seen["echo_unicode"] = call(connection, queue, "echo", ({"ключ": ["é", "😀", None, True]},)).result
    failed = call(connection, queue, "fail", ("boom",))
    seen["fail"] = [failed.result, failed.exception_info]
    seen["unknown"] = call(connection, queue, "no_such_function").exception_info
    listed = call(connection, queue, "get_function_server").result
    # The stubs, compiled, call the server (with its defaults) as PRPC's would.
    namespace = {"AwaitableTask": lambda name, args, kwargs: call(connection, queue, name, args, kwargs).result}
    for entry in listed:
        exec(compile(stub(entry), "<stub>", "exec"), namespace)
    seen["stub_greet"] = namespace["greet"]("Ada")
    seen["stub_summ"] = namespace["summ"](1, 2)
    seen["stub_echo"] = namespace["echo"]({"a": 1})
    print(json.dumps(seen, ensure_ascii=False))


if __name__ == "__main__":
    main()
