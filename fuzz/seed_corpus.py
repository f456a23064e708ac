#!/usr/bin/env python3
"""Seeds the fuzz corpora from the frames captured on real runtimes'
NRI sockets (../shared/nri-traces, or $NRI_TRACES_DIR) and from the
example configuration. Writes fuzz/corpus/<target>/; run before fuzzing."""

import hashlib
import json
import os
import pathlib
import struct

FUZZ = pathlib.Path(__file__).resolve().parent
ROOT = FUZZ.parent
TRACES = pathlib.Path(os.environ.get("NRI_TRACES_DIR", ROOT.parent / "shared" / "nri-traces"))
CORPUS = FUZZ / "corpus"
# Targets whose input is one ttrpc message as it crosses a mux connection.
MESSAGE_TARGETS = ["nri_requests", "proto_to_wit", "grant_check"]
# Piece sizes for the stream targets: whole frames, and a socket that
# delivers a few bytes at a time.
PIECES = [255, 7, 1]


def save(target, data):
    directory = CORPUS / target
    directory.mkdir(parents=True, exist_ok=True)
    (directory / hashlib.sha256(data).hexdigest()[:16]).write_bytes(data)


def frames(trace):
    for line in trace.read_text().splitlines():
        frame = json.loads(line)
        yield frame["conn"], bytes.fromhex(frame["hex"])


def main():
    traces = sorted(TRACES.glob("*.jsonl"))
    if not traces:
        raise SystemExit(f"no NRI traces in {TRACES} (set NRI_TRACES_DIR)")
    for trace in traces:
        captured = list(frames(trace))
        stream = b"".join(struct.pack(">II", conn, len(p)) + p for conn, p in captured)
        for piece in PIECES:
            save("mux_decoder", bytes([piece]) + stream)
        by_conn = {}
        for conn, payload in captured:
            by_conn[conn] = by_conn.get(conn, b"") + payload
            for target in MESSAGE_TARGETS:
                save(target, payload)
        for conn_stream in by_conn.values():
            for piece in PIECES:
                save("ttrpc_stream", bytes([piece]) + conn_stream)
    save("config_loader", (ROOT / "guest-examples" / "nri-wasm.toml").read_bytes())
    save("config_loader", b'[daemon]\nstatus-address = "127.0.0.1:9465"\n')
    print(f"seeded {CORPUS} from {len(traces)} traces")


if __name__ == "__main__":
    main()
