"""An HTTP/2 client (the `h2` package) that asks for event streams and never opens
their flow-control window: SETTINGS_INITIAL_WINDOW_SIZE is 0 and no WINDOW_UPDATE is
ever sent, so the server can send headers but no data. It answers pings and settings
(the h2 package does) and reads until every stream is closed.

    h2_zero_window.py HOST PORT CONNECTIONS PATH...

The paths are spread over CONNECTIONS connections. One line per happening, flushed:
`open SID PATH STATUS` when a response's headers arrive, `data SID PATH N` if data
ever arrives (it cannot), `reset SID PATH` / `ended SID PATH` when a stream closes,
`closed CONN` when the server closes a connection, and last `all-closed` (or
`timeout` after 120 s).
"""

import select
import socket
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.settings


def main():
    host, port, nconn = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    paths = sys.argv[4:]
    conns = []
    for _ in range(nconn):
        sock = socket.create_connection((host, port), timeout=30)
        conn = h2.connection.H2Connection(
            config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8")
        )
        conn.local_settings = h2.settings.Settings(
            client=True,
            initial_values={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0},
        )
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        conns.append({"sock": sock, "conn": conn, "streams": {}})
    for i, path in enumerate(paths):
        c = conns[i % nconn]
        sid = c["conn"].get_next_available_stream_id()
        c["conn"].send_headers(
            sid,
            [
                (":method", "GET"),
                (":path", path),
                (":scheme", "http"),
                (":authority", f"{host}:{port}"),
            ],
            end_stream=True,
        )
        c["streams"][sid] = path
        c["sock"].sendall(c["conn"].data_to_send())

    deadline = time.monotonic() + 120
    live = [c for c in conns if c["streams"]]
    while live and time.monotonic() < deadline:
        readable, _, _ = select.select([c["sock"] for c in live], [], [], 1.0)
        for c in live:
            if c["sock"] not in readable:
                continue
            data = c["sock"].recv(65536)
            if not data:
                print(f"closed {conns.index(c)}", flush=True)
                c["streams"].clear()
                continue
            for ev in c["conn"].receive_data(data):
                sid = getattr(ev, "stream_id", None)
                path = c["streams"].get(sid)
                if isinstance(ev, h2.events.ResponseReceived):
                    status = dict(ev.headers)[":status"]
                    print(f"open {sid} {path} {status}", flush=True)
                elif isinstance(ev, h2.events.DataReceived):
                    print(f"data {sid} {path} {len(ev.data)}", flush=True)
                elif isinstance(ev, h2.events.StreamReset):
                    print(f"reset {sid} {path}", flush=True)
                    c["streams"].pop(sid, None)
                elif isinstance(ev, h2.events.StreamEnded):
                    print(f"ended {sid} {path}", flush=True)
                    c["streams"].pop(sid, None)
            out = c["conn"].data_to_send()
            if out:
                c["sock"].sendall(out)
        live = [c for c in conns if c["streams"]]
    print("all-closed" if not live else "timeout", flush=True)


if __name__ == "__main__":
    main()
