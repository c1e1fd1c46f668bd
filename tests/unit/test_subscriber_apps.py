"""history and recommendations request handling with a store that lives in memory or is down."""

from __future__ import annotations

import pytest

import history
import recommendations
from tests.fakes import MemoryStore

ENV = {"DBHOST": "mongodb://127.0.0.1:1", "VIEWED_MESSAGING": "http"}


def history_client(store: MemoryStore):
    return history.create_app(ENV, views=store).test_client()  # type: ignore[arg-type]


def test_a_view_is_stored_once_per_view_id() -> None:
    store = MemoryStore()
    client = history_client(store)
    first = client.post("/viewed", json={"videoPath": "a.mp4", "viewId": "k"})
    again = client.post("/viewed", json={"videoPath": "a.mp4", "viewId": "k"})
    assert (first.status_code, first.json["stored"]) == (200, True)
    assert (again.status_code, again.json["stored"]) == (200, False)
    assert list(store.views) == ["k"]


def test_a_body_that_is_not_json_is_400_even_without_content_type() -> None:
    response = history_client(MemoryStore()).post("/viewed", data="videoPath=a")
    assert response.status_code == 400
    assert "JSON" in response.json["error"]


def test_a_database_outage_is_503_and_stores_nothing() -> None:
    store = MemoryStore(down=True)
    response = history_client(store).post("/viewed", json={"videoPath": "a.mp4"})
    assert response.status_code == 503
    assert "retry" in response.json["error"]


def test_readiness_follows_the_database() -> None:
    assert history_client(MemoryStore()).get("/readyz").status_code == 200
    down = history_client(MemoryStore(down=True)).get("/readyz")
    assert (down.status_code, down.json["checks"]) == (503, {"database": False})


@pytest.mark.parametrize("query", ["skip=-1", "skip=x", "limit=2.0", "limit=-5"])
def test_history_rejects_bad_paging(query: str) -> None:
    response = history_client(MemoryStore()).get(f"/history?{query}")
    assert response.status_code == 400
    assert response.json["error"].split()[0] in ("skip", "limit")


@pytest.mark.parametrize("query", ["limit=x", "limit=-1", "limit=1e3"])
def test_recommendations_reject_a_bad_limit(query: str) -> None:
    client = recommendations.create_app(ENV, views=MemoryStore()).test_client()  # type: ignore[arg-type]
    response = client.get(f"/recommendations?{query}")
    assert response.status_code == 400
    assert "limit" in response.json["error"]


def test_unknown_routes_and_methods_answer_json() -> None:
    client = history_client(MemoryStore())
    assert client.get("/nope").json["error"]
    response = client.get("/viewed")
    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
