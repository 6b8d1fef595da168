#!/usr/bin/python3
"""Unit tests of checker.py over hand-made histories.

Each test builds a small, clean history (which must pass) and then plants exactly one kind of
violation in it: the checker must report that kind, and only that kind. A checker that never
fails would pass every chaos scenario; these tests are what prove it can fail.
"""
import copy
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import checker  # noqa: E402
from checker import make_value  # noqa: E402


def send(producer, partition, seq, count, status="acked", offset=None, nonce="a"):
    return {"producer": producer, "partition": partition, "seq": seq, "status": status,
            "offset": offset,
            "values": [make_value(producer, partition, seq + k, nonce) for k in range(count)]}


def clean_history():
    """Two producers on partition 0, one on partition 1; every replica identical; a consumer
    that was restarted once and re-read one record (allowed)."""
    sends = [
        send(7, 0, 0, 2, offset=0),
        send(8, 0, 0, 1, offset=2),
        send(7, 0, 2, 3, offset=3),
        send(9, 1, 0, 2, offset=0),
        send(9, 1, 2, 1, status="failed", nonce="f"),  # a probe the broker refused
        send(9, 1, 2, 2, offset=2),
        send(9, 1, 4, 1, status="unknown"),  # not in the log: allowed
    ]
    log0 = sends[0]["values"] + sends[1]["values"] + sends[2]["values"]
    log1 = sends[3]["values"] + sends[5]["values"]
    reads = {p: {src: list(log) for src in ("leader", "replica:1", "replica:2", "replica:3")}
             for p, log in ((0, log0), (1, log1))}
    consumers = {
        0: [{"start": 0, "records": [(0, log0[0]), (1, log0[1]), (2, log0[2])]},
            {"start": 2, "records": [(o, log0[o]) for o in range(2, 6)]}],
        1: [{"start": 0, "records": [(o, log1[o]) for o in range(4)]}],
    }
    return {"sends": sends, "reads": reads, "consumers": consumers,
            "drained": {0: {}, 1: {}},
            "acks": [(1.0, 0), (1.1, 1), (5.3, 0), (5.9, 1), (6.0, "metadata")],
            "faults": [{"t": 5.0, "name": "kill b1", "keys": [0]},
                       {"t": 5.5, "name": "kill controller", "keys": ["metadata"]}],
            "heals": [{"t": 7.0, "name": "restart b1", "healed_t": 8.25}]}


class CheckerTest(unittest.TestCase):
    def verdict_with_only(self, history, kind, also=()):
        """Checks that `kind` is reported and nothing else but the kinds in `also`, which the
        planted damage implies (e.g. a record with other bytes was also never sent)."""
        v = checker.check(history)
        self.assertFalse(v["ok"], "the checker missed a planted %s" % kind)
        self.assertGreater(v["violations"][kind], 0, v["violations"])
        others = {k: n for k, n in v["violations"].items() if n and k != kind and k not in also}
        self.assertEqual(others, {}, "planted only %s, got %s" % (kind, v["examples"]))
        return v

    def test_clean_history_passes(self):
        v = checker.check(clean_history())
        self.assertTrue(v["ok"], v["examples"])
        self.assertEqual(v["acknowledged"], 10)
        self.assertEqual(v["sends"], {"acked": 5, "failed": 1, "unknown": 1})

    def test_value_roundtrip_and_corruption(self):
        value = make_value(12, 3, 456, "n1", pad_len=5)
        self.assertEqual(checker.parse_value(value), (12, 3, 456))
        flipped = bytearray(value)
        flipped[3] ^= 1
        self.assertIsNone(checker.parse_value(bytes(flipped)))
        self.assertIsNone(checker.parse_value(b"no checksum here"))

    def test_lost_write_missing_from_the_tail(self):
        h = clean_history()
        for src in h["reads"][0]:
            del h["reads"][0][src][-1]  # the last acknowledged record of p0 vanished everywhere
        h["consumers"][0][1]["records"].pop()
        self.verdict_with_only(h, "lost")

    def test_lost_write_with_different_bytes(self):
        h = clean_history()
        other = make_value(7, 0, 4, "zzz")  # same producer and sequence, other bytes
        for src in h["reads"][0]:
            h["reads"][0][src][5] = other
        h["consumers"][0][1]["records"][-1] = (5, other)
        self.verdict_with_only(h, "lost", also=("phantom",))

    def test_acknowledged_offset_not_where_the_record_is(self):
        h = clean_history()
        h["sends"][1]["offset"] = 1  # broker answered 1, record is at 2
        self.verdict_with_only(h, "offset_mismatch")

    def test_replica_divergence(self):
        h = clean_history()
        log = h["reads"][1]["replica:2"]
        log[1], log[2] = log[2], log[1]
        v = checker.check(h)
        self.assertGreater(v["violations"]["divergence"], 0)
        self.assertFalse(v["ok"])

    def test_replica_divergence_alone(self):
        h = clean_history()
        # Same records in the same order on replica 3 but one byte of the padding-free value
        # changed and re-checksummed: only a byte comparison can notice.
        h["reads"][1]["replica:3"][3] = make_value(9, 1, 3, "b")
        self.verdict_with_only(h, "divergence")

    def test_duplicate(self):
        h = clean_history()
        dup = h["sends"][5]["values"][-1]
        for src in h["reads"][1]:
            h["reads"][1][src].append(dup)
        self.verdict_with_only(h, "duplicate")

    def test_non_monotonic_sequence(self):
        h = clean_history()
        # Producer 7's batches swapped on every replica, and acknowledged where they are now.
        a, b = h["sends"][0], h["sends"][2]
        log = b["values"] + h["sends"][1]["values"] + a["values"]
        for src in h["reads"][0]:
            h["reads"][0][src] = list(log)
        a["offset"], h["sends"][1]["offset"], b["offset"] = 4, 3, 0
        h["consumers"][0] = [{"start": 0, "records": list(enumerate(log))}]
        self.verdict_with_only(h, "order")

    def test_definitely_failed_send_became_visible(self):
        h = clean_history()
        probe = h["sends"][4]["values"][0]
        for src in h["reads"][1]:
            h["reads"][1][src].append(probe)
        # The probe reused sequence 2, which a later batch holds: a duplicate and disorder too.
        self.verdict_with_only(h, "failed_visible", also=("duplicate", "order"))

    def test_rejected_well_formed_batch(self):
        h = clean_history()
        h["sends"][6]["status"] = "rejected"
        h["sends"][6]["error"] = "OUT_OF_SEQUENCE"
        self.verdict_with_only(h, "rejected")

    def test_corrupt_record(self):
        h = clean_history()
        for src in h["reads"][1]:
            h["reads"][1][src].append(b"7:1:99:a:#00000000")
        self.verdict_with_only(h, "corrupt")

    def test_phantom_record(self):
        h = clean_history()
        for src in h["reads"][1]:
            h["reads"][1][src].append(make_value(42, 1, 0, "never-sent"))
        self.verdict_with_only(h, "phantom")

    def test_restarted_consumer_skips(self):
        h = clean_history()
        h["consumers"][0][1]["start"] = 4  # the first session consumed only offsets 0..2
        h["consumers"][0][1]["records"] = h["consumers"][0][1]["records"][2:]
        self.verdict_with_only(h, "consumer_skip")

    def test_consumer_skips_inside_a_session(self):
        h = clean_history()
        del h["consumers"][1][0]["records"][1]
        self.verdict_with_only(h, "consumer_skip")

    def test_consumer_saw_bytes_the_log_does_not_hold(self):
        h = clean_history()
        h["consumers"][1][0]["records"][2] = (2, make_value(9, 1, 2, "dirty"))
        self.verdict_with_only(h, "consumer_mismatch")

    def test_unseen_after_drain_on_a_replica(self):
        h = clean_history()
        del h["reads"][0]["replica:2"][-2:]
        h["drained"][0]["replica:2"] = False
        v = self.verdict_with_only(h, "unseen")
        self.assertEqual(v["violations"]["unseen"], 2)

    def test_unseen_by_the_consumer(self):
        h = clean_history()
        h["consumers"][1][0]["records"].pop()
        self.verdict_with_only(h, "unseen")

    def test_availability(self):
        v = checker.check(clean_history())
        self.assertEqual([u["s"] for u in v["unavailable_s"]], [0.3, 0.5])
        self.assertEqual(v["max_unavailable_s"], 0.5)
        # kill b1 at 5.0, whole again at 8.25, p0 acked at 5.3 only: 2.95 s without a write.
        # The controller kill has no heal of its own: its window ends at the last ack (6.0).
        self.assertEqual([u["gap_s"] for u in v["unavailable_s"]], [2.95, 0.5])
        self.assertEqual(v["max_gap_s"], 2.95)
        self.assertEqual([h["s"] for h in v["heal_s"]], [1.25])
        h = clean_history()
        h["acks"] = [a for a in h["acks"] if a[1] != "metadata"]
        v = checker.check(h)
        self.assertEqual(v["never_available_again"], 1)

    def test_summary_line(self):
        h = clean_history()
        line = checker.summary_line("leader_kill", 5, checker.check(h))
        self.assertTrue(line.startswith("PASS leader_kill seed=5 acknowledged=10 "), line)
        for src in h["reads"][0]:
            del h["reads"][0][src][-1]
        h["consumers"][0][1]["records"].pop()
        line = checker.summary_line("leader_kill", 5, checker.check(h))
        self.assertIn("FAIL", line)
        self.assertIn("lost=1", line)

    def test_clean_history_is_not_mutated(self):
        h = clean_history()
        before = copy.deepcopy(h)
        checker.check(h)
        self.assertEqual(h, before)


if __name__ == "__main__":
    unittest.main()
