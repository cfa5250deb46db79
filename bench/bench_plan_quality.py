"""Benchmark: plan quality of the balancer's analyzer against Kafka's own
``kafka-reassign-partitions --generate``, on synthetic load models of 10, 25 and 50 brokers.

Each model is a cluster that grew without being rebalanced: topics (volumes Zipf-like, a
few very large with many partitions, most small) were placed by rack-aware round-robin
over the brokers that existed when each topic was created, so older brokers carry more. The 10-broker model is also
scaled out (+2 empty brokers) and scaled in (2 brokers draining).

Kafka's tool runs from the Kafka jars, but against an in-memory ``Admin`` that answers the
three calls ``--generate`` makes (DescribeCluster, DescribeTopics, DescribeReplicaLogDirs)
from the model: it runs ``ReassignPartitionsCommand.generateAssignment``, the code behind
``--generate``, without brokers. (A 50-broker KRaft cluster with 10,000 partitions does not
fit a 2-core machine; ``--live-check`` runs the real command line against a real 3-broker
cluster and the in-memory version on the same model, and compares the two proposals.)
Its proposal is applied to the model and measured with the analyzer's own goals.

Usage: .venv/bin/python bench/bench_plan_quality.py [--sizes 10,25,50] [--seed 1] [--live-check]
Prints a markdown table and a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import secrets
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from streamplane.engine.distribution import EngineResolver
from streamplane.loops.balancer.analyzer import Analyzer
from streamplane.loops.balancer.goals import DistributionGoal, GoalConfig, RackAwareGoal
from streamplane.loops.balancer.model import (
    Broker,
    BrokerCapacity,
    BrokerState,
    ClusterModel,
    Partition,
    Resource,
)
from streamplane.versions import DEFAULT_KAFKA_VERSION

GIB = float(1 << 30)
ZONES = ("zone-a", "zone-b", "zone-c")
PARTITIONS_PER_BROKER = 200  # 10 brokers -> 2,000 partitions, 50 -> 10,000 (x3 replicas)
BROKER_GIB = 600  # data per broker
SOFT = (Resource.REPLICAS, Resource.DISK, Resource.NW_IN, Resource.LEADERS, Resource.NW_OUT)

# ---- synthetic models --------------------------------------------------------------------


def grown_cluster(n_brokers: int, seed: int) -> ClusterModel:
    rng = random.Random(seed)
    brokers = [Broker(id=i + 1, zone=ZONES[i % 3]) for i in range(n_brokers)]
    target_partitions = n_brokers * PARTITIONS_PER_BROKER
    # Zipf-like topic volumes; bigger topics get more partitions, as people size them
    topics: list[tuple[float, int]] = []
    while sum(c for _, c in topics) < target_partitions:
        weight = (len(topics) + 1) ** -1.1 * rng.uniform(0.5, 1.5)
        count = max(rng.choice((3, 6, 12)), min(96, round(target_partitions * weight / 5)))
        topics.append((weight, count))
    per_weight = BROKER_GIB * GIB * n_brokers / 3 / sum(w for w, _ in topics)
    partitions: list[Partition] = []
    for rank, (weight, count) in enumerate(topics, start=1):
        # the cluster grew from 60% of its brokers to all of them while topics were created
        alive = max(3, round(n_brokers * (0.6 + 0.4 * rank / len(topics))))
        volume = weight * per_weight
        fanout = rng.choice((1.0, 1.0, 2.0, 3.0))
        start = rng.randrange(alive)
        for p in range(count):
            size = int(volume / count * rng.lognormvariate(0, 0.3))  # some keys are hotter
            bytes_in = size / (7 * 86400) * rng.uniform(0.5, 2.0)  # a week of retention
            replicas = _round_robin(brokers[:alive], start, p)
            partitions.append(Partition(topic=f"topic-{rank:04d}", partition=p, replicas=replicas,
                                        leader=replicas[0], size_bytes=size, bytes_in_per_s=bytes_in,
                                        bytes_out_per_s=bytes_in * fanout))
    model = ClusterModel(cluster_id=f"bench-{n_brokers}", brokers=brokers, partitions=partitions)
    # capacity with room to spare, so the capacity goals check but do not steer
    disk = model.total(Resource.DISK) / n_brokers * 2.5
    nw_in = model.total(Resource.NW_IN) / n_brokers * 3
    nw_out = model.total(Resource.NW_OUT) / n_brokers * 3
    cap = BrokerCapacity(disk_bytes=disk, nw_in_bytes_per_s=nw_in, nw_out_bytes_per_s=nw_out)
    return ClusterModel(cluster_id=model.cluster_id, partitions=partitions,
                        brokers=[b.model_copy(update={"capacity": cap}) for b in brokers])


def _round_robin(brokers: list[Broker], start: int, p: int, rf: int = 3) -> tuple[int, ...]:
    """Kafka-like rack-aware placement: leader zone rotates, followers shift per round."""
    by_zone = {z: [b.id for b in brokers if b.zone == z] for z in ZONES}
    first = start + p
    reps = []
    for k in range(rf):
        members = by_zone[ZONES[(first + k) % 3]]
        round_ = first // 3
        shift = 0 if k == 0 else 1 + (round_ // len(members)) % max(1, len(members) - 1)
        reps.append(members[(round_ + k * shift) % len(members)])
    return tuple(reps)


@dataclass
class Scenario:
    name: str
    model: ClusterModel


def scenarios(sizes: list[int], seed: int) -> list[Scenario]:
    out = []
    for n in sizes:
        base = grown_cluster(n, seed)
        out.append(Scenario(f"{n} brokers, rebalance", base))
        if n == 10:
            cap = base.brokers[0].capacity
            new = [Broker(id=11, zone="zone-a", capacity=cap), Broker(id=12, zone="zone-b", capacity=cap)]
            out.append(Scenario("10 brokers, +2 new (scale-out)", base.with_brokers(new)))
            out.append(Scenario("10 brokers, 2 draining (scale-in)",
                                base.with_broker_states({9: BrokerState.DRAINING, 10: BrokerState.DRAINING})))
    return out


# ---- measuring ---------------------------------------------------------------------------


@dataclass
class Result:
    scenario: str
    tool: str
    brokers: int
    partitions: int
    moves: int
    leader_only: int
    copies: int
    gib_moved: float
    seconds: float
    replicas: float
    disk: float
    nw_in: float
    leaders: float
    nw_out: float
    zone_violations: int
    left_on_leaving: int


def measure(scenario: str, tool: str, before: ClusterModel, after: ClusterModel, seconds: float) -> Result:
    moves = leader_only = copies = 0
    moved = 0
    for old, new in zip(before.partitions, after.partitions, strict=True):
        if old.replicas == new.replicas:
            continue
        moves += 1
        added = [b for b in new.replicas if b not in old.replicas]
        leader_only += not added
        copies += len(added)
        moved += old.size_bytes * len(added)
    cfg = GoalConfig()
    spread = {r: DistributionGoal(r, cfg).imbalance(after) for r in SOFT}
    leaving = sum(int(after.load_of(b.id, Resource.REPLICAS)) for b in after.brokers if not b.alive)
    return Result(scenario=scenario, tool=tool, brokers=len(after.brokers), partitions=len(after.partitions),
                  moves=moves, leader_only=leader_only, copies=copies, gib_moved=round(moved / GIB, 1),
                  seconds=round(seconds, 2), replicas=round(spread[Resource.REPLICAS], 3),
                  disk=round(spread[Resource.DISK], 3), nw_in=round(spread[Resource.NW_IN], 3),
                  leaders=round(spread[Resource.LEADERS], 3), nw_out=round(spread[Resource.NW_OUT], 3),
                  zone_violations=int(RackAwareGoal().imbalance(after)), left_on_leaving=leaving)


def lower_bound(s: Scenario) -> Result:
    """What any plan must at least copy to bring replica counts and disk within 10%: the
    excess over the window's top edge (or the shortfall under its bottom edge), whichever
    is larger, plus everything on leaving brokers."""
    cfg = GoalConfig()
    need: dict[Resource, float] = {}
    for r in (Resource.REPLICAS, Resource.DISK):
        goal = DistributionGoal(r, cfg)
        targets = goal.targets(s.model)
        over = under = 0.0
        for b, t in targets.items():
            lo, hi = goal.window(t, cfg.balance_threshold)
            load = s.model.load_of(b, r)
            over += max(0.0, load - hi)
            under += max(0.0, lo - load)
        leaving = sum(s.model.load_of(b.id, r) for b in s.model.brokers if not b.alive)
        need[r] = max(over + leaving, under)
    copies = math.ceil(need[Resource.REPLICAS])
    return Result(scenario=s.name, tool="(lower bound for any plan)", brokers=len(s.model.brokers),
                  partitions=len(s.model.partitions), moves=0, leader_only=0, copies=copies,
                  gib_moved=round(need[Resource.DISK] / GIB, 1), seconds=0.0, replicas=0.1, disk=0.1,
                  nw_in=0.1, leaders=0.1, nw_out=0.1, zone_violations=0, left_on_leaving=0)


def run_analyzer(s: Scenario) -> Result:
    start = time.perf_counter()
    plan = Analyzer().plan(s.model)
    elapsed = time.perf_counter() - start
    after = s.model.clone()
    after.apply_plan(plan)
    if plan.unmet:
        print(f"  {s.name}: not met: {plan.unmet}", flush=True)
    return measure(s.name, "streamplane analyzer", s.model, after, elapsed)


JAVA_SHIM = r"""
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.reflect.Constructor;
import java.lang.reflect.Proxy;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.*;
import org.apache.kafka.tools.reassign.ReassignPartitionsCommand;

/** kafka-reassign-partitions --generate on a load model: an in-memory Admin answers the
 *  three calls generateAssignment makes. Input lines: "broker ID RACK", "partition TOPIC P R1,R2". */
public class KafkaGenerate {
    public static void main(String[] args) throws Exception {
        Map<Integer, Node> nodes = new TreeMap<>();
        Map<String, List<TopicPartitionInfo>> topics = new TreeMap<>();
        List<String[]> parts = new ArrayList<>();
        for (String line : Files.readAllLines(Paths.get(args[0]))) {
            String[] f = line.trim().split(" ");
            if (f[0].equals("broker")) {
                int id = Integer.parseInt(f[1]);
                nodes.put(id, new Node(id, "127.0.0.1", 9092 + id, f[2]));
            } else if (f[0].equals("partition")) {
                parts.add(f);
            }
        }
        for (String[] f : parts) {
            List<Node> reps = new ArrayList<>();
            for (String r : f[3].split(",")) reps.add(nodes.get(Integer.parseInt(r)));
            topics.computeIfAbsent(f[1], k -> new ArrayList<>())
                  .add(new TopicPartitionInfo(Integer.parseInt(f[2]), reps.get(0), reps, reps));
        }
        for (List<TopicPartitionInfo> l : topics.values())
            l.sort(Comparator.comparingInt(TopicPartitionInfo::partition));
        Admin admin = (Admin) Proxy.newProxyInstance(Admin.class.getClassLoader(), new Class<?>[]{Admin.class},
            (proxy, method, a) -> {
                switch (method.getName()) {
                    case "describeCluster":
                        return make(DescribeClusterResult.class,
                            KafkaFuture.completedFuture(new ArrayList<>(nodes.values())),
                            KafkaFuture.completedFuture(nodes.values().iterator().next()),
                            KafkaFuture.completedFuture("model"), KafkaFuture.completedFuture(null));
                    case "describeTopics": {
                        Collection<?> names = a[0] instanceof TopicCollection.TopicNameCollection
                            ? ((TopicCollection.TopicNameCollection) a[0]).topicNames() : (Collection<?>) a[0];
                        Map<String, KafkaFuture<TopicDescription>> m = new HashMap<>();
                        for (Object n : names) {
                            TopicDescription d = new TopicDescription((String) n, false, topics.get(n));
                            m.put((String) n, KafkaFuture.completedFuture(d));
                        }
                        return make(DescribeTopicsResult.class, null, m);
                    }
                    case "describeReplicaLogDirs": {
                        // no log dir known: the tool then proposes "any"
                        Map<TopicPartitionReplica, KafkaFuture<DescribeReplicaLogDirsResult.ReplicaLogDirInfo>> m =
                            new HashMap<>();
                        for (Object r : (Collection<?>) a[0]) {
                            Object none = make(DescribeReplicaLogDirsResult.ReplicaLogDirInfo.class);
                            m.put((TopicPartitionReplica) r,
                                  KafkaFuture.completedFuture((DescribeReplicaLogDirsResult.ReplicaLogDirInfo) none));
                        }
                        return make(DescribeReplicaLogDirsResult.class, m);
                    }
                    case "close": return null;
                    case "toString": return "ModelAdmin";
                    case "hashCode": return 0;
                    case "equals": return proxy == a[0];
                    default: throw new UnsupportedOperationException(method.getName());
                }
            });
        StringBuilder json = new StringBuilder("{\"version\":1,\"topics\":[");
        String sep = "";
        for (String t : topics.keySet()) {
            json.append(sep).append("{\"topic\":\"").append(t).append("\"}");
            sep = ",";
        }
        json.append("]}");
        PrintStream out = System.out;
        System.setOut(new PrintStream(OutputStream.nullOutputStream()));  // the tool prints both assignments
        long t0 = System.nanoTime();
        Map.Entry<Map<TopicPartition, List<Integer>>, Map<TopicPartition, List<Integer>>> result =
            ReassignPartitionsCommand.generateAssignment(admin, json.toString(), args[1], true);
        long t1 = System.nanoTime();
        System.setOut(out);
        System.out.println("elapsed_ms " + (t1 - t0) / 1e6);
        for (Map.Entry<TopicPartition, List<Integer>> e : result.getKey().entrySet()) {
            StringJoiner j = new StringJoiner(",");
            for (Integer b : e.getValue()) j.add(b.toString());
            System.out.println("assign " + e.getKey().topic() + " " + e.getKey().partition() + " " + j);
        }
    }

    static <T> T make(Class<T> c, Object... args) throws Exception {
        for (Constructor<?> k : c.getDeclaredConstructors()) {
            if (k.getParameterCount() == args.length) {
                k.setAccessible(true);
                return c.cast(k.newInstance(args));
            }
        }
        throw new NoSuchMethodException(c + " with " + args.length + " arguments");
    }
}
"""


Assignment = dict[tuple[str, int], tuple[int, ...]]


def kafka_generate(model: ClusterModel, work: Path, classpath: str) -> tuple[Assignment, float]:
    """Kafka's proposal for every topic of ``model`` over its live brokers, and the time the
    tool's own code took (the JVM start is not counted)."""
    shim = work / "KafkaGenerate.java"
    shim.write_text(JAVA_SHIM)
    data = work / "model.txt"
    lines = [f"broker {b.id} {b.zone}" for b in model.brokers]
    lines += [f"partition {p.topic} {p.partition} {','.join(map(str, p.replicas))}" for p in model.partitions]
    data.write_text("\n".join(lines) + "\n")
    alive = ",".join(str(b) for b in model.alive_brokers())
    out = subprocess.run(["java", "-cp", classpath, str(shim), str(data), alive],
                         check=True, capture_output=True, text=True, timeout=600).stdout
    return _parse_proposal(out)


def _parse_proposal(out: str) -> tuple[Assignment, float]:
    proposal: Assignment = {}
    elapsed = math.nan
    for line in out.splitlines():
        f = line.split()
        if f and f[0] == "elapsed_ms":
            elapsed = float(f[1]) / 1000
        elif f and f[0] == "assign":
            proposal[(f[1], int(f[2]))] = tuple(int(b) for b in f[3].split(","))
    return proposal, elapsed


def apply_assignment(model: ClusterModel, proposal: Assignment) -> ClusterModel:
    after = model.clone()
    for key, replicas in proposal.items():
        after.set_assignment(after.index_of(*key), replicas, replicas[0])
    return after


def run_kafka(s: Scenario, work: Path, classpath: str) -> Result:
    proposal, elapsed = kafka_generate(s.model, work, classpath)
    return measure(s.name, "kafka-reassign-partitions --generate", s.model, apply_assignment(s.model, proposal),
                   elapsed)


# ---- the real command line, on a real (small) cluster --------------------------------------


def live_check(classpath: str, work: Path) -> dict[str, object]:
    """Run the real ``kafka-reassign-partitions --generate`` against a 3-broker cluster and
    the in-memory version on the same model; both proposals should load the brokers alike."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    from streamplane.cli.local import LocalDeployment
    from streamplane.models.psc import PhysicalClusterSpec
    from streamplane.models.status import ClusterState, ClusterStatus
    from streamplane.testing import wait_for

    psc = PhysicalClusterSpec.model_validate({
        "id": "benchgen", "controllers": {"mode": "combined", "count": 1},
        "brokers": [{"id": i + 1, "zone": ZONES[i]} for i in range(3)],
        "jvm": {"heap_mb": 256}, "super_user": {"password": secrets.token_urlsafe(18)},
    })
    rng = random.Random(7)
    brokers = [Broker(id=i + 1, zone=ZONES[i]) for i in range(3)]
    parts = []
    for t in range(12):
        for p in range(rng.choice((3, 6, 12))):
            reps = tuple(rng.sample([1, 2, 3], 3))
            parts.append(Partition(topic=f"gen-{t:02d}", partition=p, replicas=reps, leader=reps[0],
                                   size_bytes=rng.randrange(1, 1 << 30)))
    model = ClusterModel(brokers=brokers, partitions=parts)
    local = LocalDeployment(work / "sat")
    user, password = psc.super_user.name, psc.super_user.password.get_secret_value()
    try:
        local.source.submit(psc)
        local.start_satellite()
        def healthy() -> ClusterStatus | None:
            st = local.status(psc.id)
            return st if st is not None and st.status == ClusterState.HEALTHY else None

        status = wait_for(healthy, 240, "the 3-broker cluster to be healthy")
        assert status.bootstrap
        admin = KafkaAdminClient(bootstrap_servers=status.bootstrap.split(","), security_protocol="SASL_PLAINTEXT",
                                 sasl_mechanism="SCRAM-SHA-512", sasl_plain_username=user,
                                 sasl_plain_password=password)
        topics: dict[str, dict[int, list[int]]] = {}
        for part in parts:
            topics.setdefault(part.topic, {})[part.partition] = list(part.replicas)
        admin.create_topics([NewTopic(t, replica_assignments=a) for t, a in topics.items()])
        admin.close()
        (work / "client.properties").write_text(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n"
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{user}" password="{password}";\n')
        (work / "topics.json").write_text(json.dumps({"version": 1, "topics": [{"topic": t} for t in topics]}))
        start = time.perf_counter()
        out = subprocess.run(
            ["java", "-cp", classpath, "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
             "--bootstrap-server", status.bootstrap, "--command-config", str(work / "client.properties"),
             "--topics-to-move-json-file", str(work / "topics.json"), "--broker-list", "1,2,3", "--generate"],
            check=True, capture_output=True, text=True, timeout=300).stdout
        cli_seconds = time.perf_counter() - start
    finally:
        local.down()
    proposed = json.loads(out.split("Proposed partition reassignment configuration")[1].strip().splitlines()[0])
    cli = {(p["topic"], p["partition"]): tuple(p["replicas"]) for p in proposed["partitions"]}
    shim, _ = kafka_generate(model, work, classpath)

    def counts(assignment: Assignment) -> dict[str, list[int]]:
        after = apply_assignment(model, assignment)
        return {"replicas": [int(after.load_of(b, Resource.REPLICAS)) for b in (1, 2, 3)],
                "leaders": [int(after.load_of(b, Resource.LEADERS)) for b in (1, 2, 3)]}

    return {"partitions": len(parts), "cli_seconds": round(cli_seconds, 2), "cli": counts(cli),
            "in_memory": counts(shim), "same_keys": set(cli) == set(shim)}


# ---- main --------------------------------------------------------------------------------


def table(results: list[Result]) -> str:
    head = ("| model | tool | partitions | moves (leader-only) | replica copies | GiB copied | replicas | disk "
            "| nw-in | leaders | nw-out | zone violations | left on leaving | time s |")
    rows = [head, "|" + "---|" * 14]
    for r in results:
        moves = "-" if r.tool.startswith("(lower") else f"{r.moves} ({r.leader_only})"
        rows.append(f"| {r.scenario} | {r.tool} | {r.partitions} | {moves} | {r.copies} "
                    f"| {r.gib_moved} "
                    f"| {r.replicas:.3f} | {r.disk:.3f} | {r.nw_in:.3f} | {r.leaders:.3f} | {r.nw_out:.3f} "
                    f"| {r.zone_violations} | {r.left_on_leaving} | {r.seconds} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10,25,50")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--live-check", action="store_true",
                        help="also run the real command line against a real 3-broker cluster")
    args = parser.parse_args()
    classpath = EngineResolver().resolve(DEFAULT_KAFKA_VERSION).classpath
    results: list[Result] = []
    live: dict[str, object] | None = None
    with tempfile.TemporaryDirectory(prefix="bench-plan-") as tmp:
        work = Path(tmp)
        for s in scenarios([int(x) for x in args.sizes.split(",")], args.seed):
            print(f"{s.name}: {len(s.model.partitions)} partitions", flush=True)
            results.append(measure(s.name, "(current assignment)", s.model, s.model, 0.0))
            results.append(lower_bound(s))
            results.append(run_analyzer(s))
            results.append(run_kafka(s, work, classpath))
        if args.live_check:
            live = live_check(classpath, work)
    print()
    print("Imbalance = largest relative distance of a live broker from its target (the mean of its "
          "cell, or of its zone when every partition has one replica per zone); 0.10 = within 10%.")
    print()
    print(table(results))
    print()
    print(json.dumps({"results": [asdict(r) for r in results], "live_check": live}, indent=1))


if __name__ == "__main__":
    main()
