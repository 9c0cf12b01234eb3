# watch_replay_reads.py KVD PORT WATCHERS: a key with $VERSIONS (default
# 20,000) versions, WATCHERS watches replaying it from op 0 (each ends
# once it has every event), and a GET of another key every 50 ms
# meanwhile: how long the replays take, and what the GETs wait. Uses
# 127.0.0.1:PORT and a data dir under /tmp/replay; stops kvd itself.
import asyncio, os, shutil, subprocess, sys, tempfile, time, urllib.request, json, statistics
kvd, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs("/tmp/replay", exist_ok=True)
data = tempfile.mkdtemp(dir="/tmp/replay")
p = subprocess.Popen([kvd, "--listen", f"127.0.0.1:{port}", "--data-dir", data, "--log-level", "warn",
                      "--history-keep", "-1", "--max-connections", str(n * 2 + 200)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
base = f"http://127.0.0.1:{port}/api/v1/sqlite"
try:
    for _ in range(100):
        try: urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz"); break
        except Exception: time.sleep(0.1)
    def req(method, url, body=None):
        r = urllib.request.Request(url, data=body, method=method, headers={"Content-Type": "application/json"})
        return urllib.request.urlopen(r).read()
    req("PUT", f"{base}/kv/other?db=app&create_db_if_missing=true", b'"x"')
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port)
    for i in range(int(os.environ.get("VERSIONS", "20000"))):
        c.request("PUT", f"/api/v1/sqlite/kv/hot?db=app", body=str(i), headers={"Content-Type": "application/json"})
        c.getresponse().read()
    async def watcher():
        r, w = await asyncio.open_connection("127.0.0.1", port)
        w.write(f"GET /api/v1/sqlite/kv/hot/watch?db=app&after_op=0 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await w.drain()
        events, tail, want = 0, b"", int(os.environ.get("VERSIONS", "20000"))
        try:
            while events < want:
                b = await asyncio.wait_for(r.read(1 << 16), 60)
                if not b: break
                events += (tail + b).count(b"\nid: ") - tail.count(b"\nid: ")
                tail = b[-8:]
        except Exception: pass
        w.close()
    async def prober(stop, lat):
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            t = time.monotonic()
            await loop.run_in_executor(None, lambda: urllib.request.urlopen(f"{base}/kv/other?db=app").read())
            lat.append(time.monotonic() - t)
            await asyncio.sleep(0.05)
    async def main():
        stop, lat = asyncio.Event(), []
        pr = asyncio.create_task(prober(stop, lat))
        t0 = time.monotonic()
        await asyncio.wait_for(asyncio.gather(*[watcher() for _ in range(n)]), 120)
        stop.set(); await pr
        lat.sort()
        print(f"{n} watchers replayed in {time.monotonic()-t0:.1f} s; GETs meanwhile: {len(lat)}, median {statistics.median(lat)*1000:.0f} ms, p90 {lat[int(len(lat)*0.9)]*1000:.0f} ms, max {lat[-1]*1000:.0f} ms")
    asyncio.run(main())
finally:
    p.terminate(); p.wait()
    shutil.rmtree(data)
