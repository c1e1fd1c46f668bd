"""A database that other implementations of the design wrote to, and hostile queries, on a real
MongoDB-wire server: reads take what is there, the unique index is partial, an index that cannot be
built is an outage (503, messages kept), never "stored before"."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pymongo
import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pymongo.collection import Collection

import history
import recommendations
from flixtube_common.store import VIEW_ID_INDEX, StoreUnavailable, ViewStore
from flixtube_common.views import View


@pytest.fixture
def collection(mongo_url: str) -> Iterator[Collection[dict[str, Any]]]:
    client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(mongo_url, tz_aware=True)
    name = f"elsewhere-{uuid.uuid4().hex[:10]}"
    yield client[name]["videos"]
    client.drop_database(name)
    client.close()


def history_app(mongo_url: str, collection: Collection[dict[str, Any]]) -> Flask:
    env = {"DBHOST": mongo_url, "VIEWED_MESSAGING": "http", "DBNAME": collection.database.name}
    return history.create_app(env, views=ViewStore(collection))


def test_history_lists_views_written_by_another_implementation(
    mongo_url: str, collection: Collection[dict[str, Any]]
) -> None:
    collection.insert_many(
        [
            {"videoPath": "bare.mp4"},  # as the original design's history stores a view
            {"videoPath": "dated.mp4", "viewedAt": datetime(2020, 1, 1, tzinfo=UTC)},
            {"videoPath": "text.mp4", "viewedAt": "2021-02-03T04:05:06+01:00"},
            {"videoPath": "odd.mp4", "viewedAt": "last tuesday"},
        ]
    )
    client = history_app(mongo_url, collection).test_client()
    posted = client.post("/viewed", json={"videoPath": "ours.mp4", "viewId": "ours-1"})
    assert (posted.status_code, posted.json["stored"]) == (200, True)
    again = client.post("/viewed", json={"videoPath": "ours.mp4", "viewId": "ours-1"})
    assert (again.status_code, again.json["stored"]) == (200, False)

    response = client.get("/history")
    assert response.status_code == 200
    listed = {item["videoPath"]: item["viewedAt"] for item in response.json["history"]}
    assert listed.pop("ours.mp4").endswith("Z")
    assert listed == {
        "bare.mp4": None,
        "dated.mp4": "2020-01-01T00:00:00.000Z",
        "text.mp4": "2021-02-03T03:05:06.000Z",
        "odd.mp4": "last tuesday",
    }
    assert response.json["history"][0]["videoPath"] == "ours.mp4"
    assert collection.count_documents({}) == 5


def test_the_unique_index_covers_only_documents_with_a_view_id(
    collection: Collection[dict[str, Any]],
) -> None:
    collection.insert_many([{"videoPath": "a.mp4"}, {"videoPath": "b.mp4"}])  # missing viewIds
    store = ViewStore(collection)
    view = View("c.mp4")
    assert store.record(view)
    assert not store.record(view)
    assert store.record_many([View("d.mp4"), view]) == [True, False]
    assert collection.count_documents({"viewId": view.view_id}) == 1
    collection.insert_one({"videoPath": "e.mp4"})  # more views without one still fit
    index = ViewStore(collection).collection.index_information()
    unique = [spec for spec in index.values() if spec.get("unique")]
    assert [spec["key"] for spec in unique] == [[("viewId", 1)]]


def test_the_full_index_of_an_earlier_version_is_replaced_by_the_partial_one(
    collection: Collection[dict[str, Any]],
) -> None:
    collection.create_index("viewId", unique=True)  # what the earlier version made, named viewId_1
    store = ViewStore(collection)
    assert store.record(View("a.mp4", "same"))
    assert not store.record(View("a.mp4", "same"))
    names = set(collection.index_information())
    assert "viewId_1" not in names
    # nx-27017 names indexes its own way and ignores partialFilterExpression; MongoDB keeps ours.
    assert VIEW_ID_INDEX in names or any("viewId" in name for name in names)


def test_an_index_that_cannot_be_built_is_an_outage_never_a_duplicate(
    mongo_url: str, collection: Collection[dict[str, Any]]
) -> None:
    collection.insert_many(
        [{"videoPath": "a.mp4", "viewId": "twice"}, {"videoPath": "b.mp4", "viewId": "twice"}]
    )
    with pytest.raises(StoreUnavailable, match="index build failed"):
        ViewStore(collection).record(View("new.mp4"))
    with pytest.raises(StoreUnavailable, match="index build failed"):
        ViewStore(collection).record_many([View("new.mp4"), View("newer.mp4")])
    response = history_app(mongo_url, collection).test_client().post("/viewed", json={"videoPath": "new.mp4"})
    assert response.status_code == 503
    assert collection.count_documents({"videoPath": "new.mp4"}) == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=st.dictionaries(st.sampled_from(["skip", "limit", "path"]), st.text(max_size=24), max_size=3))
def test_any_query_on_a_real_store_is_2xx_or_4xx(
    mongo_url: str, collection: Collection[dict[str, Any]], query: dict[str, str]
) -> None:
    collection.insert_one({"videoPath": "x.mp4"})
    env = {"DBHOST": mongo_url, "VIEWED_MESSAGING": "http"}
    store = ViewStore(collection)
    apps = (history.create_app(env, views=store), recommendations.create_app(env, views=store))
    for app, path in zip(apps, ("/history", "/recommendations"), strict=True):
        response = app.test_client().get(path, query_string=query)
        assert response.status_code in (200, 400), response.get_data()[:300]
        if response.status_code == 400:
            assert response.json["error"]
