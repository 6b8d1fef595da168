"""The chaos suite's checker: pure functions from a recorded history to a verdict.

Nothing here talks to a broker, reads a clock or touches a file: a history is plain data (see
History below), so the same functions judge a live run, a saved ledger (`chaos.py --recheck`)
and the hand-made histories of checker_test.py, which contain every violation on purpose and so
prove that each check can fail.

What a history holds:
  sends      every produce the workload invoked, one dict each (see Send below), whatever
             became of it: "acked" (with the offset the broker answered), "failed" (a
             non-retriable answer that proves nothing was written, e.g. CORRUPT_BATCH),
             "unknown" (timeouts, broken connections: it may or may not be in the log) or
             "rejected" (a non-retriable answer to a batch that should have been accepted, e.g.
             OUT_OF_SEQUENCE; possible only if the broker forgot something).
  reads      partition -> source -> list of record values by offset (index i is offset i), read
             after every fault was healed: "leader" (a normal read) and "replica:N" (a follower
             read served by broker N). The leader read is the authority for lost writes.
  drained    partition -> source -> True when that read reached the leader's high watermark
             before the drain deadline.
  consumers  partition -> list of sessions, one per consumer (re)start, in order: {"start":
             offset it resumed from, "records": [(offset, value), ...] in the order seen}.
  acks       (time_s, key) of every acknowledged write, key = partition or "metadata".
  faults     {"t", "name", "keys"}: when a fault began and which keys it can make unavailable;
             the i-th heal is the one that removes the i-th fault.
  heals      {"t", "name", "healed_t"}: when a fault was removed and when the cluster was whole
             again (every partition led, every replica in sync); healed_t None if never.

The violations, each a list of human-readable strings in the verdict:
  lost              acknowledged, but the bytes are nowhere in the leader's log
  offset_mismatch   acknowledged at offset X, but the record is at another offset
  divergence        two sources disagree on the bytes at an offset both hold
  duplicate         one (producer, partition, sequence) at two offsets
  order             a producer's sequences not increasing along a partition's offsets
  failed_visible    a send answered with a definite failure is in the log
  rejected          a well-formed batch refused with a non-retriable error
  corrupt           a record whose embedded checksum does not match its bytes
  phantom           a well-formed record that no send of this run produced
  consumer_skip     a consumer session missed offsets, or resumed past its last position
  consumer_mismatch a consumer saw bytes at an offset that the final log does not hold there
  unseen            acknowledged records a replica or a consumer still lacks after the drain
"""
import zlib

VIOLATION_KINDS = ("lost", "offset_mismatch", "divergence", "duplicate", "order", "failed_visible",
                   "rejected", "corrupt", "phantom", "consumer_skip", "consumer_mismatch", "unseen")

# At most this many example messages per violation kind; the counts are always exact.
MAX_EXAMPLES = 10


# ---- record values -------------------------------------------------------------------------
# A value is "P:PART:SEQ:NONCE:PAD#CRC": producer id, partition, the record's own sequence
# number, a nonce that makes every send's bytes unique (even a failed probe that reuses a
# sequence), padding, and the CRC32 of everything before '#' as 8 hex digits. A value read back
# therefore says by itself who wrote it and whether its bytes survived intact.

def make_value(producer, partition, seq, nonce, pad_len=0):
    body = b"%d:%d:%d:%s:%s" % (producer, partition, seq, nonce.encode(), b"x" * pad_len)
    return body + b"#%08x" % (zlib.crc32(body) & 0xFFFFFFFF)


def parse_value(value):
    """(producer, partition, seq) of a well-formed value, or None if its checksum is wrong."""
    body, sep, crc = value.rpartition(b"#")
    if not sep or len(crc) != 8:
        return None
    try:
        if int(crc, 16) != zlib.crc32(body) & 0xFFFFFFFF:
            return None
        producer, partition, seq = body.split(b":")[:3]
        return int(producer), int(partition), int(seq)
    except ValueError:
        return None


# ---- the checks ----------------------------------------------------------------------------

class Findings:
    def __init__(self):
        self.counts = {k: 0 for k in VIOLATION_KINDS}
        self.examples = {k: [] for k in VIOLATION_KINDS}

    def add(self, kind, message, count=1):
        self.counts[kind] += count
        if len(self.examples[kind]) < MAX_EXAMPLES:
            self.examples[kind].append(message)

    def total(self):
        return sum(self.counts.values())


def _index_values(log):
    """value -> list of offsets where it appears."""
    where = {}
    for offset, value in enumerate(log):
        where.setdefault(value, []).append(offset)
    return where


def check_acknowledged(sends, reads, findings):
    """lost and offset_mismatch, against each partition's leader read."""
    indexes = {p: _index_values(r.get("leader", [])) for p, r in reads.items()}
    for s in sends:
        if s["status"] != "acked":
            continue
        log = reads.get(s["partition"], {}).get("leader", [])
        where = indexes.get(s["partition"], {})
        for k, value in enumerate(s["values"]):
            offset = s["offset"] + k
            if offset < len(log) and log[offset] == value:
                continue
            label = "p%d producer %d seq %d (acked at offset %d)" % (
                s["partition"], s["producer"], s["seq"] + k, offset)
            if value in where:
                findings.add("offset_mismatch", "%s is at offset %s" % (label, where[value]))
            else:
                findings.add("lost", "%s is not in the leader's log (%d records)" % (label, len(log)))


def check_divergence(reads, findings):
    """Every pair of sources must hold identical bytes at every offset both hold."""
    for p in sorted(reads):
        sources = sorted(reads[p])
        for i, a in enumerate(sources):
            for b in sources[i + 1:]:
                la, lb = reads[p][a], reads[p][b]
                common = min(len(la), len(lb))
                differing = [o for o in range(common) if la[o] != lb[o]]
                if differing:
                    findings.add("divergence", "p%d: %s and %s differ at %d offsets, first %d"
                                 % (p, a, b, len(differing), differing[0]), count=len(differing))


def check_log_contents(sends, reads, findings):
    """duplicate, order, failed_visible, corrupt and phantom, in every source's log."""
    invoked = {}
    failed = set()
    for s in sends:
        for value in s["values"]:
            invoked[value] = s
            if s["status"] == "failed":
                failed.add(value)
    # The leader's log is checked whole; another source only where it extends past the leader's
    # (check_divergence already compares the offsets they share), so that one bad record is
    # counted once, not once per replica.
    for p in sorted(reads):
        leader = reads[p].get("leader", [])
        for source in ["leader"] + sorted(s for s in reads[p] if s != "leader"):
            log = reads[p].get(source, [])
            start = 0 if source == "leader" else len(leader)
            seen = {}  # (producer, seq) -> first offset
            last_seq = {}  # producer -> (seq, offset) of its latest record so far
            for offset in range(len(log)):
                value = log[offset] if offset >= start or source == "leader" else leader[offset]
                if offset < start:
                    # Shared prefix: only feeds the duplicate and order state.
                    ident = parse_value(value)
                    if ident is not None:
                        seen.setdefault((ident[0], ident[2]), offset)
                        last_seq[ident[0]] = (ident[2], offset)
                    continue
                where = "p%d %s offset %d" % (p, source, offset)
                ident = parse_value(value)
                if ident is None:
                    findings.add("corrupt", "%s: checksum mismatch in %r" % (where, value[:60]))
                    continue
                producer, partition, seq = ident
                if value in failed:
                    findings.add("failed_visible", "%s: producer %d seq %d was answered with a "
                                 "definite failure" % (where, producer, seq))
                elif value not in invoked or partition != p:
                    findings.add("phantom", "%s: producer %d seq %d p%d was never sent here"
                                 % (where, producer, seq, partition))
                key = (producer, seq)
                if key in seen:
                    findings.add("duplicate", "%s: producer %d seq %d already at offset %d"
                                 % (where, producer, seq, seen[key]))
                else:
                    seen[key] = offset
                # Strictly lower: a repeat of the previous sequence is a duplicate, not disorder.
                if producer in last_seq and seq < last_seq[producer][0]:
                    findings.add("order", "%s: producer %d seq %d after seq %d (offset %d)"
                                 % (where, producer, seq, last_seq[producer][0], last_seq[producer][1]))
                last_seq[producer] = (seq, offset)


def check_rejected(sends, findings):
    for s in sends:
        if s["status"] == "rejected":
            findings.add("rejected", "p%d producer %d seq %d: %s"
                         % (s["partition"], s["producer"], s["seq"], s.get("error", "")))


def check_consumers(consumers, reads, findings):
    """A consumer session starts where the previous one left off (or earlier: re-reading is
    allowed, skipping is not), reads offsets contiguously, and sees the final log's bytes."""
    for p in sorted(consumers):
        log = reads.get(p, {}).get("leader", [])
        position = 0  # the next offset no session has consumed yet
        for n, session in enumerate(consumers[p]):
            if session["start"] > position:
                findings.add("consumer_skip", "p%d session %d resumed at %d, but only offsets "
                             "below %d were consumed" % (p, n, session["start"], position))
            expected = session["start"]
            for offset, value in session["records"]:
                if offset != expected:
                    findings.add("consumer_skip", "p%d session %d read offset %d after %d"
                                 % (p, n, offset, expected - 1))
                if offset >= len(log) or log[offset] != value:
                    findings.add("consumer_mismatch", "p%d session %d saw bytes at offset %d that "
                                 "the final log does not hold there" % (p, n, offset))
                expected = offset + 1
            position = max(position, expected)


def acknowledged_end(sends):
    """partition -> the offset after its last acknowledged record."""
    end = {}
    for s in sends:
        if s["status"] == "acked":
            end[s["partition"]] = max(end.get(s["partition"], 0), s["offset"] + len(s["values"]))
    return end


def check_unseen(sends, reads, drained, consumers, findings):
    """After the drain deadline every replica read and every consumer must have reached the last
    acknowledged record of its partition."""
    for p, acked_end in sorted(acknowledged_end(sends).items()):
        # Records missing from the leader's log are lost, not unseen: count only those it holds.
        end = min(acked_end, len(reads.get(p, {}).get("leader", [])))
        for source in sorted(reads.get(p, {})):
            have = len(reads[p][source])
            if have < end:
                findings.add("unseen", "p%d %s: %d acknowledged offsets still unseen (has %d of %d%s)"
                             % (p, source, end - have, have, end,
                                "" if drained.get(p, {}).get(source, True) else ", drain timed out"),
                             count=end - have)
        if p in consumers:
            consumed = max((o + 1 for s in consumers[p] for o, _ in s["records"]), default=0)
            if consumed < end:
                findings.add("unseen", "p%d consumer: reached offset %d of %d" % (p, consumed, end),
                             count=end - consumed)


def _max_gap(times, start, end):
    """The longest stretch of [start, end] with no time in `times` (sorted)."""
    points = [start] + [t for t in times if start <= t <= end] + [end]
    return max(b - a for a, b in zip(points, points[1:]))


def availability(acks, faults, heals):
    """Per fault: `s`, seconds from the fault to the first acknowledged write after it of a key
    the fault can affect (a write already in flight at the fault can make this tiny), and
    `gap_s`, the longest stretch without an acknowledged write for any one affected key between
    the fault and the cluster being whole again (the matching heal's healed_t, else the next
    fault, else the last ack). Per heal: seconds from removing the fault to a whole cluster."""
    acks = sorted(acks, key=lambda a: a[0])  # keys mix ints and "metadata": never compare them
    by_key = {}
    for t, key in acks:
        by_key.setdefault(key, []).append(t)
    last_t = acks[-1][0] if acks else 0.0
    unavailable = []
    for i, f in enumerate(faults):
        first = next((t for t, key in acks if t >= f["t"] and (not f.get("keys") or key in f["keys"])),
                     None)
        end = heals[i].get("healed_t") if i < len(heals) else None
        if end is None:
            end = faults[i + 1]["t"] if i + 1 < len(faults) else last_t
        end = max(end, f["t"])
        keys = f.get("keys") or list(by_key)
        gap = max((_max_gap(by_key.get(k, []), f["t"], end) for k in keys), default=None)
        unavailable.append({"fault": f["name"],
                            "s": None if first is None else round(first - f["t"], 3),
                            "gap_s": None if gap is None else round(gap, 3)})
    healed = [{"heal": h["name"],
               "s": None if h.get("healed_t") is None else round(h["healed_t"] - h["t"], 3)}
              for h in heals]
    return unavailable, healed


def check(history):
    """The full verdict of a history: a dict with the counts, examples and availability."""
    sends, reads = history["sends"], history["reads"]
    findings = Findings()
    check_acknowledged(sends, reads, findings)
    check_divergence(reads, findings)
    check_log_contents(sends, reads, findings)
    check_rejected(sends, findings)
    check_consumers(history.get("consumers", {}), reads, findings)
    check_unseen(sends, reads, history.get("drained", {}), history.get("consumers", {}), findings)
    unavailable, healed = availability(history.get("acks", []), history.get("faults", []),
                                       history.get("heals", []))
    by_status = {}
    for s in sends:
        by_status[s["status"]] = by_status.get(s["status"], 0) + 1
    windows = [u["s"] for u in unavailable if u["s"] is not None]
    gaps = [u["gap_s"] for u in unavailable if u["gap_s"] is not None]
    return {
        "ok": findings.total() == 0,
        "acknowledged": sum(len(s["values"]) for s in sends if s["status"] == "acked"),
        "sends": by_status,
        "violations": findings.counts,
        "examples": {k: v for k, v in findings.examples.items() if v},
        "unavailable_s": unavailable,
        "max_unavailable_s": max(windows) if windows else None,
        "max_gap_s": max(gaps) if gaps else None,
        "never_available_again": sum(1 for u in unavailable if u["s"] is None),
        "heal_s": healed,
    }


def summary_line(scenario, seed, verdict):
    """The one-line summary printed per scenario."""
    v = verdict["violations"]
    heal = [h["s"] for h in verdict["heal_s"] if h["s"] is not None]
    return ("%s %s seed=%d acknowledged=%d unknown=%d failed=%d lost=%d duplicates=%d divergence=%d "
            "other_violations=%d max_unavailable_s=%s max_gap_s=%s max_heal_s=%s"
            % ("PASS" if verdict["ok"] else "FAIL", scenario, seed, verdict["acknowledged"],
               verdict["sends"].get("unknown", 0), verdict["sends"].get("failed", 0), v["lost"],
               v["duplicate"], v["divergence"],
               sum(v.values()) - v["lost"] - v["duplicate"] - v["divergence"],
               verdict["max_unavailable_s"], verdict["max_gap_s"], max(heal) if heal else None))
