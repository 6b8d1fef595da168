#!/usr/bin/python3
"""A Skiff client written only from proto/: create a topic, produce, fetch, check.

It shows that the public gRPC API is enough to write a client in another language. Stubs are
generated at run time into a temporary directory, so nothing generated is checked in.

Usage: /usr/bin/python3 skiff_example.py --brokers host:port[,host:port...] --proto-dir proto
Run it with Debian's /usr/bin/python3: that interpreter can import Debian's grpc packages.
Exit code 0 when every check passed; 1 with a message otherwise.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid

RETRY_SECONDS = 30  # how long to wait for a new topic's leaders


def generate_stubs(proto_dir, out_dir):
    # Debian's system protoc (3.21) with grpc_python_plugin, not `python3 -m grpc_tools.protoc`:
    # the protoc bundled in Debian's python3-grpc-tools predates proto3 `optional`, which
    # admin.proto and records.proto use.
    protos = [os.path.join("skiff", "v1", name)
              for name in sorted(os.listdir(os.path.join(proto_dir, "skiff", "v1")))
              if name.endswith(".proto")]
    subprocess.run(["protoc", "-I", proto_dir, "-I", "/usr/share/grpc-proto",
                    "--python_out=" + out_dir, "--grpc_python_out=" + out_dir,
                    "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin"] + protos,
                   check=True)
    sys.path.insert(0, out_dir)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brokers", required=True, help="comma-separated host:port list")
    parser.add_argument("--proto-dir", required=True, help="the repository's proto/ directory")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="skiff-py-") as out_dir:
        generate_stubs(args.proto_dir, out_dir)
        return run(args.brokers.split(","))


def run(brokers):
    import grpc
    from skiff.v1 import admin_pb2, admin_pb2_grpc, errors_pb2, fetch_pb2, fetch_pb2_grpc
    from skiff.v1 import metadata_pb2, metadata_pb2_grpc, produce_pb2, produce_pb2_grpc
    from skiff.v1 import records_pb2

    channels = {}

    def channel(address):
        if address not in channels:
            channels[address] = grpc.insecure_channel(address)
        return channels[address]

    def any_broker(call):
        """Admin and metadata calls go to any broker; try the next one while unavailable."""
        deadline = time.monotonic() + RETRY_SECONDS
        while True:
            for address in brokers:
                try:
                    return call(channel(address))
                except grpc.RpcError as e:
                    if e.code() not in (grpc.StatusCode.UNAVAILABLE,
                                        grpc.StatusCode.DEADLINE_EXCEEDED):
                        raise
                    if time.monotonic() > deadline:
                        raise
            time.sleep(0.2)

    def leader_address(topic, partition):
        """The partition leader's client address, or None while there is none."""
        md = any_broker(lambda ch: metadata_pb2_grpc.MetadataServiceStub(ch).Metadata(
            metadata_pb2.MetadataRequest(topics=[topic]), timeout=5))
        addresses = {b.id: b.address for b in md.brokers}
        for t in md.topics:
            for p in t.partitions:
                if t.name == topic and p.partition == partition and p.leader in addresses:
                    return addresses[p.leader]
        return None

    def with_leader(topic, partition, call):
        """Runs call(stub channel) on the leader, following NOT_LEADER and leaderless periods."""
        retriable = (errors_pb2.NOT_LEADER, errors_pb2.LEADER_NOT_AVAILABLE,
                     errors_pb2.UNKNOWN_TOPIC, errors_pb2.UNKNOWN_PARTITION)
        deadline = time.monotonic() + RETRY_SECONDS
        address = None
        last = None
        while time.monotonic() < deadline:
            address = address or leader_address(topic, partition)
            if address is None:
                time.sleep(0.1)
                continue
            try:
                error, hint, result = call(channel(address))
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                last, address = e, None
                time.sleep(0.1)
                continue
            if error == errors_pb2.ERROR_NONE:
                return result
            if error not in retriable:
                raise RuntimeError("broker %s: %s" % (address, errors_pb2.ErrorCode.Name(error)))
            last = errors_pb2.ErrorCode.Name(error)
            address = hint.address if hint.broker_id >= 0 and hint.address else None
            time.sleep(0.1)
        raise RuntimeError("no leader for %s/%d within %ds (last: %s)" %
                           (topic, partition, RETRY_SECONDS, last))

    topic = "py-example-" + uuid.uuid4().hex[:8]
    created = any_broker(lambda ch: admin_pb2_grpc.AdminServiceStub(ch).CreateTopic(
        admin_pb2.CreateTopicRequest(name=topic, partitions=1,
                                     replication_factor=min(3, len(brokers))), timeout=10))
    check(created.topic.name == topic, "CreateTopic answered topic %r" % created.topic.name)
    check(len(created.topic.partitions) == 1, "one partition")

    # A batch as records.proto defines it: records = serialize(RecordSet), no compression.
    # crc32c is optional; the leader computes it when the client leaves it unset.
    values = [b"hello", b"from", b"python"]
    record_set = records_pb2.RecordSet(
        records=[records_pb2.Record(key=b"k", value=v) for v in values])
    batch = records_pb2.RecordBatch(record_count=len(values), producer_id=-1,
                                    compression=records_pb2.COMPRESSION_NONE,
                                    records=record_set.SerializeToString())
    request = produce_pb2.ProduceRequest(
        request_id=1, acks=produce_pb2.ACKS_ALL, timeout_ms=10000,
        batches=[produce_pb2.PartitionBatch(topic=topic, partition=0, batch=batch)])

    def produce(ch):
        response = produce_pb2_grpc.ProduceServiceStub(ch).Produce(request, timeout=15)
        check(len(response.results) == 1, "one result per batch")
        r = response.results[0]
        return r.error, r.leader, r.base_offset

    base_offset = with_leader(topic, 0, produce)
    check(base_offset == 0, "first batch of a new topic at offset 0, got %d" % base_offset)

    def fetch(ch):
        response = fetch_pb2_grpc.FetchServiceStub(ch).Fetch(
            fetch_pb2.FetchRequest(topic=topic, partition=0, offset=0, max_bytes=1 << 20,
                                   max_wait_ms=1000), timeout=10)
        return response.error, response.leader, response

    fetched = with_leader(topic, 0, fetch)
    check(fetched.high_watermark == len(values), "high watermark %d" % fetched.high_watermark)
    got = []
    for b in fetched.batches:
        check(b.compression == records_pb2.COMPRESSION_NONE, "uncompressed as sent")
        decoded = records_pb2.RecordSet()
        decoded.ParseFromString(b.records)
        check(len(decoded.records) == b.record_count, "record_count matches the records")
        for i, r in enumerate(decoded.records):
            got.append((b.base_offset + i, r.key, r.value))
    check(got == [(i, b"k", v) for i, v in enumerate(values)], "fetched %r" % (got,))

    any_broker(lambda ch: admin_pb2_grpc.AdminServiceStub(ch).DeleteTopic(
        admin_pb2.DeleteTopicRequest(name=topic), timeout=10))
    print("skiff_example: OK (topic %s: produced and fetched %d records)" % (topic, len(values)))
    return 0


def check(condition, what):
    if not condition:
        raise AssertionError(what)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # report any failure as one line and exit 1
        print("skiff_example: FAILED: %s: %s" % (type(e).__name__, e), file=sys.stderr)
        sys.exit(1)
