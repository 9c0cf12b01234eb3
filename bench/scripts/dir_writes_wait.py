#!/usr/bin/env python3
# dir_writes_wait.py KVD PORT SCENARIO
#
# How long small writes wait while a directory-mode database brings in
# files dropped into its folder by hand. A fresh kvd on 127.0.0.1:PORT
# (--allow-dir on a temporary folder), files written by hand, then one
# request that makes kvd bring them in while another client PUTs a small
# key every 50 ms; prints that request's time and the PUTs' latencies.
#   small     30,000 files of a few bytes; a listing with rebuild=true
#   large     40 files of 10 MiB; a listing with rebuild=true
#   rollback  30,000 files imported first, 10 of them PUT after a time T;
#             a confirmed table rollback to T
import json, os, shutil, statistics, subprocess, sys, tempfile, threading, time, urllib.request

kvd, port, scenario = sys.argv[1], sys.argv[2], sys.argv[3]
base = tempfile.mkdtemp(prefix="kvd-dirwait-")
root, data = base + "/root", base + "/data"
os.makedirs(root + "/notes/t"); os.makedirs(data)
proc = subprocess.Popen([kvd, "--listen", "127.0.0.1:" + port, "--data-dir", data, "--allow-dir", root, "--log-level", "warn"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
url = "http://127.0.0.1:%s/api/v1/sqlite/kv" % port
q = "db=" + root + "/notes&table=t"

def req(method, path, body=None):
    with urllib.request.urlopen(urllib.request.Request(url + path, data=body, method=method), timeout=120) as r:
        return r.read()

try:
    for _ in range(100):
        try:
            urllib.request.urlopen("http://127.0.0.1:%s/healthz" % port, timeout=1); break
        except Exception:
            time.sleep(0.1)
    req("PUT", "/first?" + q, b"x")
    count, size = (40, 10 << 20) if scenario == "large" else (30000, 0)
    blob = os.urandom(size)
    for i in range(count):
        with open("%s/notes/t/f%05d" % (root, i), "wb") as f:
            f.write(blob or b"v%d" % i)
    if scenario == "rollback":
        req("GET", "?" + q + "&rebuild=true&limit=1")
        time.sleep(0.05); at = time.time(); time.sleep(0.05)
        for i in range(10):
            req("PUT", "/f%05d?%s" % (i, q), b"changed")
        path, method = "/rollback?%s&to_timestamp=%.3f&confirm=yes" % (q, at), "POST"
    else:
        path, method = "?" + q + "&rebuild=true&limit=1", "GET"
    done, waits = threading.Event(), []
    def puts():
        while not done.is_set():
            t = time.time(); req("PUT", "/other?" + q, b"v"); waits.append(time.time() - t); time.sleep(0.05)
    th = threading.Thread(target=puts); th.start()
    t0 = time.time(); answer = req(method, path, b"{}" if method == "POST" else None); took = time.time() - t0
    done.set(); th.join()
    extra = " (%d changes)" % json.loads(answer)["count"] if scenario == "rollback" else ""
    print("%s: %.1f s%s; PUTs meanwhile: %d, median %.3f s, max %.3f s" % (scenario, took, extra, len(waits), statistics.median(waits), max(waits)))
finally:
    proc.terminate(); proc.wait(); shutil.rmtree(base, ignore_errors=True)
