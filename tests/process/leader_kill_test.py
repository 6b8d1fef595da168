#!/usr/bin/python3
"""Real skiffd processes, a real kill -9 of the partition leader, and a check that nothing
acknowledged is lost, duplicated or reordered on any replica.

Three brokers on 127.0.0.1 (free ports), a topic with 2 partitions and replication factor 3. An
idempotent producer (InitProducerId, per-partition sequences) sends 5-record batches with
acks=ALL and retries every failed or unanswered batch, with the same sequence, until it is
acknowledged. Five times, the leader of partition 0 is killed with SIGKILL while batches are in
flight, and restarted a little later; then the leader is stopped once with SIGTERM (it must hand
its leaderships over and exit 0) and restarted. At the end every partition is read from EVERY replica
(follower reads, by rack) and must hold exactly the acknowledged batches: each once, in send
order, with the offsets they were acknowledged at, byte-identical across replicas.

Usage: leader_kill_test.py SKIFFD PROTO_DIR [--kills N] [--skiffd-flag=--FLAG ...]
Client stubs are generated from PROTO_DIR at run time with Debian's protoc and
grpc_python_plugin: the test is also a client written only from proto/.
"""
import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time

# This driver starts and restarts brokers (fork + exec) while its gRPC clients run. gRPC
# Python's fork handlers can deadlock such a fork (seen: the prefork handler waiting forever,
# grpc/grpc#22624, #17986); a child that only execs needs none of them. Set before gRPC loads.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import reserved_ports  # noqa: E402

DEADLINE_S = 240  # the whole test, bounded


def generate_stubs(proto_dir, out_dir):
    protos = [os.path.join("skiff/v1", f) for f in sorted(os.listdir(os.path.join(proto_dir, "skiff/v1")))]
    subprocess.run(["protoc", "-I", proto_dir, "--python_out=" + out_dir, "--grpc_python_out=" + out_dir,
                    "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin"] + protos, check=True)
    sys.path.insert(0, out_dir)


class Cluster:
    def __init__(self, skiffd, root, extra_flags=()):
        self.skiffd, self.root = skiffd, root
        self.extra_flags = list(extra_flags)
        ports = reserved_ports.reserve_ports(6)
        self.client = {i: "127.0.0.1:%d" % ports[i - 1] for i in (1, 2, 3)}
        self.raft = {i: "127.0.0.1:%d" % ports[i + 2] for i in (1, 2, 3)}
        self.voters = ",".join("%d@%s" % (i, self.raft[i]) for i in (1, 2, 3))
        self.procs = {}

    def start(self, i):
        log = open(os.path.join(self.root, "broker%d.log" % i), "ab")
        self.procs[i] = subprocess.Popen(
            [self.skiffd, "--broker_id=%d" % i, "--data_dir=%s/b%d" % (self.root, i),
             "--listen=" + self.client[i], "--raft_listen=" + self.raft[i], "--rack=r%d" % i,
             "--metadata_voters=" + self.voters] + self.extra_flags, stdout=log, stderr=log)

    def kill(self, i):
        p = self.procs.pop(i, None)
        if p:
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=10)

    def terminate(self, i):
        """SIGTERM: the broker hands its leaderships over, then exits. Returns the Popen."""
        p = self.procs.pop(i)
        p.send_signal(signal.SIGTERM)
        return p

    def stop_all(self):
        for i in list(self.procs):
            self.kill(i)

    def tail_logs(self):
        for i in (1, 2, 3):
            path = os.path.join(self.root, "broker%d.log" % i)
            if os.path.exists(path):
                lines = open(path, errors="replace").read().splitlines()[-15:]
                print("---- broker %d log (tail) ----\n%s" % (i, "\n".join(lines)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("skiffd")
    ap.add_argument("proto_dir")
    ap.add_argument("--kills", type=int, default=5)
    ap.add_argument("--skiffd-flag", action="append", default=[],
                    help="an extra flag for every skiffd (repeatable)")
    args = ap.parse_args()
    start_time = time.time()

    def remaining():
        return DEADLINE_S - (time.time() - start_time)

    with tempfile.TemporaryDirectory(prefix="skiff-kill-") as root:
        generate_stubs(args.proto_dir, os.path.join(root))
        import grpc
        from skiff.v1 import (admin_pb2, admin_pb2_grpc, fetch_pb2, fetch_pb2_grpc, metadata_pb2,
                              metadata_pb2_grpc, produce_pb2, produce_pb2_grpc, records_pb2)

        cluster = Cluster(args.skiffd, root, args.skiffd_flag)
        channels = {}

        def stub(kind, broker):
            addr = cluster.client[broker]
            if addr not in channels:
                channels[addr] = grpc.insecure_channel(addr)
            return kind(channels[addr])

        def leader_of(topic, partition, avoid=None):
            for b in (1, 2, 3):
                if b == avoid or b not in cluster.procs:
                    continue
                try:
                    md = stub(metadata_pb2_grpc.MetadataServiceStub, b).Metadata(
                        metadata_pb2.MetadataRequest(topics=[topic]), timeout=1)
                except grpc.RpcError:
                    continue
                if md.topics and md.topics[0].partitions[partition].leader > 0:
                    return md.topics[0].partitions[partition].leader
            return -1

        def admin_call(method, request):
            while remaining() > 0:
                for b in list(cluster.procs):
                    try:
                        return getattr(stub(admin_pb2_grpc.AdminServiceStub, b), method)(request, timeout=5)
                    except grpc.RpcError as e:
                        last = e
                time.sleep(0.2)
            raise RuntimeError("admin %s failed: %s" % (method, last))

        try:
            for i in (1, 2, 3):
                cluster.start(i)
            admin_call("CreateTopic", admin_pb2.CreateTopicRequest(name="kt", partitions=2, replication_factor=3))
            pid = admin_call("InitProducerId", admin_pb2.InitProducerIdRequest())
            producer_id, epoch = pid.producer_id, pid.producer_epoch

            # Per partition: the batches in send order, and what was acknowledged.
            next_seq = {0: 0, 1: 0}
            acked = {0: [], 1: []}  # (first_seq, base_offset, values)
            leaders = {0: -1, 1: -1}
            kills, batches_since_kill, dead, kill_times, failovers = 0, 0, None, [], []
            terminating, graceful_done = None, False
            per_batch = 5
            target_batches = 60 * (args.kills + 2)
            total = 0
            while total < target_batches:
                if remaining() < 60:
                    raise RuntimeError("ran out of time producing (%d batches acked)" % total)
                partition = total % 2
                seq = next_seq[partition]
                values = [b"p%d-%d" % (partition, seq + k) for k in range(per_batch)]
                rs = records_pb2.RecordSet(records=[records_pb2.Record(value=v) for v in values])
                batch = records_pb2.RecordBatch(record_count=per_batch, producer_id=producer_id,
                                                producer_epoch=epoch, base_sequence=seq,
                                                records=rs.SerializeToString())
                request = produce_pb2.ProduceRequest(
                    timeout_ms=3000,
                    batches=[produce_pb2.PartitionBatch(topic="kt", partition=partition, batch=batch)])
                # Retry the SAME batch (same sequence) until acknowledged.
                while True:
                    if remaining() < 60:
                        raise RuntimeError("batch p%d seq %d never acknowledged" % (partition, seq))
                    leader = leaders[partition]
                    if leader not in cluster.procs:
                        leader = leader_of("kt", partition, avoid=dead)
                        leaders[partition] = leader
                        if leader < 0:
                            time.sleep(0.05)
                            continue
                    try:
                        r = stub(produce_pb2_grpc.ProduceServiceStub, leader).Produce(request, timeout=5).results[0]
                    except grpc.RpcError:
                        leaders[partition] = -1
                        time.sleep(0.05)
                        continue
                    if r.error == 0:
                        acked[partition].append((seq, r.base_offset, values))
                        if kill_times and len(failovers) < len(kill_times):
                            failovers.append(time.time() - kill_times[-1])
                        break
                    if r.leader.broker_id > 0 and r.leader.broker_id in cluster.procs:
                        leaders[partition] = r.leader.broker_id
                    else:
                        leaders[partition] = -1
                        time.sleep(0.05)
                next_seq[partition] += per_batch
                total += 1
                batches_since_kill += 1
                if dead is not None and batches_since_kill == 30:
                    if terminating is not None:
                        rc = terminating.wait(timeout=20)
                        if rc != 0:
                            raise RuntimeError("broker %d exited %d after SIGTERM" % (dead, rc))
                        terminating = None
                    cluster.start(dead)
                    dead = None
                if dead is None and kills == args.kills and not graceful_done and batches_since_kill >= 60:
                    victim = leader_of("kt", 0)
                    if victim > 0:
                        terminating = cluster.terminate(victim)
                        graceful_done = True
                        kill_times.append(time.time())
                        dead, batches_since_kill = victim, 0
                if dead is None and kills < args.kills and batches_since_kill >= 60:
                    victim = leader_of("kt", 0)
                    if victim > 0:
                        cluster.kill(victim)
                        kill_times.append(time.time())
                        dead, batches_since_kill = victim, 0
                        kills += 1
            if terminating is not None:
                terminating.wait(timeout=20)
            if dead is not None:
                cluster.start(dead)
            if not graceful_done:
                raise RuntimeError("the SIGTERM phase did not happen")
            if kills != args.kills:
                raise RuntimeError("only %d kills happened" % kills)

            # Every replica must converge on exactly the acknowledged batches.
            failures = []
            for partition in (0, 1):
                expected = []
                for seq, base, values in acked[partition]:
                    expected.extend((base + k, v) for k, v in enumerate(values))
                offsets = [o for o, _ in expected]
                if offsets != list(range(len(expected))):
                    failures.append("p%d: acknowledged offsets are not dense and increasing" % partition)
                for b in (1, 2, 3):
                    got = []
                    while remaining() > 5:
                        try:
                            f = stub(fetch_pb2_grpc.FetchServiceStub, b).Fetch(fetch_pb2.FetchRequest(
                                topic="kt", partition=partition, offset=len(got), max_bytes=1 << 20,
                                max_wait_ms=500, allow_follower=True, client_rack="r%d" % b), timeout=5)
                        except grpc.RpcError:
                            time.sleep(0.1)
                            continue
                        if f.error != 0:
                            time.sleep(0.1)
                            continue
                        for bt in f.batches:
                            recs = records_pb2.RecordSet.FromString(bt.records).records
                            got.extend((bt.base_offset + k, r.value) for k, r in enumerate(recs)
                                       if bt.base_offset + k >= len(got))
                        if len(got) >= len(expected):
                            break
                    if got != expected:
                        first_bad = next((i for i, (g, e) in enumerate(zip(got, expected)) if g != e),
                                         min(len(got), len(expected)))
                        failures.append("p%d on broker %d: %d records, expected %d; first difference at %d"
                                        % (partition, b, len(got), len(expected), first_bad))
            print("acknowledged batches: %d (p0 %d, p1 %d), records %d; leader kills: %d"
                  % (total, len(acked[0]), len(acked[1]), total * per_batch, kills))
            print("first acknowledgement after each kill -9, then the SIGTERM (s): %s"
                  % ", ".join("%.2f" % x for x in failovers))
            if failures:
                cluster.tail_logs()
                print("FAIL:\n  " + "\n  ".join(failures))
                return 1
            print("OK: every acknowledged record present exactly once, in order, on all 3 replicas")
            return 0
        except Exception:
            cluster.tail_logs()
            raise
        finally:
            cluster.stop_all()


if __name__ == "__main__":
    sys.exit(main())
