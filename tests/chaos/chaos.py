#!/usr/bin/python3
"""Skiff's fault-injection suite: real brokers, real faults, and a checker that proves nothing
acknowledged was lost.

One scenario run:
  1. Three (--brokers 5: five) real skiffd in a temp root, on 127.0.0.1 with free ports
     (--net loopback, the default) or each in its own network namespace joined by a bridge
     namespace (--net netns); a topic with PARTITIONS partitions, replication factor 3.
  2. A workload runs throughout: PRODUCERS idempotent producers (InitProducerId, per-partition
     sequences, acks=ALL, one batch in flight each) whose every record carries its producer id,
     partition, sequence and a checksum (checker.make_value), and which retry a batch with the
     SAME sequence until it is acknowledged; now and then a producer sends a probe with a wrong
     CRC32C, which must fail definitely and never become visible. Every send goes to a ledger.
     One consumer process per partition reads by offset from the leader, checkpointing its
     position; a consumer is killed with SIGKILL every few seconds and restarted from its
     checkpoint.
  3. The scenario injects its faults (kill -9, SIGSTOP, iptables, power cut), recording when
     each began and when the cluster was whole again after each was healed. Network faults
     go through one API with a backend per --net (LoopbackFirewall, NetnsFirewall).
  4. Final phase: every fault healed, producers finish (a batch still unanswered after a grace
     period stays "unknown"), leaders awaited; each partition is read through a normal leader
     read and from EVERY replica (follower reads: allow_follower + the replica's rack), and the
     consumers drain.
  5. checker.check() judges the history; one summary line per scenario. On failure (or with
     --keep) the ledger, consumer logs and broker logs are kept under --evidence-dir.

Usage:
  chaos.py run --skiffd build/skiffd --proto-dir proto [--scenarios core|all|a,b]
               [--seed N] [--duration S] [--evidence-dir DIR] [--keep]
               [--net loopback|netns] [--brokers 3|5] [--soak-s S]
               [--expect-violation lost]   (canary: pass only if the checker reports it)
  chaos.py recheck LEDGER.json             (re-judge a kept history)
  chaos.py list                            (scenario names)
  chaos.py consume ...                     (internal: one consumer process)
Run with /usr/bin/python3 (Debian's interpreter, which can import Debian's grpc). Stubs are
generated from --proto-dir at run time with protoc and grpc_python_plugin.

Cleanup: every process is started through Processes and killed by PID; the iptables chain is
per run and deleted; loop mounts are unmounted; the network namespaces (skiffchaos-<pid>-*) and
the root veth are deleted; the temp root is removed. This happens in finally blocks, also on
SIGINT/SIGTERM, and the run fails if anything it started is left.
"""
import argparse
import ipaddress
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

# This driver starts and restarts brokers (fork + exec) while its gRPC clients run. gRPC
# Python's fork handlers can deadlock such a fork (seen: the prefork handler waiting forever,
# grpc/grpc#22624, #17986); a child that only execs needs none of them. Set before gRPC loads.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import checker  # noqa: E402
sys.path.insert(0, os.path.join(HERE, "..", "common"))
import reserved_ports  # noqa: E402

TOPIC = "chaos"
PARTITIONS = 3
PRODUCERS = 3
BROKERS = (1, 2, 3)
# Raft timing of the brokers under test (skiffd defaults): election after 15-30 ticks of 20 ms.
TICK_MS = 20
ELECTION_TICKS = 15
ELECTION_TIMEOUT_MAX_S = 2 * ELECTION_TICKS * TICK_MS / 1000.0
# Bounds of the phases around a scenario (seconds).
STARTUP_S = 60          # cluster up, topic created and led
PRODUCER_GRACE_S = 20   # after the workload stops, how long an unanswered batch is retried
WHOLE_S = 60            # after the last heal, how long to wait for every leader and replica
DRAIN_S = 30            # final reads and consumers reaching the end
# Per-broker group ids, so that iptables' owner match can tell the brokers' own outgoing
# connections apart on the shared loopback address (see LoopbackFirewall).
BROKER_GID_BASE = 47000
# Exit code of a canary run whose scenarios could not run here (ctest SKIP_RETURN_CODE).
SKIP_EXIT_CODE = 77
DEFINITE_ERRORS = ("INVALID_BATCH", "CORRUPT_BATCH", "BATCH_TOO_LARGE")

grpc = None  # imported after the stubs exist
pb = {}      # generated modules by short name


def now():
    return time.monotonic()


def log(msg):
    print("[chaos %s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


class Interrupted(Exception):
    """SIGINT or SIGTERM: unwind through every finally block."""


def generate_stubs(proto_dir, out_dir):
    global grpc
    os.makedirs(out_dir, exist_ok=True)
    protos = [os.path.join("skiff/v1", f)
              for f in sorted(os.listdir(os.path.join(proto_dir, "skiff/v1")))]
    subprocess.run(["protoc", "-I", proto_dir, "--python_out=" + out_dir,
                    "--grpc_python_out=" + out_dir,
                    "--plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin"] + protos,
                   check=True)
    load_stubs(out_dir)


def load_stubs(out_dir):
    global grpc
    sys.path.insert(0, out_dir)
    import grpc as grpc_module
    from skiff.v1 import (admin_pb2, admin_pb2_grpc, errors_pb2, fetch_pb2, fetch_pb2_grpc,
                          metadata_pb2, metadata_pb2_grpc, produce_pb2, produce_pb2_grpc,
                          records_pb2)
    grpc = grpc_module
    pb.update(admin=admin_pb2, admin_grpc=admin_pb2_grpc, errors=errors_pb2, fetch=fetch_pb2,
              fetch_grpc=fetch_pb2_grpc, metadata=metadata_pb2, metadata_grpc=metadata_pb2_grpc,
              produce=produce_pb2, produce_grpc=produce_pb2_grpc, records=records_pb2)


def error_name(code):
    return pb["errors"].ErrorCode.Name(code) if code in pb["errors"].ErrorCode.values() else str(code)


# ---- processes --------------------------------------------------------------------------------

class Processes:
    """Every child this run starts, so that each can be killed by its PID and none is left."""

    def __init__(self):
        self.all = []
        self.lock = threading.Lock()

    def spawn(self, argv, log_path, **kwargs):
        out = open(log_path, "ab")
        try:
            p = subprocess.Popen(argv, stdout=out, stderr=out, stdin=subprocess.DEVNULL, **kwargs)
        finally:
            out.close()
        with self.lock:
            self.all.append(p)
        return p

    def kill_all(self):
        with self.lock:
            procs = list(self.all)
        for p in procs:
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGCONT)  # a stopped process must also die
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def leftovers(self, root):
        """PIDs still alive that this run started, and any process whose command line names
        the run's temp root (a grandchild would show up there)."""
        alive = [p.pid for p in self.all if p.poll() is None]
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as f:
                    if root.encode() in f.read():
                        alive.append(int(entry))
            except OSError:
                pass
        return sorted(set(alive))


class Cluster:
    """The brokers (BROKERS: 3, or 5 with --brokers 5), at the addresses `net` gives them (see
    LoopbackNet, NetnsNet). state[i] is 'running', 'stopped' (SIGSTOP) or 'dead'."""

    def __init__(self, skiffd, root, procs, net, extra_flags=()):
        self.skiffd, self.root, self.procs, self.net = skiffd, root, procs, net
        self.extra_flags = list(extra_flags)
        self.client, self.raft_port, self.raft = {}, {}, {}
        self.voters = None
        self.popen = {}
        self.state = {i: "dead" for i in BROKERS}
        self.data_dirs = {i: os.path.join(root, "b%d" % i) for i in BROKERS}

    def assign_addresses(self):
        """Takes the brokers' client and Raft addresses from the network (once it is set up)."""
        for i in BROKERS:
            self.client[i] = self.net.client_address(i)
            self.raft[i] = self.net.raft_address(i)
            self.raft_port[i] = int(self.raft[i].rsplit(":", 1)[1])
        self.voters = ",".join("%d@%s" % (i, self.raft[i]) for i in BROKERS)

    def start(self, i, env=None):
        """Starts broker i; `env`: extra environment variables (e.g. LD_PRELOAD). In netns
        mode the argv starts with `ip netns exec NS`, which execs skiffd in place: the PID
        we track (kill, SIGSTOP, strace, cgroup) is skiffd's own (see NetnsNet.exec_prefix)."""
        assert self.state[i] == "dead"
        full_env = None
        if env:
            full_env = dict(os.environ)
            full_env.update(env)
        self.popen[i] = self.procs.spawn(
            self.net.exec_prefix(i) +
            [self.skiffd, "--broker_id=%d" % i, "--data_dir=" + self.data_dirs[i],
             "--listen=" + self.client[i], "--raft_listen=" + self.raft[i],
             "--rack=r%d" % i, "--metadata_voters=" + self.voters,
             "--tick_ms=%d" % TICK_MS, "--election_ticks=%d" % ELECTION_TICKS] + self.extra_flags,
            os.path.join(self.root, "broker%d.log" % i),
            group=BROKER_GID_BASE + i, extra_groups=[], env=full_env)
        self.state[i] = "running"

    def sigterm(self, i, timeout_s=20):
        """A graceful stop (skiffd hands its leaderships over first). A broker that does not
        exit within timeout_s is an error of the run, not silently killed."""
        p = self.popen[i]
        os.kill(p.pid, signal.SIGTERM)
        try:
            rc = p.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise RuntimeError("broker %d did not exit within %ds of SIGTERM" % (i, timeout_s))
        self.state[i] = "dead"
        return rc

    def kill9(self, i):
        p = self.popen[i]
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=10)
        self.state[i] = "dead"

    def sigstop(self, i):
        os.kill(self.popen[i].pid, signal.SIGSTOP)
        self.state[i] = "stopped"

    def sigcont(self, i):
        os.kill(self.popen[i].pid, signal.SIGCONT)
        self.state[i] = "running"

    def reachable(self):
        return [i for i in BROKERS if self.state[i] == "running"]

    def check_alive(self):
        """A broker that exited by itself is a finding, never silently restarted."""
        for i in BROKERS:
            if self.state[i] != "dead" and self.popen[i].poll() is not None:
                raise RuntimeError("broker %d exited on its own with %s (see broker%d.log)"
                                   % (i, self.popen[i].returncode, i))


def drop_count(listing):
    """The packets counted by the DROP rules of an `iptables -L CHAIN -v -x -n` listing."""
    total = 0
    for line in listing.splitlines()[2:]:
        fields = line.split()
        if len(fields) > 2 and fields[2] == "DROP" and fields[0].isdigit():
            total += int(fields[0])
    return total


class LoopbackFirewall:
    """The loopback backend of the network faults (NetnsFirewall is the other; both have the
    same methods, which are all a scenario calls: install, isolate, isolate_fully,
    cut_clients, drop_link, lossy, dropped, clear, remove, leftover, unavailable_reason,
    statistic_reason).

    iptables rules on the loopback that cut one broker's Raft traffic while leaving its
    client port alone. Brokers share 127.0.0.1, so a broker's OUTGOING Raft connections are
    told apart by the group id it runs under (owner match); its INCOMING ones by its Raft port.
    All rules live in one chain per run, jumped to from OUTPUT and deleted at the end."""

    def __init__(self):
        self.chain = "SKIFFCHAOS%d" % os.getpid()
        self.installed = False
        self.ever_installed = False  # only then can a rule be left behind

    @staticmethod
    def _run(*args):
        return subprocess.run(["iptables", "-w", "5"] + list(args), capture_output=True, text=True)

    def unavailable_reason(self):
        if shutil.which("iptables") is None:
            return "iptables is not installed (apt-get install -y iptables)"
        r = self._run("-N", self.chain)
        if r.returncode != 0:
            return "iptables is not permitted here: %s" % r.stderr.strip()
        self._run("-X", self.chain)
        r = self._run("-m", "owner", "--help")
        if "gid-owner" not in r.stdout:
            return "iptables has no owner match"
        return None

    def install(self):
        self.ever_installed = True  # even a half-done install must be checked for leftovers
        for args in (("-N", self.chain), ("-I", "OUTPUT", "-j", self.chain)):
            r = self._run(*args)
            if r.returncode != 0:
                raise RuntimeError("iptables %s: %s" % (" ".join(args), r.stderr.strip()))
        self.installed = self.ever_installed = True

    def isolate(self, broker, cluster):
        port = cluster.raft_port[broker]
        rules = [("-p", "tcp", "--dport", str(port)), ("-p", "tcp", "--sport", str(port))]
        for peer in BROKERS:
            if peer != broker:
                rules.append(("-m", "owner", "--gid-owner", str(BROKER_GID_BASE + broker),
                              "-p", "tcp", "--dport", str(cluster.raft_port[peer])))
        for rule in rules:
            r = self._run("-A", self.chain, *rule, "-j", "DROP")
            if r.returncode != 0:
                raise RuntimeError("iptables: %s" % r.stderr.strip())

    def isolate_fully(self, broker, cluster):
        """Everything of the broker, both ways: its Raft port and its client port (in and out),
        and every packet its own sockets send (owner match), so that neither its peers nor any
        client reach it and it reaches no one."""
        for port in (cluster.raft_port[broker], int(cluster.client[broker].rsplit(":", 1)[1])):
            self._append(("-p", "tcp", "--dport", str(port)))
            self._append(("-p", "tcp", "--sport", str(port)))
        self._append(("-m", "owner", "--gid-owner", str(BROKER_GID_BASE + broker)))

    def cut_clients(self, broker, cluster):
        """The broker's client port only, both ways (requests to it, its answers from it); its
        Raft traffic flows. Brokers use each other's client port only to forward an admin
        TransferLeadership (src/broker/cluster_services.cc), which this cuts too."""
        port = int(cluster.client[broker].rsplit(":", 1)[1])
        self._append(("-p", "tcp", "--dport", str(port)))
        self._append(("-p", "tcp", "--sport", str(port)))

    def statistic_reason(self):
        """Why random loss (-m statistic) cannot be used here, or None."""
        r = self._run("-m", "statistic", "--help")
        if "probability" not in r.stdout:
            return "iptables has no statistic match (random loss)"
        return None

    def _append(self, rule, probability=None):
        if probability is not None:
            rule = tuple(rule) + ("-m", "statistic", "--mode", "random",
                                  "--probability", "%.3f" % probability)
        r = self._run("-A", self.chain, *rule, "-j", "DROP")
        if r.returncode != 0:
            raise RuntimeError("iptables: %s" % r.stderr.strip())

    def drop_link(self, src, dst, cluster, probability=None):
        """One direction only: Raft messages from broker src to broker dst are dropped. Each
        broker sends to a peer on its own long-lived stream to the peer's Raft port (see
        src/broker/raft_transport.h), so dropping every packet that src's sockets send to dst's
        Raft port kills exactly the src->dst stream; dst->src (dst's own stream to src's port,
        and src's answers on it, which leave src's port) is untouched."""
        self._append(("-m", "owner", "--gid-owner", str(BROKER_GID_BASE + src),
                      "-p", "tcp", "--dport", str(cluster.raft_port[dst])), probability)

    def lossy(self, broker, cluster, probability):
        """Random loss on every packet of the broker's Raft traffic that the loopback's OUTPUT
        hook can tell apart: to and from its Raft port, and from its own sockets to the peers'
        Raft ports."""
        port = cluster.raft_port[broker]
        self._append(("-p", "tcp", "--dport", str(port)), probability)
        self._append(("-p", "tcp", "--sport", str(port)), probability)
        for peer in BROKERS:
            if peer != broker:
                self.drop_link(broker, peer, cluster, probability)

    def dropped(self):
        """Packets the chain's rules dropped since they were added (iptables counters)."""
        return drop_count(self._run("-L", self.chain, "-v", "-x", "-n").stdout)

    def clear(self):
        if self.installed:
            self._run("-F", self.chain)

    def remove(self):
        if not self.installed:
            return
        self._run("-D", "OUTPUT", "-j", self.chain)
        self._run("-F", self.chain)
        self._run("-X", self.chain)
        self.installed = False

    def leftover(self):
        if not self.ever_installed:
            return False
        r = self._run("-S")
        return self.chain in r.stdout


# ---- where the brokers run: the loopback, or one network namespace each ---------------------

class LoopbackNet:
    """Every broker on 127.0.0.1 with ports reserved across processes; the network faults are
    LoopbackFirewall's rules. Nothing to create or remove."""

    name = "loopback"

    def __init__(self):
        self.client, self.raft = {}, {}

    def unavailable_reason(self):
        return None

    def setup(self):
        ports = reserved_ports.reserve_ports(2 * len(BROKERS))
        for k, i in enumerate(BROKERS):
            self.client[i] = "127.0.0.1:%d" % ports[k]
            self.raft[i] = "127.0.0.1:%d" % ports[len(BROKERS) + k]

    def client_address(self, i):
        return self.client[i]

    def raft_address(self, i):
        return self.raft[i]

    def exec_prefix(self, i):
        return []

    def firewall(self):
        return LoopbackFirewall()

    def teardown(self):
        pass

    def leftover(self):
        return []


def ns_prefix():
    """Every namespace of this run is named skiffchaos-<pid>-..., so that concurrent runs never
    share one and the end-of-run check can find exactly ours."""
    return "skiffchaos-%d-" % os.getpid()


def run_ip(*args):
    return subprocess.run(["ip"] + list(args), capture_output=True, text=True, timeout=20)


def our_namespaces():
    """This run's network namespaces that exist now."""
    r = run_ip("netns", "list")
    return sorted(line.split()[0] for line in r.stdout.splitlines()
                  if line.split() and line.split()[0].startswith(ns_prefix()))


class NetnsNet:
    """Broker i in its own network namespace skiffchaos-<pid>-b<i> at SUBNET.i; a bridge
    namespace skiffchaos-<pid>-br holds the Linux bridge br0 with one veth to each broker and
    one to the root namespace (SUBNET.254), where producers, consumers and the checker's reads
    stay. Every broker listens on its own address with the same ports (the namespaces do not
    share a port space), and advertises that address. The network faults are NetnsFirewall's
    rules inside the brokers' namespaces."""

    name = "netns"
    CLIENT_PORT, RAFT_PORT = 9092, 9192
    HOST = 254  # the root namespace's address in the subnet

    def __init__(self):
        self.ns = {i: ns_prefix() + "b%d" % i for i in BROKERS}
        self.bridge = ns_prefix() + "br"
        # Interface names are at most 15 characters; the pid keeps concurrent runs apart.
        self.host_if = "skc%d" % os.getpid()
        self.subnet = None  # "10.213.Y", chosen by setup()
        self.created = False

    def unavailable_reason(self):
        if shutil.which("ip") is None:
            return "ip (iproute2) is not installed"
        if os.geteuid() != 0:
            return "network namespaces need root"
        return None

    def address(self, i):
        return "%s.%d" % (self.subnet, i)

    def client_address(self, i):
        return "%s:%d" % (self.address(i), self.CLIENT_PORT)

    def raft_address(self, i):
        return "%s:%d" % (self.address(i), self.RAFT_PORT)

    def exec_prefix(self, i):
        # `ip netns exec` enters the namespace and execs the command (no fork), so the child's
        # PID is skiffd's: signals, strace and the cpu cgroup reach the broker itself.
        return ["ip", "netns", "exec", self.ns[i]]

    def firewall(self):
        return NetnsFirewall(self)

    @staticmethod
    def _routes():
        r = run_ip("-4", "route", "show", "table", "all")
        nets = []
        for line in r.stdout.splitlines():
            dest = line.split()[0] if line.split() else ""
            if dest in ("default", "broadcast", "local", "unreachable"):
                dest = line.split()[1] if len(line.split()) > 1 else ""
            try:
                nets.append(ipaddress.ip_network(dest, strict=False))
            except ValueError:
                pass
        return nets

    def _choose_subnet(self):
        """10.213.Y.0/24, Y derived from our pid (concurrent runs start apart) and moved on
        while any route of the root namespace overlaps it (another run's, or a real network);
        the first 250 candidates only."""
        routes = [n for n in self._routes() if n.prefixlen > 0]  # a default route overlaps all
        for k in range(250):
            y = (os.getpid() + k) % 250 + 1
            candidate = ipaddress.ip_network("10.213.%d.0/24" % y)
            if not any(candidate.overlaps(n) for n in routes):
                return "10.213.%d" % y
        raise Skipped("no free 10.213.Y.0/24 subnet for the brokers' namespaces")

    def _ip(self, *args):
        r = run_ip(*args)
        if r.returncode != 0:
            raise RuntimeError("ip %s: %s" % (" ".join(args), r.stderr.strip()))

    def setup(self):
        """Creates the namespaces, the bridge and the veths. A failure half-way leaves the rest
        to teardown(), which the caller's finally runs."""
        self.subnet = self._choose_subnet()
        self.created = True  # from here on teardown() must look for what exists
        br = self.bridge
        self._ip("netns", "add", br)
        self._ip("-n", br, "link", "set", "lo", "up")
        self._ip("-n", br, "link", "add", "br0", "type", "bridge")
        self._ip("-n", br, "link", "set", "br0", "up")
        for i in BROKERS:
            ns = self.ns[i]
            self._ip("netns", "add", ns)
            self._ip("-n", ns, "link", "set", "lo", "up")
            # Created inside the bridge namespace, its peer moved straight into the broker's:
            # no interface of this run ever appears in the root namespace except host_if.
            self._ip("-n", br, "link", "add", "b%d" % i, "type", "veth", "peer", "name", "eth0",
                     "netns", ns)
            self._ip("-n", br, "link", "set", "b%d" % i, "master", "br0", "up")
            self._ip("-n", ns, "addr", "add", "%s/24" % self.address(i), "dev", "eth0")
            self._ip("-n", ns, "link", "set", "eth0", "up")
        self._ip("link", "add", self.host_if, "type", "veth", "peer", "name", "host", "netns", br)
        self._ip("-n", br, "link", "set", "host", "master", "br0", "up")
        self._ip("addr", "add", "%s/24" % self.address(self.HOST), "dev", self.host_if)
        self._ip("link", "set", self.host_if, "up")
        log("netns: brokers at %s.{%s}, this process at %s via %s; namespaces %s*"
            % (self.subnet, ",".join(str(i) for i in BROKERS), self.address(self.HOST),
               self.host_if, ns_prefix()))

    def teardown(self):
        """Deletes the root veth (its peer goes with it) and every namespace of this run (their
        veths, bridge and iptables rules go with them). Only after the brokers are dead: a
        namespace with a process in it would outlive its name."""
        if not self.created:
            return
        if run_ip("link", "show", self.host_if).returncode == 0:
            run_ip("link", "del", self.host_if)
        for ns in our_namespaces():
            run_ip("netns", "del", ns)
        self.created = False

    def leftover(self):
        left = our_namespaces()
        if run_ip("link", "show", self.host_if).returncode == 0:
            left.append(self.host_if)
        return left


class NetnsFirewall:
    """The netns backend of the network faults (same methods as LoopbackFirewall). Each broker
    has its own address, so a rule names the peer by address, and it lives in the broker's
    own namespace: chain SKIFFCHAOS there, jumped to from INPUT and OUTPUT. A rule on `-s
    PEER` only matches what arrives (INPUT), one on `-d PEER` only what leaves (OUTPUT).
    Why not on the bridge: filtering bridged frames with iptables needs br_netfilter (a host
    module and a host-wide sysctl) or ebtables/nft's bridge family; rules in the brokers'
    namespaces need nothing beyond iptables and go away with the namespaces.

    Differences from the loopback rules, which must tell the brokers apart by port and owner:
    here "isolate from the peers" drops every packet between the broker and its peers (also
    their use of its client port, for forwarded admin calls); "one way" drops every IP packet
    from one broker to another, TCP acks included, so a TCP stream the other way stalls after
    its first unacknowledged segments instead of flowing; loss hits both directions of every
    packet to and from the peers."""

    CHAIN = "SKIFFCHAOS"

    def __init__(self, net):
        self.net = net
        self.installed = set()  # brokers whose namespace has the chain

    def _run(self, broker, *args):
        return subprocess.run(["ip", "netns", "exec", self.net.ns[broker], "iptables", "-w", "5"]
                              + list(args), capture_output=True, text=True, timeout=30)

    def unavailable_reason(self):
        if shutil.which("iptables") is None:
            return "iptables is not installed (apt-get install -y iptables)"
        b = BROKERS[0]
        r = self._run(b, "-L", "INPUT", "-n")
        if r.returncode != 0:
            return "iptables does not work in a network namespace here: %s" % r.stderr.strip()
        return None

    def statistic_reason(self):
        r = self._run(BROKERS[0], "-m", "statistic", "--help")
        if "probability" not in r.stdout:
            return "iptables has no statistic match (random loss)"
        return None

    def install(self):
        for b in BROKERS:
            self.installed.add(b)  # even a half-done install must be removed
            for args in (("-N", self.CHAIN), ("-I", "INPUT", "-j", self.CHAIN),
                         ("-I", "OUTPUT", "-j", self.CHAIN)):
                r = self._run(b, *args)
                if r.returncode != 0:
                    raise RuntimeError("iptables in %s: %s: %s"
                                       % (self.net.ns[b], " ".join(args), r.stderr.strip()))

    def _append(self, broker, rule, probability=None):
        if probability is not None:
            rule = tuple(rule) + ("-m", "statistic", "--mode", "random",
                                  "--probability", "%.3f" % probability)
        r = self._run(broker, "-A", self.CHAIN, *rule, "-j", "DROP")
        if r.returncode != 0:
            raise RuntimeError("iptables in %s: %s" % (self.net.ns[broker], r.stderr.strip()))

    def _cut_from(self, broker, address, probability=None):
        """Both directions between `broker` and `address`, in the broker's namespace."""
        self._append(broker, ("-s", address), probability)
        self._append(broker, ("-d", address), probability)

    def isolate(self, broker, cluster):
        """From its peers (Raft and everything else between brokers); clients still reach it."""
        for peer in BROKERS:
            if peer != broker:
                self._cut_from(broker, self.net.address(peer))

    def isolate_fully(self, broker, cluster):
        """From everyone: its peers and the clients, both ways (its own address stays
        reachable to itself, as a whole-subnet rule would not leave it)."""
        for other in [b for b in BROKERS if b != broker] + [self.net.HOST]:
            self._cut_from(broker, self.net.address(other))

    def cut_clients(self, broker, cluster):
        """From the clients only (this process, the consumers and the final reads all come
        from the root namespace's address); its peers still reach it."""
        self._cut_from(broker, self.net.address(self.net.HOST))

    def drop_link(self, src, dst, cluster, probability=None):
        """One way: every IP packet from src to dst is dropped as it leaves src."""
        self._append(src, ("-d", self.net.address(dst)), probability)

    def lossy(self, broker, cluster, probability):
        """Random loss on everything between the broker and its peers, both ways."""
        for peer in BROKERS:
            if peer != broker:
                self._cut_from(broker, self.net.address(peer), probability)

    def dropped(self):
        return sum(drop_count(self._run(b, "-L", self.CHAIN, "-v", "-x", "-n").stdout)
                   for b in sorted(self.installed))

    def clear(self):
        for b in sorted(self.installed):
            self._run(b, "-F", self.CHAIN)

    def remove(self):
        for b in sorted(self.installed):
            if self.net.ns[b] not in our_namespaces():
                continue  # gone with its namespace
            self._run(b, "-D", "INPUT", "-j", self.CHAIN)
            self._run(b, "-D", "OUTPUT", "-j", self.CHAIN)
            self._run(b, "-F", self.CHAIN)
            self._run(b, "-X", self.CHAIN)
        self.installed.clear()

    def leftover(self):
        existing = our_namespaces()
        return any(self._run(b, "-S").stdout.count(self.CHAIN) > 0
                   for b in BROKERS if self.net.ns[b] in existing)


NETS = {"loopback": LoopbackNet, "netns": NetnsNet}


class LoopDisks:
    """Each broker's data dir on its own loop-mounted ext4 image, for power cuts. A power cut
    freezes the broker (SIGSTOP), copies its image (the copy holds only what reached the
    image: fsynced data plus whatever the kernel happened to write back, exactly what a power
    cut leaves), kills it, checks the copy with e2fsck, and mounts the copy in its place."""

    IMAGE_SIZE = "256M"

    def __init__(self, root):
        self.root = root
        self.image = {}
        self.mountpoint = {}
        self.generation = 0

    @staticmethod
    def _sh(*argv):
        return subprocess.run(list(argv), capture_output=True, text=True)

    def unavailable_reason(self):
        for tool in ("mkfs.ext4", "e2fsck", "mount", "umount"):
            if shutil.which(tool) is None:
                return "%s is not installed (e2fsprogs, mount)" % tool
        if os.geteuid() != 0:
            return "loop mounts need root"
        return None

    def create(self, broker):
        os.makedirs(os.path.join(self.root, "img"), exist_ok=True)
        img = os.path.join(self.root, "img", "b%d-0.img" % broker)
        mp = os.path.join(self.root, "disk%d" % broker)
        os.makedirs(mp, exist_ok=True)
        for argv in (("truncate", "-s", self.IMAGE_SIZE, img), ("mkfs.ext4", "-q", "-F", img)):
            r = self._sh(*argv)
            if r.returncode != 0:
                raise Skipped("%s failed: %s" % (argv[0], r.stderr.strip()))
        r = self._sh("mount", "-o", "loop", img, mp)
        if r.returncode != 0:
            raise Skipped("cannot loop-mount an ext4 image here: %s" % r.stderr.strip())
        self.image[broker], self.mountpoint[broker] = img, mp
        return os.path.join(mp, "data")

    def snapshot(self, broker):
        """The power cut itself: a copy of what the image holds now (the broker is frozen)."""
        self.generation += 1
        copy = os.path.join(self.root, "img", "b%d-%d.img" % (broker, self.generation))
        r = self._sh("cp", "--sparse=always", self.image[broker], copy)
        if r.returncode != 0:
            raise RuntimeError("cp image: %s" % r.stderr.strip())
        return copy

    def swap_in(self, broker, copy):
        """After the broker is dead: unmount the live image, repair and mount the copy."""
        self.umount(self.mountpoint[broker])
        r = self._sh("e2fsck", "-fy", copy)
        # 0: clean, 1: errors corrected (journal replayed). More: the file system is damaged.
        if r.returncode > 1:
            raise RuntimeError("e2fsck of broker %d's power-cut image exited %d: %s"
                               % (broker, r.returncode, r.stdout[-500:]))
        r = self._sh("mount", "-o", "loop", copy, self.mountpoint[broker])
        if r.returncode != 0:
            raise RuntimeError("mount of the power-cut image: %s" % r.stderr.strip())
        os.remove(self.image[broker])
        self.image[broker] = copy

    def umount(self, mp):
        for _ in range(50):
            if self._sh("umount", mp).returncode == 0 or not self.is_mounted(mp):
                return
            time.sleep(0.2)
        self._sh("umount", "-l", mp)  # last resort, so that the run never leaves a mount

    @staticmethod
    def is_mounted(path):
        with open("/proc/mounts") as f:
            return any(line.split()[1] == path for line in f)

    def unmount_all(self):
        for mp in self.mountpoint.values():
            if self.is_mounted(mp):
                self.umount(mp)

    def leftover(self):
        with open("/proc/mounts") as f:
            return [line.split()[1] for line in f if line.split()[1].startswith(self.root)]


class TmpfsDisks(LoopDisks):
    """Each broker's data dir on its own small tmpfs, for a full disk: fill() takes free space
    away with a filler file (fallocate'd, so the pages are really taken) until writes must be
    refused; free() deletes it. Unmounting and leftover checks are LoopDisks'."""

    SIZE = "512m"

    def unavailable_reason(self):
        for tool in ("mount", "umount"):
            if shutil.which(tool) is None:
                return "%s is not installed" % tool
        if os.geteuid() != 0:
            return "tmpfs mounts need root"
        return None

    def create(self, broker):
        mp = os.path.join(self.root, "disk%d" % broker)
        os.makedirs(mp, exist_ok=True)
        r = self._sh("mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % self.SIZE, "tmpfs", mp)
        if r.returncode != 0:
            raise Skipped("cannot mount a tmpfs here: %s" % r.stderr.strip())
        self.mountpoint[broker] = mp
        return os.path.join(mp, "data")

    @staticmethod
    def free_bytes(path):
        st = os.statvfs(path)
        return st.f_bavail * st.f_frsize

    def fill(self, broker, leave_bytes):
        """Takes all but about leave_bytes of the broker's tmpfs; returns the bytes taken."""
        mp = self.mountpoint[broker]
        path = os.path.join(mp, "filler")
        take = max(0, self.free_bytes(mp) - leave_bytes)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.posix_fallocate(fd, 0, take)
        finally:
            os.close(fd)
        return take

    def free(self, broker):
        path = os.path.join(self.mountpoint[broker], "filler")
        if os.path.exists(path):
            os.remove(path)


class CpuThrottle:
    """A cgroup v1 cpu controller group with a CFS quota, for a slow broker: every thread of
    the process moves into it; release() moves them back to the root group and removes it."""

    BASE = "/sys/fs/cgroup/cpu"

    def __init__(self):
        self.path = os.path.join(self.BASE, "skiffchaos%d" % os.getpid())
        self.created = False

    def unavailable_reason(self):
        if not os.path.exists(os.path.join(self.BASE, "cpu.cfs_quota_us")):
            return "no cgroup v1 cpu controller at %s" % self.BASE
        if not os.access(self.BASE, os.W_OK):
            return "cannot create cgroups under %s (needs root)" % self.BASE
        return None

    @staticmethod
    def _write(path, value):
        with open(path, "w") as f:
            f.write(str(value))

    def throttle(self, pid, quota_us, period_us=100000):
        if not self.created:
            os.mkdir(self.path)
            self.created = True
        self._write(os.path.join(self.path, "cpu.cfs_period_us"), period_us)
        self._write(os.path.join(self.path, "cpu.cfs_quota_us"), quota_us)
        self._write(os.path.join(self.path, "cgroup.procs"), pid)

    def throttled_periods(self):
        try:
            with open(os.path.join(self.path, "cpu.stat")) as f:
                return int(dict(line.split() for line in f)["nr_throttled"])
        except (OSError, KeyError, ValueError):
            return None

    def release(self):
        if not self.created or not os.path.exists(self.path):
            return
        for _ in range(50):
            try:
                with open(os.path.join(self.path, "cgroup.procs")) as f:
                    pids = [line.strip() for line in f if line.strip()]
            except OSError:
                pids = []
            for pid in pids:
                try:
                    self._write(os.path.join(self.BASE, "cgroup.procs"), pid)
                except OSError:
                    pass  # exited meanwhile
            try:
                os.rmdir(self.path)
                self.created = False
                return
            except OSError:
                time.sleep(0.1)

    def leftover(self):
        return os.path.exists(self.path)


# ---- the client side --------------------------------------------------------------------------

class Client:
    """Thin, thread-safe gRPC helpers. Timeouts are short: a SIGSTOPped broker never answers."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.channels = {}
        self.lock = threading.Lock()

    def stub(self, kind, broker):
        addr = self.cluster.client[broker]
        with self.lock:
            if addr not in self.channels:
                self.channels[addr] = grpc.insecure_channel(addr)
            channel = self.channels[addr]
        return getattr(pb[kind + "_grpc"], {"admin": "AdminServiceStub",
                                            "metadata": "MetadataServiceStub",
                                            "produce": "ProduceServiceStub",
                                            "fetch": "FetchServiceStub"}[kind])(channel)

    def close(self):
        with self.lock:
            for c in self.channels.values():
                c.close()
            self.channels.clear()

    def forget_channels(self):
        """New calls get new channels. A channel that failed to connect during a fault backs
        off its reconnects (gRPC's default grows to 2 minutes), and the final reads must not wait
        that out. The old channels are not closed: another thread may still hold one."""
        with self.lock:
            self.channels = {}

    def metadata(self, broker, timeout=0.5):
        try:
            return self.stub("metadata", broker).Metadata(
                pb["metadata"].MetadataRequest(topics=[TOPIC]), timeout=timeout)
        except grpc.RpcError:
            return None

    def health(self, broker, timeout=0.5):
        """The gRPC health service's overall status (grpc.health.v1.Health/Check with service
        ""): 1 SERVING, 2 NOT_SERVING, None when unreachable. Hand-decoded, so that no health
        stub package is needed."""
        addr = self.cluster.client[broker]
        with self.lock:
            if addr not in self.channels:
                self.channels[addr] = grpc.insecure_channel(addr)
            channel = self.channels[addr]
        try:
            raw = channel.unary_unary("/grpc.health.v1.Health/Check",
                                      request_serializer=lambda b: b,
                                      response_deserializer=lambda b: b)(b"", timeout=timeout)
        except grpc.RpcError:
            return None
        # HealthCheckResponse { ServingStatus status = 1; }: tag 0x08, then a one-byte varint.
        return raw[1] if len(raw) >= 2 and raw[0] == 0x08 else 0

    def leaders(self, brokers=None):
        """partition -> leader broker id, as the running brokers (or `brokers`) report them
        (-1 unknown)."""
        return self.leaders_and_epochs(brokers)[0]

    def leaders_and_epochs(self, brokers=None):
        """(partition -> leader, partition -> its leader epoch), as leaders() decides them."""
        out = {p: -1 for p in range(PARTITIONS)}
        epoch = {p: -1 for p in range(PARTITIONS)}
        for b in (self.cluster.reachable() if brokers is None else brokers):
            md = self.metadata(b)
            if md is None or not md.topics:
                continue
            for pm in md.topics[0].partitions:
                # The newest leadership any broker knows of wins: a broker cut off from the
                # others (e.g. one that fenced itself after a failed fsync) may still report
                # the leadership it had.
                if pm.leader > 0 and pm.leader_epoch > epoch.get(pm.partition, -1):
                    out[pm.partition], epoch[pm.partition] = pm.leader, pm.leader_epoch
        return out, epoch

    def in_sync(self, partition, leader):
        """The partition's in-sync replicas as `leader` reports them, or None."""
        md = self.metadata(leader)
        if md is None or not md.topics:
            return None
        pm = next((x for x in md.topics[0].partitions if x.partition == partition), None)
        return None if pm is None else sorted(pm.in_sync)

    def controller(self):
        for b in self.cluster.reachable():
            md = self.metadata(b)
            if md is not None and md.controller_id > 0:
                return md.controller_id
        return -1

    def whole(self):
        """Every partition led by a running broker whose own view has every replica in sync,
        and a metadata controller known."""
        views = {b: self.metadata(b) for b in self.cluster.reachable()}
        if not any(v is not None and v.controller_id > 0 for v in views.values()):
            return False
        for p in range(PARTITIONS):
            ok = False
            for b, md in views.items():
                if md is None or not md.topics:
                    continue
                pm = next((x for x in md.topics[0].partitions if x.partition == p), None)
                if pm is not None and pm.leader == b and len(pm.replicas) == 3 \
                        and sorted(pm.in_sync) == sorted(pm.replicas):
                    ok = True
            if not ok:
                return False
        return True

    def admin(self, method, request, deadline):
        last = None
        while now() < deadline:
            for b in self.cluster.reachable():
                try:
                    return getattr(self.stub("admin", b), method)(request, timeout=2)
                except grpc.RpcError as e:
                    last = e
            time.sleep(0.1)
        raise RuntimeError("admin %s failed until the deadline: %s" % (method, last))


class Ledger:
    """What the workload and the fault injector did, in the checker's history format."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sends, self.acks, self.faults, self.heals = [], [], [], []
        self.t0 = now()

    def t(self):
        return round(now() - self.t0, 4)

    def add_send(self, s):
        with self.lock:
            self.sends.append(s)

    def ack(self, key):
        with self.lock:
            self.acks.append((self.t(), key))

    def fault(self, name, keys):
        log("fault: %s (affects %s)" % (name, keys))
        f = {"t": self.t(), "name": name, "keys": list(keys)}
        with self.lock:
            self.faults.append(f)
        return f

    def heal(self, name):
        log("heal: %s" % name)
        h = {"t": self.t(), "name": name, "healed_t": None}
        with self.lock:
            self.heals.append(h)
        return h


class Producer(threading.Thread):
    """One idempotent producer: one batch in flight, retried with the same sequence until it
    is acknowledged or definitely fails; the ledger records every send's outcome."""

    def __init__(self, ctx, index, seed, only=None):
        """`only`: the one partition this producer writes to (default: all, at random)."""
        super().__init__(name="producer-%d" % index, daemon=True)
        self.ctx, self.index, self.rng = ctx, index, random.Random(seed)
        self.only = only
        self.error = None

    def run(self):
        try:
            self.produce()
        except Exception as e:  # surfaced by the runner, never swallowed
            self.error = "%s: %r" % (self.name, e)

    def produce(self):
        ctx = self.ctx
        ids = ctx.client.admin("InitProducerId", pb["admin"].InitProducerIdRequest(), ctx.deadline)
        producer, epoch = ids.producer_id, ids.producer_epoch
        next_seq = {p: 0 for p in range(PARTITIONS)}
        # A partition that rejected a batch is left alone.
        usable = set(range(PARTITIONS)) if self.only is None else {self.only}
        leader = {p: -1 for p in range(PARTITIONS)}
        n = 0
        while not ctx.stop_producing.is_set() and usable and now() < ctx.deadline:
            p = self.rng.choice(sorted(usable))
            probe = self.rng.random() < 0.02
            count = 1 if probe else self.rng.randint(1, 4)
            n += 1
            nonce = "%s%d.%d" % ("f" if probe else "a", self.index, n)
            s = {"producer": producer, "partition": p, "seq": next_seq[p], "status": "unknown",
                 "offset": None, "probe": probe, "attempts": 0, "error": "", "trail": [],
                 "values": [checker.make_value(producer, p, next_seq[p] + k, nonce,
                                               self.rng.randint(0, 64)) for k in range(count)],
                 "invoke_t": ctx.ledger.t(), "done_t": None}
            ctx.ledger.add_send(s)
            rs = pb["records"].RecordSet(records=[pb["records"].Record(value=v) for v in s["values"]])
            batch = pb["records"].RecordBatch(record_count=count, producer_id=producer,
                                              producer_epoch=epoch, base_sequence=s["seq"],
                                              records=rs.SerializeToString())
            if probe:
                batch.crc32c = 1  # wrong for these bytes: CORRUPT_BATCH, nothing written
            request = pb["produce"].ProduceRequest(
                acks=pb["produce"].ACKS_ALL, timeout_ms=1500,
                batches=[pb["produce"].PartitionBatch(topic=TOPIC, partition=p, batch=batch)])
            self.deliver(s, request, leader)
            if s["status"] == "acked":
                next_seq[p] += count
            elif s["status"] == "rejected":
                usable.discard(p)
            elif s["status"] == "unknown":
                break  # gave up at the end of the run: the sequence can no longer advance
            time.sleep(ctx.pace_s)

    @staticmethod
    def trail(s, sent_t, broker, outcome):
        """The first attempts of a send, for the evidence: (sent at, broker, outcome)."""
        if len(s["trail"]) < 8:
            s["trail"].append((sent_t, broker, outcome))

    def deliver(self, s, request, leader):
        ctx, p = self.ctx, s["partition"]
        while True:
            give_up = ctx.give_up_t if ctx.give_up_t is not None else ctx.deadline
            if now() >= give_up or now() >= ctx.deadline:
                return  # stays "unknown"
            if leader[p] < 0 or ctx.cluster.state[leader[p]] == "dead":
                leader[p] = ctx.client.leaders().get(p, -1)
                if leader[p] < 0:
                    time.sleep(0.05)
                    continue
            s["attempts"] += 1
            sent_t = ctx.ledger.t()
            try:
                r = ctx.client.stub("produce", leader[p]).Produce(request, timeout=2).results[0]
            except grpc.RpcError as e:
                self.trail(s, sent_t, leader[p], str(e.code()))
                if e.code() == grpc.StatusCode.INVALID_ARGUMENT:
                    s["status"] = "failed" if s["probe"] else "rejected"
                    s["error"] = "INVALID_ARGUMENT: %s" % e.details()
                    s["done_t"] = ctx.ledger.t()
                    return
                s["error"] = str(e.code())  # outcome unknown: retry the same sequence
                # The broker may be frozen or gone: forget it for every partition, or the next
                # send to another partition it led waits out a deadline too.
                failed_broker = leader[p]
                for q in leader:
                    if leader[q] == failed_broker:
                        leader[q] = -1
                time.sleep(0.05)
                continue
            name = error_name(r.error)
            self.trail(s, sent_t, leader[p], name)
            ctx.count_error(name)
            if r.error == 0:
                s["status"], s["offset"], s["done_t"] = "acked", r.base_offset, ctx.ledger.t()
                ctx.ledger.ack(p)
                return
            s["error"] = "%s: %s" % (name, r.error_message)
            if name in DEFINITE_ERRORS:
                s["status"] = "failed" if s["probe"] else "rejected"
                s["done_t"] = ctx.ledger.t()
                return
            if name in ("OUT_OF_SEQUENCE", "PRODUCER_FENCED", "UNKNOWN_TOPIC", "UNKNOWN_PARTITION"):
                # A probe never gets here (its CRC fails first); for a real batch this means
                # the broker forgot a batch it acknowledged, or the topic: a finding.
                s["status"] = "rejected"
                s["done_t"] = ctx.ledger.t()
                return
            hint = r.leader.broker_id
            if name == "STORAGE_ERROR":
                hint = -1  # a broker whose storage failed: ask the cluster who leads now
            leader[p] = hint if hint > 0 and ctx.cluster.state.get(hint) != "dead" else -1
            time.sleep(0.02 if hint > 0 else 0.05)


class MetadataProbe(threading.Thread):
    """Writes to the metadata log (InitProducerId) every 100 ms, recording each success as an
    acknowledged write of key "metadata": the metadata group's availability."""

    def __init__(self, ctx):
        super().__init__(name="metadata-probe", daemon=True)
        self.ctx = ctx
        self.stop = threading.Event()

    def run(self):
        ctx, i = self.ctx, 0
        while not self.stop.is_set() and now() < ctx.deadline:
            brokers = ctx.cluster.reachable()
            if brokers:
                b = brokers[i % len(brokers)]
                i += 1
                try:
                    ctx.client.stub("admin", b).InitProducerId(
                        pb["admin"].InitProducerIdRequest(), timeout=1)
                    ctx.ledger.ack("metadata")
                except grpc.RpcError:
                    pass
            self.stop.wait(0.1)


# ---- consumers --------------------------------------------------------------------------------

def consume_main(args):
    """One consumer process: reads args.partition from its leader by offset, starting at its
    checkpoint, and appends what it reads to args.out ("start N", then "OFFSET HEX" lines)
    before advancing the checkpoint. SIGKILL at any moment loses at most the position of the
    last fetch, so a restart re-reads but never skips."""
    load_stubs(args.gen)
    brokers = args.brokers.split(",")
    start = 0
    if os.path.exists(args.checkpoint):
        with open(args.checkpoint) as f:
            start = int(f.read().strip() or 0)
    out = open(args.out, "ab")
    out.write(b"start %d\n" % start)
    out.flush()
    position, leader, channels = start, None, {}
    deadline = now() + args.deadline_s

    def stub(addr):
        if addr not in channels:
            channels[addr] = grpc.insecure_channel(addr)
        return pb["fetch_grpc"].FetchServiceStub(channels[addr])

    while now() < deadline:
        if leader is None:
            for addr in brokers:
                try:
                    md = pb["metadata_grpc"].MetadataServiceStub(channels.setdefault(
                        addr, grpc.insecure_channel(addr))).Metadata(
                            pb["metadata"].MetadataRequest(topics=[args.topic]), timeout=0.5)
                except grpc.RpcError:
                    continue
                pm = [x for x in md.topics[0].partitions if x.partition == args.partition] \
                    if md.topics else []
                if pm and pm[0].leader > 0:
                    leader = next((b.address for b in md.brokers if b.id == pm[0].leader), None)
                    if leader:
                        break
            if leader is None:
                time.sleep(0.1)
                continue
        try:
            f = stub(leader).Fetch(pb["fetch"].FetchRequest(
                topic=args.topic, partition=args.partition, offset=position, max_bytes=256 << 10,
                max_wait_ms=300), timeout=2)
        except grpc.RpcError:
            leader = None
            time.sleep(0.05)
            continue
        if f.error != 0:
            leader = f.leader.address or None
            time.sleep(0.05)
            continue
        lines = []
        for bt in f.batches:
            for k, r in enumerate(pb["records"].RecordSet.FromString(bt.records).records):
                offset = bt.base_offset + k
                if offset >= position:
                    # Recorded as served, gap or not: the checker judges, not the consumer.
                    lines.append(b"%d %s\n" % (offset, r.value.hex().encode()))
                    position = offset + 1
        if lines:
            out.write(b"".join(lines))
            out.flush()
            tmp = args.checkpoint + ".tmp"
            with open(tmp, "w") as cp:
                cp.write(str(position))
            os.replace(tmp, args.checkpoint)
    return 0


def parse_consumer_log(path):
    """The sessions of one consumer log: [{"start", "records": [(offset, value)]}]."""
    sessions = []
    if not os.path.exists(path):
        return sessions
    with open(path, "rb") as f:
        data = f.read()
    for line in data.split(b"\n")[:-1]:  # a last line without newline was cut by SIGKILL
        if line.startswith(b"start "):
            sessions.append({"start": int(line.split()[1]), "records": []})
        elif line and sessions:
            offset, value = line.split(b" ")
            sessions[-1]["records"].append((int(offset), bytes.fromhex(value.decode())))
    return sessions


class Consumers:
    def __init__(self, ctx):
        self.ctx = ctx
        self.popen = {}
        self.dir = os.path.join(ctx.root, "consumers")
        os.makedirs(self.dir, exist_ok=True)
        self.restarts = 0

    def start(self, p):
        ctx = self.ctx
        self.popen[p] = ctx.procs.spawn(
            ["/usr/bin/python3", os.path.abspath(__file__), "consume", "--gen", ctx.gen_dir,
             "--brokers", ",".join(ctx.cluster.client[b] for b in BROKERS), "--topic", TOPIC,
             "--partition", str(p), "--checkpoint", os.path.join(self.dir, "p%d.pos" % p),
             "--out", os.path.join(self.dir, "p%d.log" % p),
             "--deadline-s", str(max(1, int(ctx.deadline - now())))],
            os.path.join(self.dir, "p%d.stderr" % p))

    def start_all(self):
        for p in range(PARTITIONS):
            self.start(p)

    def kill(self, p):
        proc = self.popen.pop(p)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def position(self, p):
        try:
            with open(os.path.join(self.dir, "p%d.pos" % p)) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return 0

    def stop_all(self):
        for p in list(self.popen):
            self.kill(p)

    def sessions(self):
        return {p: parse_consumer_log(os.path.join(self.dir, "p%d.log" % p))
                for p in range(PARTITIONS)}


class ConsumerChaos(threading.Thread):
    """Kills a random consumer with SIGKILL every 3-6 s and restarts it from its checkpoint."""

    def __init__(self, ctx, consumers, rng):
        super().__init__(name="consumer-chaos", daemon=True)
        self.ctx, self.consumers, self.rng = ctx, consumers, rng
        self.stop = threading.Event()
        self.lock = threading.Lock()  # held while a consumer is down, so stop waits for it

    def run(self):
        while not self.stop.wait(self.rng.uniform(3, 6)) and now() < self.ctx.deadline:
            p = self.rng.randrange(PARTITIONS)
            with self.lock:
                if self.stop.is_set():
                    return
                self.consumers.kill(p)
                time.sleep(self.rng.uniform(0.1, 0.5))
                self.consumers.start(p)
                self.consumers.restarts += 1


# ---- a scenario run ---------------------------------------------------------------------------

class Skipped(Exception):
    pass


class Context:
    """Everything a scenario function needs: the cluster, the client, the ledger, the seeded
    random source, and helpers that record faults and heals."""

    def __init__(self, args, name, seed, root, procs):
        self.args, self.name, self.seed, self.root, self.procs = args, name, seed, root, procs
        self.rng = random.Random(seed)
        self.ledger = Ledger()
        self.net = NETS[args.net]()
        self.cluster = Cluster(args.skiffd, root, procs, self.net, args.broker_flag)
        self.client = Client(self.cluster)
        self.gen_dir = args.gen_dir
        self.stop_producing = threading.Event()
        self.give_up_t = None
        self.pace_s = 0.002
        self.duration = args.duration
        # Hard bound of the whole run: CI rounds take about a minute, --duration adds its own.
        self.deadline = (now() + STARTUP_S + 120 + args.duration * 2 + PRODUCER_GRACE_S + WHOLE_S
                         + DRAIN_S)
        self.firewall = self.net.firewall()
        self.disks = None  # LoopDisks or TmpfsDisks, for scenarios marked needs_disks
        self.throttle = CpuThrottle()
        self.cleanups = []  # scenario-specific undo actions, run in reverse in finally
        self.errors = {}  # produce error name -> how often a broker answered it
        self.errors_lock = threading.Lock()
        self.notes = []  # what the scenario observed of its own fault (printed, kept)
        self.producers, self.consumers = [], None  # set by run_scenario
        self.replica_sets = {}  # partition -> its 3 replicas, set by load_replica_sets
        # Liveness a scenario requires besides safety (e.g. "the partition kept being written
        # while only a follower was broken"): each unmet requirement fails the run like a
        # violation, with the checker's verdict still computed and printed.
        self.unmet = []

    def count_error(self, name):
        with self.errors_lock:
            self.errors[name] = self.errors.get(name, 0) + 1

    def error_count(self, name):
        with self.errors_lock:
            return self.errors.get(name, 0)

    def note(self, msg):
        log("note: " + msg)
        self.notes.append(msg)

    def require(self, ok, msg):
        """A liveness requirement of the scenario; an unmet one fails the run."""
        if not ok:
            log("UNMET: " + msg)
            self.unmet.append(msg)

    def acks_between(self, t0, t1):
        """key -> acknowledged writes with ledger time in [t0, t1)."""
        with self.ledger.lock:
            acks = list(self.ledger.acks)
        out = {}
        for t, key in acks:
            if t0 <= t < t1:
                out[key] = out.get(key, 0) + 1
        return out

    def latency_between(self, t0, t1, keys):
        """(acknowledged sends to partitions `keys` invoked in [t0, t1), p50 ms, p99 ms, max ms)
        of their latency, retries included."""
        with self.ledger.lock:
            sends = list(self.ledger.sends)
        lat = sorted(s["done_t"] - s["invoke_t"] for s in sends
                     if s["status"] == "acked" and not s["probe"] and t0 <= s["invoke_t"] < t1
                     and s["done_t"] is not None and s["partition"] in keys)
        if not lat:
            return 0, None, None, None

        def pct(q):
            return round(1000 * lat[min(len(lat) - 1, int(q * len(lat)))], 1)
        return len(lat), pct(0.5), pct(0.99), round(1000 * lat[-1], 1)

    def sleep(self, seconds):
        """Let the workload run; a broker that died on its own ends the scenario."""
        end = min(now() + seconds, self.deadline)
        while now() < end:
            self.cluster.check_alive()
            time.sleep(min(0.1, max(0, end - now())))

    def power_cut(self, brokers):
        """Cuts the power of `brokers` at the same instant: freeze all, copy all images, kill
        all, then put each repaired copy in place. They stay down until started again."""
        for b in brokers:
            self.cluster.sigstop(b)
        copies = {b: self.disks.snapshot(b) for b in brokers}
        for b in brokers:
            self.cluster.kill9(b)
        for b in brokers:
            self.disks.swap_in(b, copies[b])

    def load_replica_sets(self, timeout_s=STARTUP_S):
        """Each partition's replicas (replication factor 3), as the brokers' metadata names
        them once the topic exists; replicas never move, so this is read once. With 3
        brokers every partition is on all of them; with 5, victims must be chosen among a
        partition's own replicas (see followers())."""
        end = min(now() + timeout_s, self.deadline)
        while now() < end:
            for b in self.cluster.reachable():
                md = self.client.metadata(b)
                if md is None or not md.topics:
                    continue
                sets = {pm.partition: sorted(pm.replicas) for pm in md.topics[0].partitions
                        if len(pm.replicas) == 3}
                if len(sets) == PARTITIONS:
                    self.replica_sets = sets
                    return
            time.sleep(0.05)
        raise RuntimeError("the topic's replicas are not known after %ds" % timeout_s)

    def replicas(self, partition):
        return list(self.replica_sets[partition])

    def followers(self, partition, leader):
        """The partition's replicas other than `leader`, in id order (with 3 brokers: the two
        other brokers, exactly as before --brokers existed, so seeds choose the same)."""
        return [b for b in self.replicas(partition) if b != leader]

    def keys_led_by(self, broker):
        return [p for p, b in self.client.leaders().items() if b == broker]

    def wait_leader(self, partition, timeout_s=30, avoid=None):
        end = min(now() + timeout_s, self.deadline)
        while now() < end:
            b = self.client.leaders().get(partition, -1)
            if b > 0 and b != avoid:
                return b
            time.sleep(0.05)
        raise RuntimeError("partition %d has no leader after %ds" % (partition, timeout_s))

    def wait_whole(self, heal, timeout_s=WHOLE_S):
        """Records in `heal` when every partition is led and fully in sync again."""
        end = min(now() + timeout_s, self.deadline)
        while now() < end:
            self.cluster.check_alive()
            if self.client.whole():
                heal["healed_t"] = self.ledger.t()
                log("whole again after %.2fs" % (heal["healed_t"] - heal["t"]))
                return True
            time.sleep(0.05)
        log("NOT whole %ds after heal %r" % (timeout_s, heal["name"]))
        return False


SCENARIOS = {}
CORE = ("leader_kill", "metadata_leader_kill", "zombie_leader", "leader_isolation", "power_cut",
        "cluster_power_cut", "pause_minority_power_cut")


def scenario(fn):
    SCENARIOS[fn.__name__[len("scenario_"):]] = fn
    return fn


def rounds_for(ctx, ci_rounds, round_s):
    """CI mode runs ci_rounds; --duration longer than that many rounds runs more."""
    return max(ci_rounds, int(ctx.duration / round_s))


@scenario
def scenario_leader_kill(ctx):
    """kill -9 the leader of a partition, restart it; 5 times in a row (partition rotates)."""
    for r in range(rounds_for(ctx, 5, 7)):
        ctx.sleep(2)
        p = r % PARTITIONS
        victim = ctx.wait_leader(p)
        keys = ctx.keys_led_by(victim) or [p]
        ctx.ledger.fault("kill -9 broker %d (leader of p%d)" % (victim, p), keys)
        ctx.cluster.kill9(victim)
        ctx.sleep(2)
        heal = ctx.ledger.heal("restart broker %d" % victim)
        ctx.cluster.start(victim)
        ctx.wait_whole(heal)


@scenario
def scenario_metadata_leader_kill(ctx):
    """kill -9 the metadata group's leader (the controller), restart it; 3 times. A probe
    writes to the metadata log every 100 ms to measure its unavailability."""
    probe = MetadataProbe(ctx)
    probe.start()
    ctx.cleanups.append(lambda: (probe.stop.set(), probe.join(5)))
    for _ in range(rounds_for(ctx, 3, 9)):
        ctx.sleep(3)
        end = now() + 30
        victim = ctx.client.controller()
        while victim < 0 and now() < end:
            time.sleep(0.05)
            victim = ctx.client.controller()
        if victim < 0:
            raise RuntimeError("no metadata controller known")
        keys = ["metadata"] + ctx.keys_led_by(victim)
        ctx.ledger.fault("kill -9 broker %d (metadata controller)" % victim, keys)
        ctx.cluster.kill9(victim)
        ctx.sleep(2.5)
        heal = ctx.ledger.heal("restart broker %d" % victim)
        ctx.cluster.start(victim)
        ctx.wait_whole(heal)


@scenario
def scenario_zombie_leader(ctx):
    """SIGSTOP a partition leader for ~3 election timeouts while producers keep writing (to it
    and, once they give up on it, to its successor), then SIGCONT: the zombie must not
    acknowledge or keep anything the new leader does not have. 3 times."""
    for r in range(rounds_for(ctx, 3, 9)):
        ctx.sleep(2)
        p = r % PARTITIONS
        victim = ctx.wait_leader(p)
        keys = ctx.keys_led_by(victim) or [p]
        ctx.ledger.fault("SIGSTOP broker %d (leader of p%d)" % (victim, p), keys)
        ctx.cluster.sigstop(victim)
        ctx.cleanups.append(lambda v=victim: ctx.cluster.state[v] == "stopped" and ctx.cluster.sigcont(v))
        ctx.sleep(max(3.0, 3 * ELECTION_TIMEOUT_MAX_S))
        heal = ctx.ledger.heal("SIGCONT broker %d" % victim)
        ctx.cluster.sigcont(victim)
        ctx.wait_whole(heal)


@scenario
def scenario_leader_isolation(ctx):
    """Cut a partition leader's Raft traffic (both directions) with iptables while clients
    still reach it, for ~4 s; then remove the rules. 3 times."""
    reason = ctx.firewall.unavailable_reason()
    if reason:
        raise Skipped(reason)
    ctx.firewall.install()
    ctx.cleanups.append(ctx.firewall.remove)
    for r in range(rounds_for(ctx, 3, 10)):
        ctx.sleep(2)
        p = r % PARTITIONS
        victim = ctx.wait_leader(p)
        keys = ctx.keys_led_by(victim) or [p]
        ctx.ledger.fault("isolate broker %d's raft port (leader of p%d)" % (victim, p), keys)
        ctx.firewall.isolate(victim, ctx.cluster)
        ctx.sleep(4)
        heal = ctx.ledger.heal("remove iptables rules for broker %d" % victim)
        ctx.firewall.clear()
        ctx.wait_whole(heal)


def needs_disks(fn):
    fn.needs_disks = "loop"
    return fn


def needs_tmpfs(fn):
    fn.needs_disks = "tmpfs"
    return fn


def three_brokers_only(why):
    """Marks a scenario that cannot run with more than 3 brokers, and why."""
    def mark(fn):
        fn.three_brokers_only = why
        return fn
    return mark


@scenario
@needs_disks
def scenario_power_cut(ctx):
    """Power cut of a partition leader (its data dir is a loop-mounted ext4 image: unsynced
    writes are lost), restart from what its disk kept; 3 times."""
    for r in range(rounds_for(ctx, 3, 9)):
        ctx.sleep(2)
        p = r % PARTITIONS
        victim = ctx.wait_leader(p)
        keys = ctx.keys_led_by(victim) or [p]
        ctx.ledger.fault("power cut broker %d (leader of p%d)" % (victim, p), keys)
        ctx.power_cut([victim])
        ctx.sleep(1.5)
        heal = ctx.ledger.heal("restart broker %d from its power-cut disk" % victim)
        ctx.cluster.start(victim)
        ctx.wait_whole(heal)


@scenario
@needs_disks
def scenario_cluster_power_cut(ctx):
    """Correlated power cut of all three brokers at once (a rack losing power), restart all
    from what their disks kept; twice. With --sync=every_commit nothing acknowledged may go."""
    for r in range(rounds_for(ctx, 2, 12)):
        # The first cut comes once a few thousand records are acknowledged. (A broker run with
        # --sync=never loses even the topic: ext4 may keep unsynced data unwritten for 30 s.)
        ctx.sleep(8 if r == 0 else 3)
        ctx.ledger.fault("power cut of all brokers", list(range(PARTITIONS)))
        ctx.power_cut(list(BROKERS))
        ctx.sleep(1)
        heal = ctx.ledger.heal("restart all brokers from their power-cut disks")
        for b in BROKERS:
            ctx.cluster.start(b)
        ctx.wait_whole(heal)


# ---- compound, network, CPU, disk and clock faults ----------------------------------------------

@scenario
@needs_disks
def scenario_pause_minority_power_cut(ctx):
    """SIGSTOP one follower (a minority) while writes continue, power-cut another broker, SIGCONT
    the paused one, then restart the cut one from what its disk kept: the compound schedule
    that lost acknowledged writes in NATS JetStream (Jepsen). The paused broker is stale, the
    cut one may have lost unsynced data; together they are a majority. The cut broker alternates
    between the partition's leader and its other follower; 3 times."""
    for r in range(rounds_for(ctx, 3, 12)):
        ctx.sleep(2)
        p = r % PARTITIONS
        leader = ctx.wait_leader(p)
        followers = ctx.followers(p, leader)
        paused = ctx.rng.choice(followers)
        cut = leader if r % 2 == 0 else next(b for b in followers if b != paused)
        # With two of three brokers out, no partition can commit: every key is affected.
        ctx.ledger.fault("SIGSTOP broker %d (follower of p%d), power cut broker %d (%s of p%d)"
                         % (paused, p, cut, "leader" if cut == leader else "follower", p),
                         list(range(PARTITIONS)))
        ctx.cluster.sigstop(paused)
        ctx.cleanups.append(lambda v=paused: ctx.cluster.state[v] == "stopped" and ctx.cluster.sigcont(v))
        ctx.sleep(3)  # the paused follower falls behind; the other two acknowledge writes
        ctx.power_cut([cut])
        ctx.sleep(1.5)  # one broker left running: no quorum anywhere
        heal = ctx.ledger.heal("SIGCONT broker %d, then restart broker %d from its power-cut disk"
                               % (paused, cut))
        ctx.cluster.sigcont(paused)
        ctx.sleep(1)  # the stale broker and the intact one alone
        ctx.cluster.start(cut)
        ctx.wait_whole(heal)


def use_firewall(ctx, statistic=False):
    reason = ctx.firewall.unavailable_reason()
    if reason is None and statistic:
        reason = ctx.firewall.statistic_reason()
    if reason:
        raise Skipped(reason)
    ctx.firewall.install()
    ctx.cleanups.append(ctx.firewall.remove)


@scenario
def scenario_asymmetric_partition(ctx):
    """One-way links (iptables on the loopback, one direction only) between a partition
    leader and one of its followers for ~5 s; 4 rounds alternating: the leader's messages
    reach the follower but the follower's answers never reach the leader; then the leader's
    messages are lost while the follower's still arrive (the follower times out and campaigns
    at a leader that can hear it)."""
    use_firewall(ctx)
    for r in range(rounds_for(ctx, 4, 9)):
        ctx.sleep(2)
        p = r % PARTITIONS
        leader = ctx.wait_leader(p)
        follower = ctx.rng.choice(ctx.followers(p, leader))
        src, dst = (follower, leader) if r % 2 == 0 else (leader, follower)
        keys = sorted(set(ctx.keys_led_by(leader) + ctx.keys_led_by(follower))) or [p]
        ctx.ledger.fault("drop raft traffic broker %d -> broker %d only (leader of p%d is %d)"
                         % (src, dst, p, leader), keys)
        ctx.firewall.drop_link(src, dst, ctx.cluster)
        ctx.sleep(5)
        dropped = ctx.firewall.dropped()
        ctx.note("%d -> %d: %d packets dropped" % (src, dst, dropped))
        heal = ctx.ledger.heal("remove the one-way drop %d -> %d" % (src, dst))
        ctx.firewall.clear()
        if dropped == 0:
            raise RuntimeError("no packet was dropped: no fault happened")
        ctx.wait_whole(heal)


@scenario
def scenario_bridge_partition(ctx):
    """A bridge: two brokers cannot reach each other (Raft traffic dropped both ways) while the
    third reaches both, for ~6 s; round 1 cuts 1 from 2 (3 is the bridge), then the bridge
    rotates; 3 times."""
    use_firewall(ctx)
    for r in range(rounds_for(ctx, 3, 10)):
        ctx.sleep(2)
        # Among the replicas of one partition (with 3 brokers: all of them, and p0's replicas
        # are 1, 2, 3, so round 1 still cuts 1 from 2 with 3 as the bridge).
        replicas = ctx.replicas(r % PARTITIONS)
        bridge = replicas[(r + 2) % len(replicas)]
        a, b = [x for x in replicas if x != bridge]
        ctx.ledger.fault("cut broker %d from broker %d (broker %d bridges them)" % (a, b, bridge),
                         list(range(PARTITIONS)))
        ctx.firewall.drop_link(a, b, ctx.cluster)
        ctx.firewall.drop_link(b, a, ctx.cluster)
        ctx.sleep(6)
        dropped = ctx.firewall.dropped()
        ctx.note("%d <-> %d: %d packets dropped" % (a, b, dropped))
        heal = ctx.ledger.heal("reconnect brokers %d and %d" % (a, b))
        ctx.firewall.clear()
        if dropped == 0:
            raise RuntimeError("no packet was dropped: no fault happened")
        ctx.wait_whole(heal)


@scenario
def scenario_packet_loss(ctx):
    """20% random packet loss (iptables -m statistic) on a partition leader's Raft traffic, in
    and out, for ~20 s; once (more with --duration)."""
    use_firewall(ctx, statistic=True)
    for r in range(rounds_for(ctx, 1, 25)):
        ctx.sleep(2)
        p = r % PARTITIONS
        leader = ctx.wait_leader(p)
        keys = ctx.keys_led_by(leader) or [p]
        ctx.ledger.fault("20%% loss on broker %d's raft traffic (leader of p%d)" % (leader, p), keys)
        ctx.firewall.lossy(leader, ctx.cluster, 0.2)
        ctx.sleep(20)
        dropped = ctx.firewall.dropped()
        ctx.note("broker %d: %d packets dropped at random" % (leader, dropped))
        heal = ctx.ledger.heal("remove the loss on broker %d" % leader)
        ctx.firewall.clear()
        if dropped == 0:
            raise RuntimeError("no packet was dropped: no fault happened")
        ctx.wait_whole(heal)


@scenario
def scenario_slow_broker(ctx):
    """A partition leader gets 5% of one core (cgroup v1 cpu.cfs_quota_us 5000 per 100000)
    for ~20 s: it misses its heartbeats and answers slowly, but is neither dead nor cut off;
    then its share comes back; once (more with --duration)."""
    reason = ctx.throttle.unavailable_reason()
    if reason:
        raise Skipped(reason)
    ctx.cleanups.append(ctx.throttle.release)
    for r in range(rounds_for(ctx, 1, 25)):
        ctx.sleep(2)
        p = r % PARTITIONS
        leader = ctx.wait_leader(p)
        keys = ctx.keys_led_by(leader) or [p]
        ctx.ledger.fault("5%% of a core for broker %d (leader of p%d)" % (leader, p), keys)
        ctx.throttle.throttle(ctx.cluster.popen[leader].pid, 5000)
        ctx.sleep(20)
        throttled = ctx.throttle.throttled_periods()
        ctx.note("broker %d was throttled in %s CFS periods of 100 ms" % (leader, throttled))
        heal = ctx.ledger.heal("give broker %d its cpu back" % leader)
        ctx.throttle.release()
        if not throttled:
            raise RuntimeError("the cpu quota never throttled broker %d: no fault happened" % leader)
        ctx.wait_whole(heal)


@scenario
@needs_tmpfs
def scenario_leader_disk_full(ctx):
    """Each broker's data dir is a 512 MiB tmpfs. A partition leader's disk is filled (a
    fallocate'd file leaves 32 MiB, under skiffd's 64 MiB reserve) for ~6 s: it must refuse
    writes (STORAGE_FULL) or hand its leadership over, and writes must resume once the file
    is deleted; twice."""
    for r in range(rounds_for(ctx, 2, 15)):
        ctx.sleep(2)
        p = r % PARTITIONS
        leader = ctx.wait_leader(p)
        keys = ctx.keys_led_by(leader) or [p]
        before = ctx.error_count("STORAGE_FULL")
        ctx.ledger.fault("fill broker %d's disk (leader of p%d)" % (leader, p), keys)
        taken = ctx.disks.fill(leader, 32 << 20)
        ctx.cleanups.append(lambda v=leader: ctx.disks.free(v))
        ctx.sleep(6)
        full = ctx.error_count("STORAGE_FULL") - before
        moved = ctx.client.leaders().get(p, -1)
        ctx.note("broker %d: %d MiB taken, %d MiB free; %d STORAGE_FULL answers; p%d led by %d"
                 % (leader, taken >> 20, TmpfsDisks.free_bytes(ctx.disks.mountpoint[leader]) >> 20,
                    full, p, moved))
        heal = ctx.ledger.heal("free broker %d's disk" % leader)
        ctx.disks.free(leader)
        if full == 0 and moved == leader:
            raise RuntimeError("broker %d's full disk was never noticed (no STORAGE_FULL, still "
                               "leads p%d): no fault happened" % (leader, p))
        ctx.wait_whole(heal)


def stop_tracer(tracer):
    """strace detaches from its tracee on SIGTERM; bounded."""
    if tracer.poll() is None:
        tracer.terminate()
        try:
            tracer.wait(timeout=10)
        except subprocess.TimeoutExpired:
            tracer.kill()
            tracer.wait(timeout=10)


@scenario
def scenario_fsync_eio(ctx):
    """strace attaches to a partition leader and fails every fdatasync/fsync with EIO: its
    storage must refuse writes until a restart, report NOT_SERVING on the health service, and
    the other brokers must elect around it. Then strace detaches and the broker is restarted
    (SIGTERM, start: a healthy disk) and must catch up; twice."""
    reason = strace_reason()
    if reason:
        raise Skipped(reason)
    for r in range(rounds_for(ctx, 2, 20)):
        ctx.sleep(2)
        p = r % PARTITIONS
        leader = ctx.wait_leader(p)
        keys = ctx.keys_led_by(leader) or [p]
        ctx.ledger.fault("fdatasync/fsync fail with EIO on broker %d (leader of p%d)" % (leader, p),
                         keys)
        t0 = now()
        tracer, _ = attach_strace(ctx, leader, "error=EIO", "b%d-r%d" % (leader, r))
        wait_not_serving(ctx, leader, tracer, t0)
        led = elect_around(ctx, leader)
        ctx.note("%.2fs after the fault, the other brokers report leaders %s; broker %d itself "
                 "reports %s" % (now() - t0, led, leader, ctx.client.leaders([leader])))
        ctx.sleep(3)
        heal = ctx.ledger.heal("restart broker %d without strace" % leader)
        restart_without_tracer(ctx, leader, tracer)
        ctx.wait_whole(heal)


def strace_reason():
    if shutil.which("strace") is None:
        return "strace is not installed (apt-get install -y strace)"
    if os.geteuid() != 0:
        return "attaching strace to the broker needs root"
    return None


def attach_strace(ctx, broker, inject, label):
    """strace -f on a running broker, tracing fdatasync/fsync (and injecting `inject`, if any);
    its output goes to strace-LABEL.log in the run's root. Detached by stop_tracer (registered
    as a cleanup)."""
    out = os.path.join(ctx.root, "strace-%s.log" % label)
    argv = ["strace", "-f", "-qq", "-o", out, "-e", "trace=fdatasync,fsync"]
    if inject:
        argv += ["-e", "inject=fdatasync,fsync:" + inject]
    tracer = ctx.procs.spawn(argv + ["-p", str(ctx.cluster.popen[broker].pid)],
                             os.path.join(ctx.root, "strace.stderr"))
    ctx.cleanups.append(lambda t=tracer: stop_tracer(t))
    return tracer, out


def wait_not_serving(ctx, broker, tracer, t0):
    """Requires NOT_SERVING on the broker's health service within 15 s of its syncs failing."""
    status, end = None, now() + 15
    while now() < end:
        ctx.cluster.check_alive()
        if tracer.poll() is not None:
            raise RuntimeError("strace exited with %s (see strace.stderr)" % tracer.returncode)
        status = ctx.client.health(broker)
        if status == 2:
            break
        time.sleep(0.1)
    if status != 2:
        raise RuntimeError("broker %d never reported NOT_SERVING within 15 s of its syncs "
                           "failing (health status %s)" % (broker, status))
    ctx.note("broker %d NOT_SERVING %.2fs after strace attached" % (broker, now() - t0))


def elect_around(ctx, broker):
    """Requires that, as the other brokers see it, no partition is led by `broker` within 15 s;
    returns their view of the leaders."""
    others = [b for b in BROKERS if b != broker]
    end = now() + 15
    while now() < end:
        led = ctx.client.leaders(others)
        if all(b in others for b in led.values()):
            return led
        ctx.sleep(0.1)
    raise RuntimeError("the cluster did not elect around broker %d within 15 s (leaders %s)"
                       % (broker, led))


def restart_without_tracer(ctx, broker, tracer):
    """strace detaches; the broker is stopped (SIGTERM, bounded) and started on a healthy disk."""
    stop_tracer(tracer)
    t1 = now()
    try:
        rc = ctx.cluster.sigterm(broker, timeout_s=15)
        ctx.note("broker %d exited %s %.2fs after SIGTERM" % (broker, rc, now() - t1))
    except RuntimeError as e:
        ctx.note("FINDING: %s; killed with SIGKILL" % e)
        ctx.cluster.kill9(broker)
    ctx.cluster.start(broker)


@scenario
def scenario_rolling_restart(ctx):
    """A rolling restart under load: SIGTERM each broker in turn (skiffd hands its leaderships
    over first), restart it, wait until the cluster is whole, then the next; once through all
    three (more with --duration)."""
    for _ in range(rounds_for(ctx, 1, 30)):
        for b in BROKERS:
            ctx.sleep(2)
            keys = ctx.keys_led_by(b) or list(range(PARTITIONS))
            ctx.ledger.fault("SIGTERM broker %d" % b, keys)
            t0 = now()
            rc = ctx.cluster.sigterm(b)
            ctx.note("broker %d exited %s %.2fs after SIGTERM" % (b, rc, now() - t0))
            ctx.sleep(1)
            heal = ctx.ledger.heal("restart broker %d" % b)
            ctx.cluster.start(b)
            ctx.wait_whole(heal)


def rocksdb_files(data_dir, suffixes):
    """RocksDB's files with these suffixes under data_dir, largest first."""
    out = []
    for d, _, files in os.walk(data_dir):
        for f in files:
            if f.endswith(suffixes):
                path = os.path.join(d, f)
                out.append((os.path.getsize(path), path))
    return [p for size, p in sorted(out, reverse=True) if size > 0]


@scenario
def scenario_bitflip_minority(ctx):
    """Stop a follower (SIGTERM), flip 8 bytes in one of its RocksDB files, restart it: it must
    either refuse to start (the file is then put back and it starts again) or recover and catch
    up, and what it serves must never differ from the others. Round 1 flips an SST or blob file
    (the broker is restarted once before, so that RocksDB's recovery has written them), round 2
    its write-ahead log."""
    for r in range(rounds_for(ctx, 2, 20)):
        ctx.sleep(3)
        p = r % PARTITIONS
        leader = ctx.wait_leader(p)
        victim = ctx.rng.choice(ctx.followers(p, leader))
        wal = r % 2 == 1
        if not wal:
            keys = ctx.keys_led_by(victim) or [p]
            ctx.ledger.fault("restart broker %d (RocksDB recovery writes SST/blob files)" % victim,
                             keys)
            ctx.cluster.sigterm(victim)
            heal = ctx.ledger.heal("start broker %d" % victim)
            ctx.cluster.start(victim)
            ctx.wait_whole(heal)
            ctx.sleep(2)
        keys = ctx.keys_led_by(victim) or [p]
        ctx.ledger.fault("stop broker %d, flip 8 bytes in its largest %s file"
                         % (victim, "WAL" if wal else "SST/blob"), keys)
        ctx.cluster.sigterm(victim)
        files = rocksdb_files(ctx.cluster.data_dirs[victim], (".log",) if wal else (".sst", ".blob"))
        if not files:
            raise RuntimeError("broker %d has no %s file to corrupt" % (victim, "WAL" if wal else "SST/blob"))
        path = files[0]
        with open(path, "rb") as f:
            original = f.read()
        data = bytearray(original)
        lo, hi = len(data) // 10, max(len(data) // 10 + 1, len(data) * 9 // 10)
        offsets = sorted(ctx.rng.randrange(lo, hi) for _ in range(8))
        for o in offsets:
            data[o] ^= 0xFF
        with open(path, "r+b") as f:
            f.write(bytes(data))
            f.flush()
            os.fsync(f.fileno())
        rel = os.path.relpath(path, ctx.root)
        ctx.note("broker %d: 8 bytes flipped in %s (%d bytes) at offsets %s"
                 % (victim, rel, len(data), offsets))
        heal = ctx.ledger.heal("start broker %d on the flipped file" % victim)
        started = now()
        ctx.cluster.start(victim)
        # Watch it for 15 s with the workload running (its replicas catch up and apply, and
        # follower reads of it are served by the consumers' restarts and the final reads).
        # Exiting by itself in that window, at startup or on reading the flipped bytes, counts
        # as refusing the corrupt file (fail-stop); it is noted with its last log lines.
        end = now() + 15
        while now() < end and ctx.cluster.popen[victim].poll() is None:
            for b in BROKERS:
                if b != victim and ctx.cluster.popen[b].poll() is not None:
                    ctx.cluster.check_alive()  # another broker died: an error of the run
            time.sleep(0.1)
        rc = ctx.cluster.popen[victim].poll()
        if rc is not None:
            ctx.cluster.state[victim] = "dead"
            with open(os.path.join(ctx.root, "broker%d.log" % victim), "rb") as f:
                tail = f.read().decode(errors="replace").strip().splitlines()[-2:]
            ctx.note("broker %d exited %s %.1fs after starting on flipped %s: %s"
                     % (victim, rc, now() - started, rel, " | ".join(tail)))
            with open(path, "wb") as f:
                f.write(original)
            ctx.note("broker %d: %s put back, started again" % (victim, rel))
            ctx.cluster.start(victim)
        else:
            ctx.note("broker %d ran 15 s on flipped %s" % (victim, rel))
        ctx.wait_whole(heal)


def faketime_library():
    for d in ("/usr/lib/x86_64-linux-gnu/faketime", "/usr/lib/aarch64-linux-gnu/faketime",
              "/usr/lib/faketime"):
        path = os.path.join(d, "libfaketimeMT.so.1")
        if os.path.exists(path):
            return path
    return None


@scenario
def scenario_clock_skew(ctx):
    """A broker restarted under libfaketime (LD_PRELOAD, wall and monotonic clocks): round 1
    a partition leader 1 h ahead, round 2 one of its followers with clocks running twice as
    fast; ~8 s skewed each, then restarted on the real clock."""
    lib = faketime_library()
    if lib is None:
        raise Skipped("libfaketime is not installed (apt-get install -y faketime)")
    for r in range(rounds_for(ctx, 2, 25)):
        ctx.sleep(2)
        p = r % PARTITIONS
        leader = ctx.wait_leader(p)
        victim = leader if r % 2 == 0 else ctx.rng.choice(ctx.followers(p, leader))
        spec = "+1h" if r % 2 == 0 else "+0 x2"
        keys = ctx.keys_led_by(victim) or [p]
        ctx.ledger.fault("restart broker %d under faketime %r" % (victim, spec), keys)
        ctx.cluster.sigterm(victim)
        ctx.cluster.start(victim, env={"LD_PRELOAD": lib, "FAKETIME": spec})
        ctx.sleep(8)
        with open("/proc/%d/maps" % ctx.cluster.popen[victim].pid) as f:
            mapped = "libfaketime" in f.read()
        with open(os.path.join(ctx.root, "broker%d.log" % victim), "rb") as f:
            stamps = [l[1:21].decode(errors="replace") for l in f.read().splitlines()
                      if l[:1] in b"IWEF" and l[1:9].isdigit()]
        ctx.note("broker %d under faketime %r: libfaketime %s; its last log stamp %s at real %s"
                 % (victim, spec, "mapped" if mapped else "NOT mapped",
                    stamps[-1] if stamps else None, time.strftime("%H:%M:%S", time.gmtime())))
        if not mapped:
            raise RuntimeError("libfaketime is not loaded in broker %d: no fault happened" % victim)
        heal = ctx.ledger.heal("restart broker %d on the real clock" % victim)
        ctx.cluster.sigterm(victim)
        ctx.cluster.start(victim)
        ctx.wait_whole(heal)


# ---- more network, disk and fsync faults -------------------------------------------------------

def acks_note(counts):
    return ", ".join("p%d %d" % (p, counts.get(p, 0)) for p in range(PARTITIONS))


@scenario
def scenario_leader_full_isolation(ctx):
    """A partition leader cut off from everything for ~5 s, clients included: its Raft port,
    its client port (both ways) and everything its own sockets send are dropped. The others
    must elect a new leader and the clients find it through the other brokers' metadata; then
    the rules go. 3 times."""
    use_firewall(ctx)
    for r in range(rounds_for(ctx, 3, 10)):
        ctx.sleep(2)
        p = r % PARTITIONS
        victim = ctx.wait_leader(p)
        keys = ctx.keys_led_by(victim) or [p]
        others = [b for b in BROKERS if b != victim]
        fault = ctx.ledger.fault("isolate broker %d from everything, clients too (leader of p%d)"
                                 % (victim, p), keys)
        ctx.firewall.isolate_fully(victim, ctx.cluster)
        ctx.sleep(5)
        led = ctx.client.leaders(others)
        t_heal = ctx.ledger.t()
        dropped = ctx.firewall.dropped()
        # Answers the victim sent before the rules were in place may still arrive a moment later.
        acked = ctx.acks_between(fault["t"] + 0.1, t_heal)
        ctx.note("broker %d: %d packets dropped; the others report leaders %s; acks during the "
                 "isolation: %s" % (victim, dropped, led, acks_note(acked)))
        heal = ctx.ledger.heal("remove the isolation of broker %d" % victim)
        ctx.firewall.clear()
        if dropped == 0:
            raise RuntimeError("no packet was dropped: no fault happened")
        for k in keys:
            ctx.require(acked.get(k, 0) > 0,
                        "p%d: nothing acknowledged in the 5 s its leader %d was isolated from "
                        "everything (the others report its leader as %d)"
                        % (k, victim, led.get(k, -1)))
        ctx.wait_whole(heal)


@scenario
def scenario_flapping_partition(ctx):
    """A partition's leader has its Raft traffic (both ways) cut and restored over and over for
    ~20 s: cut for 0.3-1.5 s, restored for 0.3-1.5 s (seeded); each cut hits whichever broker
    leads the partition at that moment, so leadership keeps moving (a cut shorter than an
    election timeout may leave it where it is). Once (more with --duration)."""
    use_firewall(ctx)
    for r in range(rounds_for(ctx, 1, 25)):
        ctx.sleep(2)
        p = r % PARTITIONS
        victim = ctx.wait_leader(p)
        _, epochs0 = ctx.client.leaders_and_epochs()
        # Leadership of every partition may move around: every key is affected.
        ctx.ledger.fault("flap the raft traffic of p%d's leader for 20 s (broker %d first)"
                         % (p, victim), list(range(PARTITIONS)))
        end = now() + 20
        dropped, schedule = 0, []
        while now() < end:
            on_s, off_s = ctx.rng.uniform(0.3, 1.5), ctx.rng.uniform(0.3, 1.5)
            schedule.append("b%d %.2f/%.2f" % (victim, on_s, off_s))
            ctx.firewall.isolate(victim, ctx.cluster)
            ctx.sleep(on_s)
            dropped += ctx.firewall.dropped()
            ctx.firewall.clear()
            ctx.sleep(off_s)
            victim = ctx.client.leaders().get(p, -1)
            if victim < 0:
                victim = int(schedule[-1].split()[0][1:])  # no leader known yet: the same again
        leaders, epochs1 = ctx.client.leaders_and_epochs()
        ctx.note("%d cuts (broker on/off s: %s), %d packets dropped; leader epochs %s -> %s, "
                 "leaders now %s" % (len(schedule), ", ".join(schedule), dropped, epochs0, epochs1,
                                     leaders))
        heal = ctx.ledger.heal("stop flapping p%d's leader" % p)
        if dropped == 0:
            raise RuntimeError("no packet was dropped: no fault happened")
        ctx.wait_whole(heal)


def strace_counts(path):
    """(syscalls traced, of them delayed) in an strace -o file."""
    traced = delayed = 0
    try:
        with open(path, "rb") as f:
            for line in f:
                if b"fdatasync(" in line or b"fsync(" in line:
                    traced += 1
                    delayed += b"(DELAYED)" in line
    except OSError:
        pass
    return traced, delayed


@scenario
def scenario_slow_fsync(ctx):
    """A partition leader's fdatasync/fsync take 100 ms longer (strace -e
    inject=fdatasync,fsync:delay_enter=100ms) for ~15 s, then strace detaches. Before that,
    strace is attached for 5 s without injecting anything, because ptrace stops the broker at
    every syscall (strace cannot use --seccomp-bpf on an attached process): that control phase
    separates the tracing's own cost from the slow disk's. Acknowledged writes per second and
    their latency before, in the control phase, with slow syncs and after are noted. Once in
    CI; with --duration, every second round delays by 1 s instead (beyond the 300-600 ms
    election timeout: a disk that stalls the leader rather than slowing it)."""
    reason = strace_reason()
    if reason:
        raise Skipped(reason)
    for r in range(rounds_for(ctx, 1, 30)):
        ctx.sleep(3)
        p = r % PARTITIONS
        leader = ctx.wait_leader(p)
        keys = ctx.keys_led_by(leader) or [p]
        t_before = ctx.ledger.t()
        ctx.sleep(4)
        t_control = ctx.ledger.t()
        tracer, _ = attach_strace(ctx, leader, None, "b%d-r%d-control" % (leader, r))
        ctx.sleep(5)
        stop_tracer(tracer)
        t_fault = ctx.ledger.t()
        delay_ms = 100 if r % 2 == 0 else 1000
        ctx.ledger.fault("fdatasync/fsync +%d ms on broker %d (leader of p%d)"
                         % (delay_ms, leader, p), keys)
        tracer, out = attach_strace(ctx, leader, "delay_enter=%dms" % delay_ms,
                                    "b%d-r%d" % (leader, r))
        ctx.sleep(15)
        if tracer.poll() is not None:
            raise RuntimeError("strace exited with %s (see strace.stderr)" % tracer.returncode)
        led = ctx.client.leaders()
        heal = ctx.ledger.heal("detach strace from broker %d" % leader)
        stop_tracer(tracer)
        t_heal = ctx.ledger.t()
        traced, delayed = strace_counts(out)
        if delayed == 0:
            raise RuntimeError("strace delayed no fdatasync/fsync of broker %d: no fault happened"
                               % leader)
        ctx.wait_whole(heal)
        t_whole = ctx.ledger.t()
        ctx.sleep(4)
        t_after = ctx.ledger.t()
        # Every producer has one batch in flight and picks partitions at random, so a slow
        # partition slows its writes to the others too: compare latencies, not ack counts.
        rest = [q for q in range(PARTITIONS) if q not in keys]
        phases = (("before", t_before, t_control), ("traced only", t_control, t_fault),
                  ("slow fsync", t_fault, t_heal), ("after", t_whole, t_after))
        for phase, t0, t1 in phases:
            acked = ctx.acks_between(t0, t1)
            lat = ["%s: p50 %s ms, p99 %s ms, max %s ms over %d sends"
                   % (label, p50, p99, worst, n) for label, ks in (("led by %d" % leader, keys),
                                                                   ("others", rest)) if ks
                   for n, p50, p99, worst in [ctx.latency_between(t0, t1, ks)]]
            ctx.note("%s (%.1f s): %.0f acks/s (%s); latency %s"
                     % (phase, t1 - t0, sum(acked.values()) / max(t1 - t0, 0.001),
                        acks_note(acked), "; ".join(lat)))
        ctx.note("broker %d: %d fdatasync/fsync traced in 15 s, %d delayed; leaders at the end "
                 "of the slow phase %s" % (leader, traced, delayed, led))


def least_leading(ctx, candidates):
    """Of `candidates`, one that leads the fewest partitions (seeded tie-break): a follower
    fault then touches as few leaderships as possible."""
    leaders = ctx.client.leaders()
    load = {b: sum(1 for x in leaders.values() if x == b) for b in candidates}
    fewest = min(load.values())
    return ctx.rng.choice(sorted(b for b in candidates if load[b] == fewest))


@scenario
@needs_tmpfs
def scenario_follower_disk_full(ctx):
    """leader_disk_full's fault (tmpfs, a fallocate'd file leaving 32 MiB, under skiffd's
    64 MiB reserve) on a follower of a partition for ~6 s: the follower must refuse appends
    (it falls out of the partition's in-sync set, or answers STORAGE_FULL for what it leads),
    the partition must keep being written by its leader and the other follower, and the
    follower must catch up once the file is deleted; twice."""
    for r in range(rounds_for(ctx, 2, 15)):
        ctx.sleep(2)
        p = r % PARTITIONS
        leader = ctx.wait_leader(p)
        victim = least_leading(ctx, ctx.followers(p, leader))
        keys = sorted(set([p] + ctx.keys_led_by(victim)))
        before = ctx.error_count("STORAGE_FULL")
        fault = ctx.ledger.fault("fill broker %d's disk (follower of p%d, whose leader is %d)"
                                 % (victim, p, leader), keys)
        taken = ctx.disks.fill(victim, 32 << 20)
        ctx.cleanups.append(lambda v=victim: ctx.disks.free(v))
        end, out_of_sync_t, in_sync = now() + 6, None, None
        while now() < end:
            in_sync = ctx.client.in_sync(p, leader)
            if out_of_sync_t is None and in_sync is not None and victim not in in_sync:
                out_of_sync_t = ctx.ledger.t()
            ctx.sleep(0.25)
        full = ctx.error_count("STORAGE_FULL") - before
        t_heal = ctx.ledger.t()
        acked = ctx.acks_between(fault["t"], t_heal)
        ctx.note("broker %d: %d MiB taken, %d MiB free; %d STORAGE_FULL answers; out of p%d's "
                 "in-sync set %s (leader %d's view at the end: %s); acks while full: %s"
                 % (victim, taken >> 20, TmpfsDisks.free_bytes(ctx.disks.mountpoint[victim]) >> 20,
                    full, p, "after %.2fs" % (out_of_sync_t - fault["t"]) if out_of_sync_t
                    else "never", leader, in_sync, acks_note(acked)))
        heal = ctx.ledger.heal("free broker %d's disk" % victim)
        ctx.disks.free(victim)
        if full == 0 and out_of_sync_t is None:
            raise RuntimeError("broker %d's full disk was never noticed (no STORAGE_FULL, still "
                               "in p%d's in-sync set): no fault happened" % (victim, p))
        ctx.require(acked.get(p, 0) > 0,
                    "p%d: nothing acknowledged in the 6 s only its follower %d's disk was full"
                    % (p, victim))
        ctx.wait_whole(heal)


@scenario
@needs_tmpfs
@three_brokers_only(
    "its disks are filled one after another from the fault on, and a partition keeps "
    "committing until 2 of its 3 replicas are full: five fills of ~400 MiB took about 2 s "
    "on a loaded machine, past the 1 s after which it requires that nothing is acknowledged "
    "(soak seed 906, --net netns --brokers 5: acks until 1.5 s after the fault began)")
def scenario_all_disks_full(ctx):
    """Every broker's disk filled at once (tmpfs, 32 MiB left, under skiffd's 64 MiB reserve)
    for ~6 s: no replica can append, so nothing may be acknowledged after the writes already
    under way; then every filler file is deleted and the cluster must heal; twice."""
    for r in range(rounds_for(ctx, 2, 15)):
        ctx.sleep(3)
        before = ctx.error_count("STORAGE_FULL")
        fault = ctx.ledger.fault("fill every broker's disk", list(range(PARTITIONS)))
        taken = {b: ctx.disks.fill(b, 32 << 20) for b in BROKERS}
        for b in BROKERS:
            ctx.cleanups.append(lambda v=b: ctx.disks.free(v))
        ctx.sleep(6)
        full = ctx.error_count("STORAGE_FULL") - before
        t_heal = ctx.ledger.t()
        # Writes the leaders had already persisted may still commit in the first moments.
        settled = ctx.acks_between(fault["t"] + 1, t_heal)
        ctx.note("taken (MiB) %s, free now %s; %d STORAGE_FULL answers; acks 1-6 s after the "
                 "fill: %s" % ({b: t >> 20 for b, t in taken.items()},
                               {b: TmpfsDisks.free_bytes(ctx.disks.mountpoint[b]) >> 20
                                for b in BROKERS}, full, acks_note(settled)))
        heal = ctx.ledger.heal("free every broker's disk")
        for b in BROKERS:
            ctx.disks.free(b)
        if full == 0 and sum(settled.values()) > 0:
            raise RuntimeError("the full disks were never noticed (no STORAGE_FULL, writes kept "
                               "being acknowledged): no fault happened")
        ctx.require(sum(settled.values()) == 0,
                    "%d writes acknowledged 1-6 s after every disk was filled below the reserve "
                    "(%s)" % (sum(settled.values()), acks_note(settled)))
        ctx.wait_whole(heal)


@scenario
def scenario_follower_fsync_eio(ctx):
    """fsync_eio's fault on a follower of a partition: strace fails its every fdatasync/fsync
    with EIO. It must report NOT_SERVING, any partition it led must be led elsewhere, and the
    partition must keep being written by its leader and the other follower (a quorum); then
    strace detaches, the broker is restarted on a healthy disk and must catch up; twice."""
    reason = strace_reason()
    if reason:
        raise Skipped(reason)
    for r in range(rounds_for(ctx, 2, 20)):
        ctx.sleep(2)
        p = r % PARTITIONS
        leader = ctx.wait_leader(p)
        victim = least_leading(ctx, ctx.followers(p, leader))
        keys = sorted(set([p] + ctx.keys_led_by(victim)))
        ctx.ledger.fault("fdatasync/fsync fail with EIO on broker %d (follower of p%d, whose "
                         "leader is %d)" % (victim, p, leader), keys)
        t0 = now()
        tracer, _ = attach_strace(ctx, victim, "error=EIO", "b%d-r%d" % (victim, r))
        wait_not_serving(ctx, victim, tracer, t0)
        led = elect_around(ctx, victim)
        t_window = ctx.ledger.t()
        ctx.sleep(3)
        acked = ctx.acks_between(t_window, ctx.ledger.t())
        in_sync = ctx.client.in_sync(p, led[p])
        ctx.note("%.2fs after the fault the others report leaders %s; p%d's in-sync set %s; acks "
                 "in the 3 s after: %s" % (now() - t0, led, p, in_sync, acks_note(acked)))
        ctx.require(acked.get(p, 0) > 0,
                    "p%d: nothing acknowledged in 3 s while only its follower %d's syncs failed"
                    % (p, victim))
        heal = ctx.ledger.heal("restart broker %d without strace" % victim)
        restart_without_tracer(ctx, victim, tracer)
        ctx.wait_whole(heal)


@scenario
def scenario_client_cut(ctx):
    """Clients cannot reach one broker (iptables on its client port only, both ways) for ~6 s
    while its Raft traffic flows. Every workload producer keeps one batch in flight on a random
    partition, so all of them soon wait on a partition the cut broker leads; one more producer
    per partition, pinned to it, shows what stays writable: every partition the cut broker
    does not lead must keep being written and consumed, found through the other brokers'
    metadata. A partition it still leads may be unwritable meanwhile (its availability is
    noted, not a violation); nothing may be lost. Round 1 cuts the leader of p0, round 2 a
    follower of p1."""
    use_firewall(ctx)
    for q in range(PARTITIONS):
        pinned = Producer(ctx, PRODUCERS + q, ctx.rng.randrange(1 << 30), only=q)
        ctx.producers.append(pinned)
        pinned.start()
    for r in range(rounds_for(ctx, 2, 10)):
        ctx.sleep(2)
        p = r % PARTITIONS
        leader = ctx.wait_leader(p)
        victim = leader if r % 2 == 0 else ctx.rng.choice(ctx.followers(p, leader))
        led_by_victim = ctx.keys_led_by(victim)
        keys = led_by_victim or list(range(PARTITIONS))
        fault = ctx.ledger.fault("cut clients off broker %d (%s of p%d; leads %s)"
                                 % (victim, "leader" if victim == leader else "follower", p,
                                    led_by_victim), keys)
        consumed0 = {q: ctx.consumers.position(q) for q in range(PARTITIONS)}
        ctx.firewall.cut_clients(victim, ctx.cluster)
        ctx.sleep(6)
        others = [b for b in BROKERS if b != victim]
        led = ctx.client.leaders(others)
        t_heal = ctx.ledger.t()
        dropped = ctx.firewall.dropped()
        acked = ctx.acks_between(fault["t"] + 0.1, t_heal)
        consumed = {q: ctx.consumers.position(q) - consumed0[q] for q in range(PARTITIONS)}
        ctx.note("broker %d: %d packets dropped; during the cut: acks %s, records consumed %s; "
                 "the others report leaders %s at its end"
                 % (victim, dropped, acks_note(acked), acks_note(consumed), led))
        heal = ctx.ledger.heal("let clients reach broker %d again" % victim)
        ctx.firewall.clear()
        if dropped == 0:
            raise RuntimeError("no packet was dropped: no fault happened")
        for q in range(PARTITIONS):
            if q not in led_by_victim and led.get(q) != victim:
                ctx.require(acked.get(q, 0) > 0 and consumed[q] > 0,
                            "p%d (led by %d, not by the cut broker %d): %d acks and %d records "
                            "consumed while clients could not reach broker %d"
                            % (q, led.get(q, -1), victim, acked.get(q, 0), consumed[q], victim))
        ctx.wait_whole(heal)


# ---- running one scenario ----------------------------------------------------------------------

def final_reads(ctx):
    """After every fault is healed: each partition through a normal leader read, then from every
    replica by follower reads, until each reaches the leader's high watermark (bounded)."""
    reads = {p: {} for p in range(PARTITIONS)}
    drained = {p: {} for p in range(PARTITIONS)}
    ctx.client.forget_channels()
    # Each read has its own deadline: a replica that never serves must not starve the reads of
    # other partitions (which would then be judged from an empty log).
    ctx.read_errors = {}

    def read(p, broker, follower, budget_s=DRAIN_S):
        got, hw = [], None
        end = now() + budget_s
        source = "p%d %s:%d" % (p, "replica" if follower else "leader", broker)
        while now() < end:
            try:
                f = ctx.client.stub("fetch", broker).Fetch(pb["fetch"].FetchRequest(
                    topic=TOPIC, partition=p, offset=len(got), max_bytes=1 << 20, max_wait_ms=0,
                    allow_follower=follower, client_rack="r%d" % broker if follower else ""),
                    timeout=3)
            except grpc.RpcError as e:
                # With the details: a client that cannot connect and a broker that answers
                # UNAVAILABLE itself both show as StatusCode.UNAVAILABLE.
                ctx.read_errors[source] = "%s: %s" % (e.code(), e.details())
                time.sleep(0.1)
                continue
            if f.error != 0:
                ctx.read_errors[source] = error_name(f.error)
                if not follower and f.leader.broker_id > 0:
                    broker = f.leader.broker_id
                time.sleep(0.1)
                continue
            for bt in f.batches:
                recs = pb["records"].RecordSet.FromString(bt.records).records
                for k, r in enumerate(recs):
                    if bt.base_offset + k == len(got):
                        got.append(r.value)
            target = f.high_watermark if hw is None else hw
            if len(got) >= target:
                return got, True
            if not f.batches:
                time.sleep(0.1)
        return got, False

    unreadable = []
    for p in range(PARTITIONS):
        try:
            leader = ctx.wait_leader(p, timeout_s=10)
        except RuntimeError:
            # Still no leader after every fault was healed: nothing of the partition can be
            # read, so the checker counts every acknowledged record of it as lost.
            unreadable.append(p)
            leader = ctx.replicas(p)[0]
        got, ok = read(p, leader, False)
        reads[p]["leader"], drained[p]["leader"] = got, ok
        for b in ctx.replicas(p):  # with 5 brokers, only 3 of them hold the partition
            # A follower read is complete once it holds what the leader read holds.
            end = now() + DRAIN_S / 3
            rgot, _ = read(p, b, True, DRAIN_S / 3)
            while len(rgot) < len(got) and now() < end:
                time.sleep(0.2)
                rgot, _ = read(p, b, True, max(0.1, end - now()))
            reads[p]["replica:%d" % b] = rgot
            drained[p]["replica:%d" % b] = len(rgot) >= len(got)
    return reads, drained, unreadable


def history_to_json(h):
    def enc_values(vs):
        return [v.hex() for v in vs]
    out = dict(h)
    out["sends"] = [dict(s, values=enc_values(s["values"])) for s in h["sends"]]
    out["reads"] = {str(p): {src: enc_values(v) for src, v in r.items()} for p, r in h["reads"].items()}
    out["drained"] = {str(p): d for p, d in h["drained"].items()}
    out["consumers"] = {str(p): [{"start": s["start"],
                                  "records": [(o, v.hex()) for o, v in s["records"]]} for s in ss]
                        for p, ss in h["consumers"].items()}
    return out


def history_from_json(j):
    def dec(vs):
        return [bytes.fromhex(v) for v in vs]
    h = dict(j)
    h["sends"] = [dict(s, values=dec(s["values"])) for s in j["sends"]]
    h["reads"] = {int(p): {src: dec(v) for src, v in r.items()} for p, r in j["reads"].items()}
    h["drained"] = {int(p): d for p, d in j["drained"].items()}
    h["consumers"] = {int(p): [{"start": s["start"], "records": [(o, bytes.fromhex(v))
                                                                  for o, v in s["records"]]}
                               for s in ss] for p, ss in j["consumers"].items()}
    h["acks"] = [tuple(a) for a in j["acks"]]
    return h


def run_scenario(args, name, seed, procs):
    """Runs one scenario end to end; returns (status, verdict or reason)."""
    root = tempfile.mkdtemp(prefix="skiff-chaos-%s-" % name)
    ctx = Context(args, name, seed, root, procs)
    producers, consumers, consumer_chaos = [], None, None
    verdict, status, failure = None, None, None
    log("scenario %s seed=%d root=%s net=%s brokers=%d"
        % (name, seed, root, args.net, len(BROKERS)))
    try:
        reason = ctx.net.unavailable_reason() or refusal(name)
        if reason:
            raise Skipped(reason)
        ctx.net.setup()
        ctx.cluster.assign_addresses()
        disks = getattr(SCENARIOS[name], "needs_disks", None)
        if disks:
            ctx.disks = TmpfsDisks(root) if disks == "tmpfs" else LoopDisks(root)
            reason = ctx.disks.unavailable_reason()
            if reason:
                raise Skipped(reason)
            for i in BROKERS:
                ctx.cluster.data_dirs[i] = ctx.disks.create(i)
        for i in BROKERS:
            ctx.cluster.start(i)
        ctx.client.admin("CreateTopic", pb["admin"].CreateTopicRequest(
            name=TOPIC, partitions=PARTITIONS, replication_factor=3), now() + STARTUP_S)
        for p in range(PARTITIONS):
            ctx.wait_leader(p, STARTUP_S)
        ctx.load_replica_sets()
        consumers = Consumers(ctx)
        consumers.start_all()
        producers = [Producer(ctx, i, ctx.rng.randrange(1 << 30)) for i in range(PRODUCERS)]
        ctx.producers, ctx.consumers = producers, consumers  # a scenario may add producers
        for pr in producers:
            pr.start()
        consumer_chaos = ConsumerChaos(ctx, consumers, random.Random(ctx.rng.randrange(1 << 30)))
        consumer_chaos.start()
        ctx.sleep(1)
        try:
            SCENARIOS[name](ctx)
        finally:
            for undo in reversed(ctx.cleanups):
                undo()
            ctx.cleanups.clear()
        # Final phase: nothing is broken any more (dead brokers restarted by the scenario).
        for i in BROKERS:
            if ctx.cluster.state[i] == "dead":
                ctx.cluster.start(i)
        # Not a measured heal: the scenario already waited for each of its own.
        final = {"t": ctx.ledger.t(), "name": "final", "healed_t": None}
        if not ctx.wait_whole(final):
            log("the cluster is not whole before the final phase; reading anyway")
        ctx.sleep(2)  # writes after the last heal, then stop
        ctx.give_up_t = now() + PRODUCER_GRACE_S
        ctx.stop_producing.set()
        for pr in producers:
            pr.join(timeout=PRODUCER_GRACE_S + 10)
            if pr.is_alive():
                raise RuntimeError("%s did not stop" % pr.name)
            if pr.error:
                raise RuntimeError(pr.error)
        consumer_chaos.stop.set()
        consumer_chaos.join(timeout=10)
        reads, drained, unreadable = final_reads(ctx)
        if unreadable:
            log("partitions without a leader at the final read: %s" % unreadable)
        end = now() + DRAIN_S
        while now() < end and any(consumers.position(p) < len(reads[p]["leader"])
                                  for p in range(PARTITIONS)):
            time.sleep(0.2)
        consumers.stop_all()
        history = {"scenario": name, "seed": seed, "sends": ctx.ledger.sends, "reads": reads,
                   "drained": drained, "consumers": consumers.sessions(),
                   "acks": ctx.ledger.acks, "faults": ctx.ledger.faults, "heals": ctx.ledger.heals,
                   "consumer_restarts": consumers.restarts, "unreadable": unreadable,
                   "notes": ctx.notes, "unmet": ctx.unmet, "errors": ctx.errors,
                   "read_errors": getattr(ctx, "read_errors", {})}
        verdict = checker.check(history)
        verdict["consumer_restarts"] = consumers.restarts
        if ctx.unmet:
            verdict["ok"] = False
        verdict["unmet"] = list(ctx.unmet)
        with open(os.path.join(root, "history.json"), "w") as f:
            json.dump(history_to_json(history), f)
        status = "PASS" if verdict["ok"] else "FAIL"
    except Skipped as e:
        status, failure = "SKIPPED", str(e)
    except Interrupted:
        status, failure = "INTERRUPTED", "interrupted by a signal"
        raise
    except Exception as e:
        status, failure = "ERROR", "%s: %s" % (type(e).__name__, e)
    finally:
        ctx.stop_producing.set()
        if consumer_chaos is not None:
            consumer_chaos.stop.set()
        for undo in reversed(ctx.cleanups):
            try:
                undo()
            except Exception as e:  # keep cleaning up
                log("cleanup failed: %r" % e)
        ctx.firewall.remove()
        ctx.throttle.release()
        ctx.client.close()
        procs.kill_all()
        if ctx.disks is not None:
            ctx.disks.unmount_all()  # the brokers using them are dead now
        ctx.net.teardown()  # after the brokers are dead (see NetnsNet.teardown)
        for pr in producers:
            pr.join(timeout=5)
        keep = args.keep or status in ("FAIL", "ERROR", "INTERRUPTED")
        if args.expect_violation and status == "FAIL":
            keep = args.keep  # a canary failing is the expected outcome, not evidence
        if keep:
            dest = os.path.join(args.evidence_dir, "%s-seed%d-%s" % (name, seed, status.lower()))
            shutil.rmtree(dest, ignore_errors=True)
            data = ["b%d" % i for i in BROKERS]  # the brokers' data dirs: too big to keep
            shutil.copytree(root, dest, ignore=shutil.ignore_patterns(*data, "img", "disk*"),
                            dirs_exist_ok=True)
            log("evidence kept in %s" % dest)
        shutil.rmtree(root, ignore_errors=True)
        left = procs.leftovers(root)
        mounts = ctx.disks.leftover() if ctx.disks is not None else []
        ctx.throttle.release()  # a broker killed above leaves its cgroup empty: removable now
        net_left = ctx.net.leftover()
        if left or mounts or ctx.firewall.leftover() or ctx.throttle.leftover() or net_left:
            status = "ERROR"
            failure = ("left behind: pids %s, mounts %s, iptables chain %s, cgroup %s, "
                       "namespaces/links %s" % (
                           left, mounts, ctx.firewall.leftover(),
                           ctx.throttle.path if ctx.throttle.leftover() else None, net_left))
    if status in ("PASS", "FAIL"):
        print(checker.summary_line(name, seed, verdict), flush=True)
        print("  " + json.dumps({"scenario": name, "seed": seed, "status": status,
                                 "acknowledged": verdict["acknowledged"],
                                 "sends": verdict["sends"],
                                 "lost": verdict["violations"]["lost"],
                                 "duplicates": verdict["violations"]["duplicate"],
                                 "divergence": verdict["violations"]["divergence"],
                                 "violations": {k: v for k, v in verdict["violations"].items() if v},
                                 "unavailable_s": [u["s"] for u in verdict["unavailable_s"]],
                                 "max_unavailable_s": verdict["max_unavailable_s"],
                                 "gap_s": [u["gap_s"] for u in verdict["unavailable_s"]],
                                 "heal_s": [h["s"] for h in verdict["heal_s"]],
                                 "consumer_restarts": verdict["consumer_restarts"],
                                 "produce_errors": ctx.errors, "notes": ctx.notes,
                                 "unmet": verdict["unmet"],
                                 "final_read_errors": getattr(ctx, "read_errors", {})}),
              flush=True)
        for kind, examples in verdict["examples"].items():
            for e in examples[:5]:
                print("  %s: %s" % (kind, e), flush=True)
        for msg in verdict["unmet"]:
            print("  unmet requirement: %s" % msg, flush=True)
        if status == "FAIL":
            print("  reproduce with: chaos.py run --scenarios %s --seed %d" % (name, seed), flush=True)
    else:
        print("%s %s seed=%d: %s" % (status, name, seed, failure), flush=True)
    return status, verdict


def refusal(name):
    """Why scenario `name` refuses to run with this many brokers, or None."""
    why = getattr(SCENARIOS[name], "three_brokers_only", None)
    if why and len(BROKERS) != 3:
        return "%s cannot run with %d brokers: %s" % (name, len(BROKERS), why)
    return None


def set_brokers(n):
    """--brokers: the brokers are 1..n (3 for CI, 5 for soak); the topic stays at replication
    factor 3, so with 5 each partition lives on 3 of them (Context.replicas)."""
    global BROKERS
    BROKERS = tuple(range(1, n + 1))


def check_no_namespaces_left():
    """At the end of a run, no skiffchaos-<pid>-* namespace may exist: each scenario's teardown
    removes them, and this catches one that failed. Whatever is found is deleted (it is ours)
    and reported."""
    left = our_namespaces()
    for ns in left:
        run_ip("netns", "del", ns)
    return left


def commit_picks(n):
    """n scenarios outside the core set, chosen by the commit under test (git rev-parse HEAD of
    this source tree): the same commit always adds the same ones, and successive commits walk
    through all of them. None when there is no git checkout."""
    if n <= 0:
        return []
    r = subprocess.run(["git", "-C", HERE, "rev-parse", "HEAD"], capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout.strip():
        log("no git commit to choose extra scenarios from: core only")
        return []
    pool = sorted(x for x in SCENARIOS if x not in CORE)
    h = int(r.stdout.strip(), 16)
    picks = []
    for _ in range(min(n, len(pool))):
        picks.append(pool.pop(h % len(pool)))
        h //= 97
    log("commit %s adds %s" % (r.stdout.strip()[:12], ", ".join(picks)))
    return picks


def main_run(args):
    if args.scenarios == "core":
        names = list(CORE) + commit_picks(args.extra_from_commit)
    elif args.scenarios == "all":
        names = sorted(SCENARIOS)
    else:
        names = args.scenarios.split(",")
    for n in names:
        if n not in SCENARIOS:
            sys.exit("unknown scenario %r (have: %s)" % (n, ", ".join(sorted(SCENARIOS))))
    set_brokers(args.brokers)
    if args.soak_s:
        # The soak mix leaves out what cannot run with this many brokers (said once here).
        for n in [n for n in names if refusal(n)]:
            log("soak: leaving out %s" % refusal(n))
        names = [n for n in names if not refusal(n)] or names
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1 << 31)
    os.makedirs(args.evidence_dir, exist_ok=True)
    gen_root = tempfile.mkdtemp(prefix="skiff-chaos-gen-")
    args.gen_dir = gen_root
    procs = Processes()

    def on_signal(signum, _frame):
        raise Interrupted()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    results = []
    try:
        generate_stubs(args.proto_dir, gen_root)
        start = now()
        i = 0
        while True:
            if args.soak_s:
                if now() - start >= args.soak_s:
                    break
                name = random.Random(seed + i).choice(names)
            elif i >= len(names):
                break
            else:
                name = names[i]
            status, verdict = run_scenario(args, name, seed + i, procs)
            results.append((name, seed + i, status, verdict))
            i += 1
    finally:
        procs.kill_all()
        shutil.rmtree(gen_root, ignore_errors=True)
        # Only netns runs create namespaces (and a loopback run may be on a host without `ip`).
        namespaces_left = check_no_namespaces_left() if args.net == "netns" else []
    print("chaos summary: " + ", ".join("%s(seed %d)=%s" % (n, s, st) for n, s, st, _ in results),
          flush=True)
    if namespaces_left:
        print("chaos: ERROR: network namespaces left behind (now deleted): %s"
              % " ".join(namespaces_left), flush=True)
        return 1
    if args.expect_violation:
        # Canary mode: the run passes only if every scenario that ran reported the violation.
        ran = [r for r in results if r[2] in ("PASS", "FAIL")]
        if results and all(r[2] == "SKIPPED" for r in results):
            print("canary: SKIPPED (its scenarios cannot run here)")
            return SKIP_EXIT_CODE
        caught = [r for r in ran if r[3]["violations"][args.expect_violation] > 0]
        ok = bool(ran) and len(caught) == len(ran)
        print("canary: %d of %d runs reported %s: %s" % (len(caught), len(ran), args.expect_violation,
                                                        "as expected" if ok else "NOT CAUGHT"))
        return 0 if ok else 1
    return 0 if all(st in ("PASS", "SKIPPED") for _, _, st, _ in results) else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--skiffd", required=True)
    r.add_argument("--proto-dir", required=True)
    r.add_argument("--scenarios", default="core", help="core, all, or a comma-separated list")
    r.add_argument("--seed", type=int)
    r.add_argument("--extra-from-commit", type=int, default=0, metavar="N",
                   help="with --scenarios core: add N non-core scenarios chosen by the commit hash")
    r.add_argument("--duration", type=float, default=0,
                   help="seconds of faults per scenario (0: the CI rounds, ~30-60 s)")
    r.add_argument("--soak-s", type=float, default=0,
                   help="run a random mix of --scenarios for this long")
    r.add_argument("--evidence-dir", default=os.path.join(tempfile.gettempdir(), "skiff-chaos-evidence"))
    r.add_argument("--keep", action="store_true", help="keep the evidence of passing runs too")
    r.add_argument("--expect-violation", choices=checker.VIOLATION_KINDS,
                   help="canary mode: pass only if every scenario run reports this violation")
    r.add_argument("--broker-flag", action="append", default=[],
                   help="extra skiffd flag, e.g. --broker-flag=--sync=never (a canary)")
    r.add_argument("--net", choices=sorted(NETS), default="loopback",
                   help="loopback: every broker on 127.0.0.1 (default, CI); netns: each broker "
                        "in its own network namespace, joined by a bridge namespace")
    r.add_argument("--brokers", type=int, choices=(3, 5), default=3,
                   help="brokers in the cluster (replication factor stays 3; 5 is for soak)")
    c = sub.add_parser("consume")
    c.add_argument("--gen", required=True)
    c.add_argument("--brokers", required=True)
    c.add_argument("--topic", required=True)
    c.add_argument("--partition", type=int, required=True)
    c.add_argument("--checkpoint", required=True)
    c.add_argument("--out", required=True)
    c.add_argument("--deadline-s", type=float, required=True)
    rc = sub.add_parser("recheck")
    rc.add_argument("history")
    sub.add_parser("list")
    args = ap.parse_args()
    if args.cmd == "run":
        try:
            return main_run(args)
        except Interrupted:
            print("chaos: interrupted; every process, rule and mount of the run was removed",
                  flush=True)
            return 130
    if args.cmd == "consume":
        return consume_main(args)
    if args.cmd == "recheck":
        with open(args.history) as f:
            h = history_from_json(json.load(f))
        v = checker.check(h)
        if h.get("unmet"):
            v["ok"] = False  # the scenario's own liveness requirements (Context.require)
        v["unmet"] = h.get("unmet", [])
        print(checker.summary_line(h.get("scenario", "?"), h.get("seed", 0), v))
        print(json.dumps(v, indent=1))
        return 0 if v["ok"] else 1
    if args.cmd == "list":
        for n in sorted(SCENARIOS):
            print("%s%s: %s" % (n, " (core)" if n in CORE else "", SCENARIOS[n].__doc__.split("\n")[0]))
        return 0


if __name__ == "__main__":
    sys.exit(main())
