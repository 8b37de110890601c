#!/usr/bin/env python3
"""Time to first token and streamed tokens/s through the coordinator's
gateway vs the same node's worker asked directly, in the same run.

    python benches/gateway_ttft.py GATEWAY_ROOT API_KEY DIRECT_ROOT [ROUNDS]

Each round runs, alternating direct and gateway, one stream and then 8
concurrent streams (chat, greedy, max_tokens 32), raw HTTP/1.1 so the
client adds nothing but reading. TTFT is from sending the request to the
first SSE event carrying text; tokens/s is the text events after the first
divided by the time after it. Prints p50/p95 per path and concurrency, and
the gateway's overhead (p50 and p95 difference) and tokens/s ratio; then
the gateway's own measure of it from GATEWAY_ROOT/metrics
(garage_gateway_first_token_overhead_seconds: its wait for the first byte
minus the worker's, as the node timed it), per concurrency from the
histogram's growth around each gateway batch, as histogram_quantile would.
"""
import concurrent.futures
import http.client
import json
import statistics
import sys
import time
import urllib.parse


def stream_once(root, key, i):
    u = urllib.parse.urlsplit(root)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
    body = json.dumps({
        "model": "smollm2", "temperature": 0, "max_tokens": 32, "stream": True,
        "messages": [{"role": "user", "content": f"Tell me about the number {i}."}],
    })
    headers = {"content-type": "application/json"}
    if key:
        headers["authorization"] = f"Bearer {key}"
    start = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
    response = conn.getresponse()
    if response.status != 200:
        raise SystemExit(f"{root}: HTTP {response.status}: {response.read()[:300]!r}")
    first, tokens, buffer = None, 0, b""
    while True:
        line = response.readline()
        if not line:
            break
        if not line.startswith(b"data: "):
            continue
        payload = line[6:].strip()
        if payload == b"[DONE]":
            break
        chunk = json.loads(payload)
        choices = chunk.get("choices") or []
        if choices and (choices[0].get("delta") or {}).get("content"):
            tokens += 1
            if first is None:
                first = time.perf_counter()
    end = time.perf_counter()
    conn.close()
    ttft = (first or end) - start
    rate = (tokens - 1) / (end - first) if first and tokens > 1 and end > first else 0.0
    return ttft, rate


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


OVERHEAD = "garage_gateway_first_token_overhead_seconds"


def buckets(gateway):
    """The overhead histogram's cumulative buckets, {le: count}."""
    u = urllib.parse.urlsplit(gateway)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=10)
    conn.request("GET", "/metrics")
    text = conn.getresponse().read().decode()
    conn.close()
    out = {}
    for line in text.splitlines():
        if line.startswith(OVERHEAD + "_bucket{"):
            le = line.split('le="', 1)[1].split('"', 1)[0]
            out[float("inf") if le == "+Inf" else float(le)] = float(line.rsplit(" ", 1)[1])
    return out


def quantile(cumulative, q):
    """histogram_quantile over {le: count} (linear within a bucket)."""
    items = sorted(cumulative.items())
    total = items[-1][1] if items else 0
    if not total:
        return float("nan")
    rank, lower, below = q * total, 0.0, 0.0
    for upper, count in items:
        if count >= rank:
            if upper == float("inf"):
                return lower
            return lower + (upper - lower) * (rank - below) / max(count - below, 1e-9)
        lower, below = upper, count
    return lower


def main():
    gateway, key, direct = sys.argv[1], sys.argv[2], sys.argv[3]
    rounds = int(sys.argv[4]) if len(sys.argv) > 4 else 10
    results = {(path, c): {"ttft": [], "rate": []} for path in ("direct", "gateway") for c in (1, 8)}
    own = {1: {}, 8: {}}
    roots = {"direct": (direct, None), "gateway": (gateway, key)}
    stream_once(direct, None, 0)
    stream_once(gateway, key, 0)
    n = 0
    for _ in range(rounds):
        for path in ("direct", "gateway"):
            root, k = roots[path]
            for c in (1, 8):
                before = buckets(gateway) if path == "gateway" else {}
                with concurrent.futures.ThreadPoolExecutor(c) as pool:
                    outs = list(pool.map(lambda i: stream_once(root, k, i), range(n, n + c)))
                n += c
                if path == "gateway":
                    for le, count in buckets(gateway).items():
                        own[c][le] = own[c].get(le, 0) + count - before.get(le, 0)
                for ttft, rate in outs:
                    results[(path, c)]["ttft"].append(ttft)
                    results[(path, c)]["rate"].append(rate)
    print(f"{'path':8} {'streams':>7} {'n':>4} {'TTFT p50 ms':>12} {'TTFT p95 ms':>12} {'tok/s p50':>10}")
    for (path, c), r in sorted(results.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        print(f"{path:8} {c:>7} {len(r['ttft']):>4} {pct(r['ttft'], 50) * 1e3:>12.1f} "
              f"{pct(r['ttft'], 95) * 1e3:>12.1f} {statistics.median(r['rate']):>10.1f}")
    for c in (1, 8):
        d, g = results[("direct", c)], results[("gateway", c)]
        print(f"{c} stream(s): gateway TTFT overhead p50 {(pct(g['ttft'], 50) - pct(d['ttft'], 50)) * 1e3:+.1f} ms, "
              f"p95 {(pct(g['ttft'], 95) - pct(d['ttft'], 95)) * 1e3:+.1f} ms; tokens/s gateway/direct "
              f"{statistics.median(g['rate']) / max(statistics.median(d['rate']), 1e-9):.3f}")
    for c in (1, 8):
        count = max(own[c].values(), default=0)
        print(f"{c} stream(s): the gateway's own overhead to the first byte ({OVERHEAD}, "
              f"{count:.0f} requests): p50 {quantile(own[c], 0.5) * 1e3:.2f} ms, "
              f"p95 {quantile(own[c], 0.95) * 1e3:.2f} ms")


if __name__ == "__main__":
    main()
