"""The steps of `onewindow reprocess` without Kafka: the live processors' outputs, the
changelog records a Faust table would write, and a run resumed from its changelog equal
to one that was not interrupted."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from onewindow.calendar_source import load_calendar
from onewindow.codec import get_codec
from onewindow.config import Settings
from onewindow.departments import load_registry
from onewindow.domain.case import fold, project
from onewindow.domain.materials import Link, all_links, material_from_event
from onewindow.security.id_protection import IdProtector
from onewindow.topics import Topics, partition_for
from producers.scenarios import ScenarioConfig, ScenarioGenerator
from stream_apps.case_processor import CaseProcessor
from stream_apps.materials_processor import MaterialIndexer, MaterialRouter
from stream_apps.records import InRecord, OutRecord
from stream_apps.reprocess_run import groups
from stream_apps.reprocess_stages import (
    FoldStage,
    IndexStage,
    Plan,
    RouteStage,
    StateStore,
    TargetTopics,
)

IDS = IdProtector("unit-test-id-hash-key-0123456789abcdef")
SOURCE, TARGET = "s.", "t."
SOURCE_N, TARGET_N = 3, 4
PLAN = Plan(SOURCE, TARGET, SOURCE_N, TARGET_N, (), jobs=1, batch_max=100, state_dir="x")


def _cases(n: int = 30) -> list[list[dict[str, Any]]]:
    return list(ScenarioGenerator(ScenarioConfig(seed=77)).cases(n))


def _records(cases: list[list[dict[str, Any]]]) -> list[InRecord]:
    """Each event on its department's source topic, on its key's partition."""
    codec, src = get_codec(), Topics(SOURCE)
    out = []
    for i, e in enumerate(e for case in cases for e in case):
        key = e["case_id"].encode()
        out.append(InRecord(src.input(e["department"]), partition_for(key, SOURCE_N), i, key,
                            codec.encode(e), 1_760_000_000_000 + i))
    return out


def _fold_stage(tmp_path: Path, name: str) -> FoldStage:
    registry = load_registry()
    processor = CaseProcessor(codec=get_codec(), topics=PLAN.target, departments=registry.codes,
                              counters=registry.counter_codes, calendar=load_calendar(),
                              ids=IDS, partitions=SOURCE_N)
    return FoldStage(processor, StateStore(tmp_path / name, 64 << 20),
                     changelog=PLAN.fold_changelog, target_partitions=TARGET_N,
                     owns=lambda _key: True)


def _run(stage: FoldStage | RouteStage | IndexStage, records: list[InRecord],
         batch: int) -> list[OutRecord]:
    out: list[OutRecord] = []
    for i in range(0, len(records), batch):
        out.extend(stage.step(records[i:i + batch]))
    return out


def test_the_target_generation_reads_the_sources_inputs_and_names_its_own_outputs() -> None:
    target = PLAN.target
    assert isinstance(target, TargetTopics)
    assert target.input("gaj") == "s.dept.gaj.events"
    assert target.department_of("s.dept.gaj.events") == "gaj"
    assert target.department_of("t.dept.gaj.events") is None
    assert target.case_state == "t.onewindow.case-state"
    assert PLAN.case_group == "t.onewindow-case-state"
    assert PLAN.fold_changelog == "t.onewindow-case-state-case-fold-changelog"
    assert PLAN.index_changelog == "t.onewindow-materials-material-index-changelog"
    assert PLAN.material_index == "t.onewindow.material-index"


def test_the_changelogs_are_the_ones_the_live_apps_restore_from(tmp_path: Path) -> None:
    """A live worker of the target generation must find the state where reprocess wrote it:
    the changelog topics Faust derives for the two tables."""
    import stream_apps.app as case_app  # noqa: PLC0415 - Faust: only for this test
    import stream_apps.materials_app as materials_app  # noqa: PLC0415

    settings = Settings(data_dir=tmp_path, kafka_security_protocol="PLAINTEXT",
                        insecure_dev_key=True, topic_prefix=TARGET)
    [fold_log] = case_app.create_app(settings, ids=IDS).tables.changelog_topics
    [index_log] = materials_app.create_app(settings, ids=IDS).tables.changelog_topics
    assert (fold_log, index_log) == (PLAN.fold_changelog, PLAN.index_changelog)


def test_the_fold_writes_the_processors_outputs_and_each_changed_case_to_the_changelog(
        tmp_path: Path) -> None:
    cases = _cases()
    records = _records(cases)
    stage = _fold_stage(tmp_path, "fold")
    out = _run(stage, records, batch=50)
    logged = [o for o in out if o.topic == PLAN.fold_changelog]
    assert logged
    for o in logged:  # on the case's partition of the target's co-partitioned topics
        assert o.partition == partition_for(o.key, TARGET_N)
    codec = get_codec()
    states = {}
    for o in out:
        if o.topic == "t.onewindow.case-state":
            states[o.key.decode()] = codec.decode_record(o.value)
    cal = load_calendar()
    for case in cases:
        view = project(fold([IDS.protect_event(e) for e in case]), cal)
        got = {k: v for k, v in states[case[0]["case_id"]].items()
               if k not in ("type", "source_timestamp", "last_event_id")}
        assert got == view
    # the store holds the last changelog value of every case
    last = {o.key: o.value for o in logged}
    assert {k: stage.store.get(k.decode()) for k in last} == last
    assert stage.counts["applied"] == len(records)
    assert {o.topic for o in out} == {PLAN.fold_changelog, "t.onewindow.case-state",
                                      "t.onewindow.case-activity"}


def test_a_fold_resumed_from_its_changelog_ends_as_one_that_ran_through(tmp_path: Path) -> None:
    """A run stopped after some batches continues from its committed offsets with its state
    restored from the changelog (records of other partition groups left out): the same
    final states and activity as a run that was never stopped."""
    cases = _cases()
    records = _records(cases)
    whole = _run(_fold_stage(tmp_path, "whole"), records, batch=40)
    cut = len(records) // 2
    first = _fold_stage(tmp_path, "first")
    before = _run(first, records[:cut], batch=40)
    mine = {partition_for(r.key, SOURCE_N) for r in records if r.key is not None} - {0}
    resumed = _fold_stage(tmp_path, "resumed")
    resumed.owns = lambda key: partition_for(key, SOURCE_N) in mine
    for o in before:
        if o.topic == PLAN.fold_changelog:
            resumed.restore(o.key, o.value)
    resumed.restore(b"@calendar:0", b"{}")  # a reserved key: not a case
    assert resumed.store.get("@calendar:0") is None
    theirs = [r for r in records[cut:] if partition_for(r.key, SOURCE_N) in mine]
    after = _run(resumed, theirs, batch=40)

    def final(out: list[OutRecord]) -> dict[bytes, bytes]:
        return {o.key: o.value for o in out if o.topic == PLAN.fold_changelog
                and partition_for(o.key, SOURCE_N) in mine}

    assert final(before) | final(after) == final(whole)

    def activity(out: list[OutRecord]) -> dict[int, bytes]:
        return {get_codec().decode_record(o.value)["source_offset"]: o.value
                for o in out if o.topic == "t.onewindow.case-activity"}

    # each record's activity is the one of the run that went through: the state it was
    # applied to (its version) was restored
    offsets = {r.offset for r in theirs}
    assert activity(after) == {k: v for k, v in activity(whole).items() if k in offsets}


def test_route_and_index_give_the_links_of_the_pure_rules_and_restore_their_buckets(
        tmp_path: Path) -> None:
    cases = _cases(60)
    materials = [material_from_event(e) for c in cases for e in c
                 if e["type"] in ("MaterialSubmitted", "CertificateIssued")]
    folded = _run(_fold_stage(tmp_path, "fold"), _records(cases), batch=100)
    activity = [InRecord(o.topic, 0, i, o.key, o.value, 1_760_000_000_000)
                for i, o in enumerate(folded) if o.topic == "t.onewindow.case-activity"]
    route = RouteStage(MaterialRouter(codec=get_codec(), index_topic=PLAN.material_index,
                                      ids=IDS))
    index_records = [InRecord(o.topic, partition_for(o.key, TARGET_N), i, o.key, o.value,
                              1_760_000_000_000)
                     for i, o in enumerate(_run(route, activity, batch=100))]
    assert route.counts["materials"] == len(materials)
    cut = len(index_records) // 2

    def indexer(name: str) -> IndexStage:
        return IndexStage(MaterialIndexer(codec=get_codec(), links_topic="t.links"),
                          StateStore(tmp_path / name, 64 << 20), changelog=PLAN.index_changelog)

    first = indexer("first")
    before = _run(first, index_records[:cut], batch=30)
    resumed = indexer("resumed")
    for o in before:
        if o.topic == PLAN.index_changelog:
            assert o.partition == partition_for(o.key, TARGET_N)  # the record's own
            resumed.restore(o.key, o.value)
    after = _run(resumed, index_records[cut:], batch=30)
    codec = get_codec()
    links = {Link.from_dict(codec.decode_record(o.value, "MaterialLink"))
             for o in before + after if o.topic == "t.links"}
    assert links == all_links(materials)


def test_partition_p_of_every_topic_goes_to_group_p_mod_jobs() -> None:
    spans = {("a", 0): (0, 5), ("b", 0): (3, 9), ("a", 1): (0, 0), ("a", 2): (1, 2),
             ("b", 3): (0, 1)}
    assert groups(spans, 2) == {0: {("a", 0): (0, 5), ("b", 0): (3, 9), ("a", 2): (1, 2)},
                                1: {("b", 3): (0, 1)}}
    assert groups(spans, 1) == {0: {k: v for k, v in spans.items() if v[0] < v[1]}}
