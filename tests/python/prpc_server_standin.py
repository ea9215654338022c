"""A server on Redis that behaves as PRPC's server does, as the capture and its source show.

PRPC itself is on none of the registries CI reaches, so this stand-in rebuilds
its behaviour on the wire (tests/fixtures/prpc-python/): it reads one entry at
a time (`XREADGROUP ... COUNT 1`) from `prpc_{queue}` and `prpc_raw_{queue}` in
the group `prpc_group_consumers`; before each read it re-claims entries of the
group idle longer than the recover interval (`XCLAIM`, which counts a delivery);
while it holds an entry it re-claims it every heartbeat interval (`XCLAIM`
again); it decodes native entries with jsonpickle into a `PRPCMessage`, raw ones
with `json`, and leaves an entry it cannot decode pending (never acknowledged,
its heartbeat running); it stores each result at `prpc_feedback_{queue}_{id}`
(raw: `prpc_feedback_raw_...`) and never publishes; then it acknowledges.

Usage: python3 prpc_server_standin.py REDIS_URL QUEUE HEARTBEAT_SEC RECOVER_SEC
Prints "ready" once it reads; stops when its standard input closes. Every
execution increments the Redis key `prpc_standin_runs_{queue}`.
"""

import datetime
import json
import sys
import threading
import uuid

import jsonpickle
import redis

from prpc_message import PRPCMessage

GROUP = "prpc_group_consumers"


def add(a, b):
    return {"sum": a + b, "by": "python"}


def pair(a, b):
    return (a, b)


def fail(msg):
    raise ValueError(msg)


FUNCTIONS = {"add": add, "pair": pair, "fail": fail}


class Heartbeat:
    def __init__(self, connection, stream, entry_id, interval):
        self._stop = threading.Event()

        def beat():
            while not self._stop.wait(interval):
                connection.xclaim(stream, GROUP, CONSUMER, int(interval * 1000), [entry_id])

        threading.Thread(target=beat, daemon=True).start()

    def stop(self):
        self._stop.set()


def recover(connection, streams, recover_sec, heartbeat_sec):
    for stream in streams:
        for pending in connection.xpending_range(stream, GROUP, "-", "+", 1000):
            claimed = connection.xclaim(stream, GROUP, CONSUMER, int(recover_sec * 1000),
                                        [pending["message_id"]])
            if claimed:
                entry_id, fields = claimed[0]
                return stream, entry_id, fields, Heartbeat(connection, stream, entry_id, heartbeat_sec)
    return None


def read(connection, streams, heartbeat_sec):
    reply = connection.xreadgroup(GROUP, CONSUMER, {s: ">" for s in streams}, count=1, block=200)
    for stream, entries in reply or []:
        for entry_id, fields in entries:
            return stream, entry_id, fields, Heartbeat(connection, stream, entry_id, heartbeat_sec)
    return None


def serve(connection, queue, heartbeat_sec, recover_sec, stopped):
    native, raw = f"prpc_{queue}", f"prpc_raw_{queue}"
    for stream in (native, raw):
        try:
            connection.xgroup_create(stream, GROUP, id="$", mkstream=True)
        except redis.ResponseError as err:
            if "BUSYGROUP" not in str(err):
                raise
    print("ready", flush=True)
    while not stopped.is_set():
        taken = recover(connection, (native, raw), recover_sec, heartbeat_sec) or \
            read(connection, (native, raw), heartbeat_sec)
        if taken is None:
            continue
        stream, entry_id, fields, heartbeat = taken
        stream = stream.decode() if isinstance(stream, bytes) else stream
        text = fields.get(b"message", b"").decode()
        try:
            if stream == native:
                message = jsonpickle.loads(text)
                if not isinstance(message, PRPCMessage):
                    raise TypeError("not a PRPCMessage")
                # PRPC's worker logs the message it took, and its __str__ asks is_message_done():
                # a message without date_done_message kills that worker there.
                message.is_message_done()
            else:
                data = json.loads(text)
                message = PRPCMessage(data["func_name"], data.get("func_args") or [],
                                      data.get("func_kwargs") or {}, uuid.UUID(data["message_id"]))
        except Exception as err:  # as PRPC: logged, never acknowledged, heartbeat left running
            print(f"cannot read {entry_id}: {err}", file=sys.stderr, flush=True)
            continue
        connection.incr(f"prpc_standin_runs_{queue}")
        try:
            message.result = FUNCTIONS[message.func_name](*message.func_args, **message.func_kwargs)
        except Exception as err:
            message.exception_info = str(err)
        message.date_done_message = datetime.datetime.now(datetime.timezone.utc)
        if stream == native:
            key, body = f"prpc_feedback_{queue}_{message.message_id}", jsonpickle.dumps(message)
        else:
            key = f"prpc_feedback_raw_{queue}_{message.message_id}"
            body = jsonpickle.dumps(message, unpicklable=False)
        connection.set(key, body, ex=21600)
        connection.xack(stream, GROUP, entry_id)
        heartbeat.stop()


CONSUMER = f"{uuid.uuid4()}_0"


def main():
    url, queue = sys.argv[1], sys.argv[2]
    heartbeat_sec, recover_sec = float(sys.argv[3]), float(sys.argv[4])
    stopped = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stopped.set()), daemon=True).start()
    serve(redis.Redis.from_url(url), queue, heartbeat_sec, recover_sec, stopped)


if __name__ == "__main__":
    main()
