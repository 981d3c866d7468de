#!/usr/bin/env python3
"""Serves MODEL.gguf with llama.cpp's own HTTP server (the xllamacpp wheel) on 127.0.0.1:PORT,
with N_PARALLEL slots, until SIGTERM or SIGINT.

usage: serve.py MODEL.gguf PORT N_PARALLEL
"""
import signal
import sys
import threading

import xllamacpp

model, port, slots = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
params = xllamacpp.CommonParams()
params.model.path = model
params.model_alias = {"tiny-random-llama"}
params.hostnames = ["127.0.0.1"]
params.port = port
params.n_parallel = slots
params.n_ctx = 2048 * slots
params.n_batch = 512
params.cpuparams.n_threads = 2
params.cpuparams_batch.n_threads = 2
params.endpoint_metrics = True
params.warmup = True
server = xllamacpp.Server(params)
print("listening", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
stop.wait()
del server
