"""Independent signer for garage-sig-v2 requests (PyNaCl), written from the
README's description of the canonical string only: prints the x-garage-*
headers, one `name: value` per line, for tests/coordinator_net.rs.

usage: sign_request.py KEY_FILE NODE_ID COORDINATOR_ID METHOD PATH BODY_FILE
"""

import hashlib
import os
import sys
import time

from nacl.signing import SigningKey


def main() -> None:
    key_file, node_id, coordinator_id, method, path, body_file = sys.argv[1:7]
    with open(key_file, encoding="ascii") as f:
        seed = bytes.fromhex(f.read().strip())
    with open(body_file, "rb") as f:
        body = f.read()
    timestamp = str(int(time.time()))
    nonce = os.urandom(16).hex()
    message = "\n".join(
        [
            "garage-sig-v2",
            coordinator_id,
            method,
            path,
            hashlib.sha256(body).hexdigest(),
            timestamp,
            nonce,
            node_id,
        ]
    ).encode("utf-8")
    signature = SigningKey(seed).sign(message).signature.hex()
    print(f"x-garage-node: {node_id}")
    print(f"x-garage-coordinator: {coordinator_id}")
    print(f"x-garage-timestamp: {timestamp}")
    print(f"x-garage-nonce: {nonce}")
    print(f"x-garage-signature: {signature}")


if __name__ == "__main__":
    main()
