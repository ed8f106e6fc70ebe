"""Between hubs, a clinic page never shows an older waiting-room list after a newer one."""

from __future__ import annotations

import anyio

from porchlight.hub.signalling import ROOM_VERSION_KEY, _Connection


def test_an_older_list_arriving_late_is_dropped_and_the_version_never_reaches_the_page():
    conn = _Connection(websocket=None)  # type: ignore[arg-type]  (sending only queues)
    lists = [
        {"type": "waiting_room", "patients": ["fresh"], ROOM_VERSION_KEY: 7},
        {"type": "waiting_room", "patients": ["stale"], ROOM_VERSION_KEY: 6},
        {"type": "waiting_room", "patients": ["same version, later"], ROOM_VERSION_KEY: 7},
        {"type": "offer", "sdp": "v=0"},  # other messages are not versioned
        {"type": "waiting_room", "patients": ["newer"], ROOM_VERSION_KEY: 9},
    ]
    for message in lists:
        conn.send(message)
    sent = []
    while True:
        try:
            sent.append(conn._incoming.receive_nowait())
        except anyio.WouldBlock:
            break
    assert [m.get("patients", m["type"]) for m in sent] == [
        ["fresh"],
        ["same version, later"],
        "offer",
        ["newer"],
    ]
    assert all(ROOM_VERSION_KEY not in m for m in sent)
    # The bus hands one dict to every subscriber: it is not changed.
    assert ROOM_VERSION_KEY in lists[0]
