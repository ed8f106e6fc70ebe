"""A real hub on 127.0.0.1 with the demo's people and patient, and a second care team."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
import requests

from porchlight.hub import auth
from porchlight.hub.config import HubConfig
from porchlight.hub.seed import DEMO_PASSWORD, DemoSeed, seed_demo
from porchlight.hub.server import HubServer
from porchlight.hub.store import Role

OTHER_CLINICIAN = "clin_other"


@dataclass
class Hub:
    server: HubServer
    seed: DemoSeed
    other_team: str

    @property
    def url(self) -> str:
        return self.server.url

    def session(self, username: str) -> requests.Session:
        s = requests.Session()
        reply = s.post(
            f"{self.url}/api/login",
            json={"username": username, "password": DEMO_PASSWORD},
            timeout=10,
        )
        assert reply.status_code == 200, reply.text
        return s


@pytest.fixture
def hub(tmp_path) -> Iterator[Hub]:
    config = HubConfig(data_dir=tmp_path / "hub", host="127.0.0.1", port=0)
    with HubServer(config, port=0) as server:
        store = server.store
        assert store is not None
        seed = seed_demo(store)
        now = datetime.now(UTC)
        other = store.add_team("Far team", now=now).id
        store.add_person(
            OTHER_CLINICIAN,
            "Dr Other Team",
            Role.CLINICIAN,
            auth.hash_password(DEMO_PASSWORD),
            now=now,
            teams=[other],
        )
        yield Hub(server, seed, other)
