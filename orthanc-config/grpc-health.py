"""Asks a gRPC server's standard health service (grpc.health.v1.Health/Check) whether it serves.

Exit 0 when the answer is SERVING, 1 otherwise, with the reason on stderr. The request and the
response are encoded by hand (two tiny messages), so this needs only Debian's python3-grpcio.
Usage: /usr/bin/python3 grpc-health.py 127.0.0.1:50051 [service] [timeout_seconds] [ca_file]
With ca_file (PEM), the call goes over TLS and the server's certificate must chain to that CA.
"""

import sys

import grpc

SERVING = 1
STATUS_NAMES = {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}


def encode_request(service: str) -> bytes:
    data = service.encode("utf-8")
    # Field 1 (service), wire type 2; the empty request means "the server as a whole".
    return b"" if not data else b"\x0a" + _varint(len(data)) + data


def decode_status(response: bytes) -> int:
    # HealthCheckResponse has one field, status (1, varint); absent means 0 (UNKNOWN).
    if len(response) >= 2 and response[0] == 0x08:
        return response[1]
    return 0


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    target = sys.argv[1]
    service = sys.argv[2] if len(sys.argv) > 2 else ""
    timeout = float(sys.argv[3]) if len(sys.argv) > 3 else 3.0
    ca_file = sys.argv[4] if len(sys.argv) > 4 else ""
    if ca_file:
        with open(ca_file, "rb") as stream:
            credentials = grpc.ssl_channel_credentials(root_certificates=stream.read())
        channel = grpc.secure_channel(target, credentials)
    else:
        channel = grpc.insecure_channel(target)
    with channel:
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=lambda message: message,
            response_deserializer=lambda message: message,
        )
        try:
            status = decode_status(check(encode_request(service), timeout=timeout))
        except grpc.RpcError as error:
            print(f"health check of {target} failed: {error.code().name}: {error.details()}", file=sys.stderr)
            return 1
    if status != SERVING:
        print(f"{target} answers {STATUS_NAMES.get(status, status)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
