"""Views end to end: the project's own publisher → RabbitMQ (fanout) → history's worker → nx-27017.

    .venv/bin/python -m bench.views [--views 3000] [--rounds 3] [--latency-seconds 5]

In alternating rounds against the same MongoDB-wire server:
  raw  `insert_one` of N view documents, one at a time, into a collection with history's indexes
       (the reference: the best a one-at-a-time consumer could do)
  e2e  N views put into an Outbox with an AmqpPublisher (publisher confirms on), consumed by history's
       worker (started as its Procfile says) into its collection; timed until the worker has stored all N
Then a paced phase publishes at half the measured end-to-end rate to measure publish→stored latency
without queueing. Stored times come from the worker's own "view stored" log lines (millisecond stamps);
lost and duplicated views are counted in the database at the end. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pymongo
from pymongo.collection import Collection

from bench import harness
from flixtube_common.outbox import Outbox
from flixtube_common.publisher import AmqpPublisher
from flixtube_common.spool import Spool
from flixtube_common.subscriber import queue_has_consumer
from flixtube_common.views import View

DBNAME = "bench_history"
QUEUE = "history.viewed"
OUTBOX_BYTES = 1024 * 1024 * 1024  # every view of a run fits: the budget is not what is measured


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = harness.argument_parser(__doc__)
    parser.add_argument("--views", type=int, default=3000, help="views per round (default 3000)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating raw/e2e rounds (default 3)")
    parser.add_argument(
        "--latency-seconds", type=float, default=5, help="length of the paced latency phase (default 5)"
    )
    parser.add_argument("--timeout", type=float, default=120, help="give up on a round after this long")
    return parser.parse_args(argv)


class StoredLog:
    """Follows the worker's JSON log: when each viewId was first stored, and how often it came again."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb")
        self._partial = b""
        self.stored: dict[str, float] = {}
        self.duplicates = 0

    def read(self) -> None:
        data = self._partial + self._file.read()
        lines = data.split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            if b'"view stored"' not in line and b'"duplicate view ignored"' not in line:
                continue
            record = json.loads(line)
            if record["event"] == "view stored":
                self.stored.setdefault(record["viewId"], datetime.fromisoformat(record["ts"]).timestamp())
            else:
                self.duplicates += 1

    def wait_for(self, ids: set[str], timeout: float) -> float | None:
        """Wait until every id is stored; the time the last one was stored, or None on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.read()
            if ids <= self.stored.keys():
                return max(self.stored[i] for i in ids)
            time.sleep(0.05)
        return None


@dataclass
class Round:
    stored_rate: float  # views per second from the first put until the worker stored the last one
    publish_rate: float  # views per second from the first put until the broker confirmed the last one
    latencies_ms: list[float]


@dataclass
class Rates:
    raw: list[float] = field(default_factory=list)
    e2e: list[float] = field(default_factory=list)
    publish: list[float] = field(default_factory=list)
    burst_latency_ms: list[float] = field(default_factory=list)


def raw_round(collection: Collection[dict[str, Any]], views: int) -> float:
    """insert_one, one view at a time, with history's indexes in place; views per second."""
    collection.create_index("viewId", unique=True)
    collection.create_index([("viewedAt", pymongo.DESCENDING)])
    documents = [View(video_path=f"bench/{i % 50}.mp4") for i in range(views)]
    started = time.perf_counter()
    for view in documents:
        collection.insert_one(
            {"viewId": view.view_id, "videoPath": view.video_path, "viewedAt": view.viewed_at}
        )
    return views / (time.perf_counter() - started)


def open_outbox(rabbit: str, folder: Path) -> Outbox:
    """The outbox video-streaming has: views on disk in `folder`, published with confirms."""
    outbox = Outbox(AmqpPublisher(rabbit, "fanout", "bench-views"), Spool(folder, OUTBOX_BYTES))
    outbox.start()
    deadline = time.monotonic() + 30
    while not outbox.ready:
        if time.monotonic() > deadline:
            raise TimeoutError("the publisher did not connect to the broker")
        time.sleep(0.05)
    return outbox


def e2e_round(
    outbox: Outbox, log: StoredLog, views: int, timeout: float, published: dict[str, float]
) -> Round:
    """Put `views` views into the outbox at once; views per second until all are confirmed and stored."""
    sent_before = outbox.sent
    batch = [View(video_path=f"bench/{i % 50}.mp4") for i in range(views)]
    started = time.time()
    for view in batch:
        published[view.view_id] = time.time()
        outbox.put(view)
    ids = {view.view_id for view in batch}
    confirmed = sent_before + views
    deadline = time.monotonic() + timeout
    while outbox.sent < confirmed and time.monotonic() < deadline:
        time.sleep(0.01)
    publish_rate = views / max(time.time() - started, 1e-3)
    last = log.wait_for(ids, max(0.0, deadline - time.monotonic()))
    if last is None:
        return Round(0.0, publish_rate, [])
    latencies = [(log.stored[i] - published[i]) * 1000 for i in ids]
    return Round(views / max(last - started, 1e-3), publish_rate, latencies)


def paced(
    outbox: Outbox,
    log: StoredLog,
    rate: float,
    seconds: float,
    *,
    timeout: float,
    published: dict[str, float],
) -> list[float]:
    """Publish at `rate` views per second for `seconds`; each view's publish→stored latency in ms."""
    count = max(1, int(rate * seconds))
    ids = set()
    started = time.monotonic()
    for i in range(count):
        delay = started + i / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        view = View(video_path=f"bench/{i % 50}.mp4")
        published[view.view_id] = time.time()
        outbox.put(view)
        ids.add(view.view_id)
    log.wait_for(ids, timeout)
    return [(log.stored[i] - published[i]) * 1000 for i in ids if i in log.stored]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def run(args: argparse.Namespace) -> dict[str, Any]:
    rates = Rates()
    published: dict[str, float] = {}
    with (
        harness.workdir(args.keep) as tmp,
        harness.rabbit_vhost() as rabbit,
        harness.mongo_server(tmp / "mongo") as db,
    ):
        if args.keep:
            print(f"work folder: {tmp}")
        env = {"VIEWED_MESSAGING": "fanout", "RABBIT": rabbit, "DBHOST": db, "DBNAME": DBNAME}
        with harness.service("history", "worker", env, tmp, ready_path=None) as worker:
            deadline = time.monotonic() + 60
            while not queue_has_consumer(rabbit, QUEUE):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"history's worker is not consuming {QUEUE}; see {worker.log}")
                time.sleep(0.2)
            client: pymongo.MongoClient[dict[str, Any]] = pymongo.MongoClient(db, tz_aware=True)
            log = StoredLog(worker.log)
            outbox = open_outbox(rabbit, tmp / "outbox")
            rss = harness.RssSampler(harness.service_processes([worker]))
            with rss:
                for round_ in range(args.rounds):
                    steps = ("raw", "e2e") if round_ % 2 == 0 else ("e2e", "raw")
                    for step in steps:
                        if step == "raw":
                            rates.raw.append(raw_round(client["bench_raw"][f"round{round_}"], args.views))
                        else:
                            done = e2e_round(outbox, log, args.views, args.timeout, published)
                            rates.e2e.append(done.stored_rate)
                            rates.publish.append(done.publish_rate)
                            rates.burst_latency_ms.extend(done.latencies_ms)
                pace = max(10.0, min(statistics.median(rates.e2e) / 2, 2000.0))
                latency = paced(
                    outbox, log, pace, args.latency_seconds, timeout=args.timeout, published=published
                )
            outbox.close()
            time.sleep(1.0)  # let the worker finish what is in flight before counting
            log.read()
            stored = count_stored(client[DBNAME]["videos"], set(published))
            client.close()
    return {
        "rates": rates,
        "pace": pace,
        "latency_ms": latency,
        "published": len(published),
        "stored": stored,
        "redelivered_duplicates": log.duplicates,
        "outbox": outbox.stats(),
        "rss_peak": rss.peak,
    }


def count_stored(collection: Collection[dict[str, Any]], ids: set[str]) -> dict[str, int]:
    """Lost = published ids not in the database; duplicated = documents beyond one per id."""
    counts: dict[str, int] = {}
    for document in collection.find({}, {"_id": 0, "viewId": 1}):
        counts[document["viewId"]] = counts.get(document["viewId"], 0) + 1
    return {
        "documents": sum(counts.values()),
        "lost": len(ids - counts.keys()),
        "duplicated": sum(n - 1 for n in counts.values() if n > 1),
    }


def report(args: argparse.Namespace, result: dict[str, Any]) -> dict[str, Any]:
    rates: Rates = result["rates"]
    raw, e2e = statistics.median(rates.raw), statistics.median(rates.e2e)
    latency = result["latency_ms"]
    stored = result["stored"]
    rows = [
        ["raw insert_one (views/s)", *rates.raw, raw],
        ["end to end (views/s)", *rates.e2e, e2e],
        ["  of which published+confirmed", *rates.publish, statistics.median(rates.publish)],
    ]
    print(f"\n{args.views} views per round, {args.rounds} rounds, alternating")
    headers = ["", *[f"round {i + 1}" for i in range(args.rounds)], "median"]
    print(harness.table(headers, rows))
    paired = [e / r for e, r in zip(rates.e2e, rates.raw, strict=True)]
    print(
        f"\nend to end / raw insert: {e2e / raw:.2f} of the medians, {statistics.median(paired):.2f} "
        f"median of the rounds' ratios ({', '.join(f'{p:.2f}' for p in paired)}) (target >= 0.7)"
    )
    print(
        harness.table(
            ["publish→stored latency", "views", "p50 ms", "p99 ms"],
            [
                [f"paced at {result['pace']:.0f} views/s", len(latency), *_p(latency)],
                ["bursts (includes queueing)", len(rates.burst_latency_ms), *_p(rates.burst_latency_ms)],
            ],
        )
    )
    print(
        f"\npublished {result['published']}, documents {stored['documents']}, "
        f"lost {stored['lost']}, duplicated {stored['duplicated']} (targets 0 and 0); "
        f"redeliveries ignored as duplicates: {result['redelivered_duplicates']}"
    )
    memory = [[label, peak] for label, peak in result["rss_peak"].items()]
    print("\n" + harness.table(["history worker process", "peak RSS MiB"], memory))
    return {
        "bench": "views",
        **harness.stamp(),
        "command": f"python -m bench.views --views {args.views} --rounds {args.rounds}",
        "raw_insert_per_s": [round(r, 1) for r in rates.raw],
        "e2e_per_s": [round(r, 1) for r in rates.e2e],
        "raw_median": round(raw, 1),
        "e2e_median": round(e2e, 1),
        "publish_per_s": [round(r, 1) for r in rates.publish],
        "ratio": round(e2e / raw, 3),
        "ratio_per_round": [round(p, 3) for p in paired],
        "ratio_paired_median": round(statistics.median(paired), 3),
        "latency_paced": {
            "rate": round(result["pace"]),
            "p50_ms": _r(latency, 50),
            "p99_ms": _r(latency, 99),
        },
        "latency_burst": {"p50_ms": _r(rates.burst_latency_ms, 50), "p99_ms": _r(rates.burst_latency_ms, 99)},
        "published": result["published"],
        **stored,
        "redelivered_duplicates": result["redelivered_duplicates"],
        "outbox": result["outbox"],
        "rss_peak_mib": {label: round(peak, 1) for label, peak in result["rss_peak"].items()},
    }


def _p(values: list[float]) -> list[float]:
    return [percentile(values, 50), percentile(values, 99)]


def _r(values: list[float], q: float) -> float:
    return round(percentile(values, q), 1)


def main(argv: list[str] | None = None) -> int:
    return harness.run_main(argv, parse, run, report)


if __name__ == "__main__":
    raise SystemExit(main())
