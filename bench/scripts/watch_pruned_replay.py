# watch_pruned_replay.py KVD PORT KEYS [busy]: KEYS keys written three
# times by batch/set under --history-keep 2 (so every key has pruned
# history), then one watch replaying the table from op 0 to the newest op
# before it: how long the replay takes, and the events and gaps it sent.
# With "busy", a client meanwhile rewrites the keys 100 at a time in a
# loop, so that retention prunes while the watch replays. Uses 127.0.0.1:PORT and a data
# dir under /tmp/replay; stops kvd itself.
import http.client, json, os, subprocess, sys, tempfile, threading, time, urllib.request
kvd, port, keys = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
busy = sys.argv[4:] == ["busy"]
os.makedirs("/tmp/replay", exist_ok=True)
data = tempfile.mkdtemp(dir="/tmp/replay")
p = subprocess.Popen([kvd, "--listen", f"127.0.0.1:{port}", "--data-dir", data, "--log-level", "warn", "--history-keep", "2"],
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try: urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz"); break
        except Exception: time.sleep(0.1)
    c = http.client.HTTPConnection("127.0.0.1", port)
    for r in range(3):
        for s in range(0, keys, 100):
            items = [{"key": f"k{i:07d}", "value": str(r)} for i in range(s, min(s + 100, keys))]
            c.request("POST", "/api/v1/sqlite/kv/batch/set?db=app&create_db_if_missing=true", json.dumps({"items": items}), {"Content-Type": "application/json"})
            resp = c.getresponse(); resp.read()
            assert resp.status == 200, resp.status
    head = 3 * keys
    done, batches = threading.Event(), [0]
    def rewrite():
        b = http.client.HTTPConnection("127.0.0.1", port)
        while not done.is_set():
            s = batches[0] * 100 % keys
            items = [{"key": f"k{i:07d}", "value": "busy"} for i in range(s, min(s + 100, keys))]
            b.request("POST", "/api/v1/sqlite/kv/batch/set?db=app", json.dumps({"items": items}), {"Content-Type": "application/json"})
            resp = b.getresponse(); resp.read()
            assert resp.status == 200, resp.status
            batches[0] += 1
    writer = threading.Thread(target=rewrite)
    if busy: writer.start()
    start = time.time()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    c.request("GET", "/api/v1/sqlite/kv/watch?db=app&after_op=0")
    r = c.getresponse()
    events = gaps = last = 0
    while last < head:
        line = r.fp.readline()
        if not line: break
        if line.startswith(b"id:"): last = int(line[3:]); events += 1
        if line.startswith(b"event: gap") or line.startswith(b"event:gap"): gaps += 1
    took = time.time() - start
    done.set()
    if busy: writer.join()
    print(f"{keys} keys: {events} events, {gaps} gaps, to op {last} in {took:.2f} s" + (f", {batches[0]} batches meanwhile" if busy else ""))
finally:
    done.set()
    p.terminate(); p.wait()
    import shutil; shutil.rmtree(data, ignore_errors=True)
