"""The floor under a scanner pass: the same JSON-RPC requests, in the same order and
batches, as `scan_chain --once` makes for event windows and new deals, sent with a bare
httpx client and decoded, with no database and no row building. Run as a child process by
bench_incremental; prints one JSON object on stdout.

    python -m benchmarks._rpc_floor URL --start-epoch N --event-range 2880 --batch 500
        --first-deal 1 --max-deals 200000
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from typing import Any

import httpx

# The filter, as the scanner sends it.
from chain_scanner.decode import CLAIM_KINDS, DEAL_KINDS, kinds_filter


class Floor:
    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            timeout=httpx.Timeout(60.0, connect=10.0),
        )
        self.ids = itertools.count(1)
        self.http_requests = 0
        self.calls = 0

    def _post(self, payload: Any) -> Any:
        self.http_requests += 1
        response = self.http.post(self.url, json=payload)
        response.raise_for_status()
        return response.json()

    def call(self, method: str, *params: Any) -> Any:
        self.calls += 1
        request_id = next(self.ids)
        body = self._post(
            {
                "jsonrpc": "2.0",
                "method": f"Filecoin.{method}",
                "params": list(params),
                "id": request_id,
            }
        )
        if "error" in body:
            raise RuntimeError(f"{method}: {body['error']}")
        return body["result"]

    def batch(self, method: str, params: list[tuple[Any, ...]]) -> list[Any]:
        self.calls += len(params)
        payload = [
            {
                "jsonrpc": "2.0",
                "method": f"Filecoin.{method}",
                "params": list(p),
                "id": next(self.ids),
            }
            for p in params
        ]
        return self._post(payload)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("--start-epoch", type=int, required=True)
    parser.add_argument("--event-range", type=int, default=2880)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--first-deal", type=int, default=1)
    parser.add_argument("--max-deals", type=int, default=200_000)
    args = parser.parse_args(argv)

    floor = Floor(args.url)
    start = time.perf_counter()
    tipset = floor.call("ChainGetFinalizedTipSet")
    floor.call("ChainHead")
    key, target = tipset["Cids"], tipset["Height"] - 1  # events up to its parent
    events = 0
    done = args.start_epoch - 1
    query = {"addresses": ["f06", "f05"], "fields": kinds_filter(CLAIM_KINDS + DEAL_KINDS)}
    while done < target:
        end = min(target, done + args.event_range)
        found = floor.call("GetActorEventsRaw", query | {"fromHeight": done + 1, "toHeight": end})
        events += len(found or [])
        if end != target:
            floor.call("ChainGetTipSetByHeight", end, key)
        done = end
    claims_done = time.perf_counter()
    next_id = floor.call("StateReadState", "f05", key)["State"]["NextID"]
    stop = min(next_id, args.first_deal + args.max_deals)
    deals = 0
    for first in range(args.first_deal, stop, args.batch):
        ids = range(first, min(stop, first + args.batch))
        answers = floor.batch("StateMarketStorageDeal", [(i, key) for i in ids])
        deals += len(answers)
    end_time = time.perf_counter()
    floor.http.close()
    print(
        json.dumps(
            {
                "seconds": end_time - start,
                "claims_seconds": claims_done - start,
                "deals_seconds": end_time - claims_done,
                "http_requests": floor.http_requests,
                "calls": floor.calls,
                "events": events,
                "deal_ids": deals,
            }
        )
    )


if __name__ == "__main__":
    main()
