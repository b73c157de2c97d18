"""The partition rule (interfaces.md, Kafka: partitioning): Kafka's murmur2, pinned by the
test vectors Kafka and librdkafka publish, and a property test against a literal
transcription of the Java code."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from onewindow.topics import Topics, missing_topics_problem, murmur2, partition_for, record_key

# apache/kafka clients/src/test/java/org/apache/kafka/common/utils/UtilsTest.java,
# testMurmur2: Utils.murmur2(bytes) as a Java int.
KAFKA_UTILS_TEST = [
    (b"21", -973932308),
    (b"foobar", -790332482),
    (b"a-little-bit-long-string", -985981536),
    (b"a-little-bit-longer-string", -1486304829),
    (b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58897971),
    (b"abc", 479470107),
]

# confluentinc/librdkafka src/rdmurmur2.c, unittest_murmur2: rd_murmur2(key) as uint32
# ("java_murmur2_results"), every tail length and the empty key among them.
_UNALIGNED = b"PreAmbleWillBeRemoved,ThePrePartThatIs"
LIBRDKAFKA_UNITTEST = [
    (b"kafka", 0xD067CF64),
    (b"giberish123456789", 0x8F552B0C),
    (b"1234", 0x9FC97B14),
    (b"234", 0xE7C009CA),
    (b"34", 0x873930DA),
    (b"4", 0x5A4B5CA1),
    (_UNALIGNED, 0x78424F1C),
    (_UNALIGNED[1:], 0x4A62B377),
    (_UNALIGNED[2:], 0xE0E4E09E),
    (_UNALIGNED[3:], 0x62B8B43F),
    (b"", 0x106E08D9),
]

# The same file in older librdkafka (unittest_murmurhashneutral2) gave the positive
# values Java's toPositive(murmur2(key)) yields: the partitioner's hash before the modulo.
LIBRDKAFKA_POSITIVE = [
    (b"kafka", 1348980580),
    (b"amqp", 767747138),
    (b"giberish123456789", 257239820),
]


@pytest.mark.parametrize("key,expected", KAFKA_UTILS_TEST)
def test_kafka_utils_test_vectors(key: bytes, expected: int) -> None:
    assert murmur2(key) == expected


@pytest.mark.parametrize("key,expected", LIBRDKAFKA_UNITTEST)
def test_librdkafka_unittest_vectors(key: bytes, expected: int) -> None:
    assert murmur2(key) & 0xFFFFFFFF == expected


@pytest.mark.parametrize("key,expected", LIBRDKAFKA_POSITIVE)
def test_the_positive_hash_decides_the_partition(key: bytes, expected: int) -> None:
    assert murmur2(key) & 0x7FFFFFFF == expected
    for n in (1, 2, 3, 7, 12, 100):
        assert partition_for(key, n) == expected % n


def test_partition_of_a_case_key() -> None:
    # "21" hashes to -973932308: toPositive gives 1173551340 (not abs(): 973932308).
    assert partition_for(b"21", 3) == 1173551340 % 3 == 0
    assert partition_for(record_key("GZ20251009000123"), 1) == 0
    with pytest.raises(ValueError, match="at least 1"):
        partition_for(b"x", 0)


def _java_murmur2(data: bytes) -> int:
    """Kafka's Utils.murmur2 transcribed literally: Java ints (32-bit, wrapping, signed
    bytes masked with 0xff), `>>>` as a shift of the unsigned value."""

    def i32(x: int) -> int:
        x &= 0xFFFFFFFF
        return x - (1 << 32) if x >= 1 << 31 else x

    def ushr(x: int, n: int) -> int:
        return (x & 0xFFFFFFFF) >> n

    length = len(data)
    seed = i32(0x9747B28C)
    m = 0x5BD1E995
    r = 24
    h = i32(seed ^ length)
    for i in range(length // 4):
        i4 = i * 4
        k = i32((data[i4 + 0] & 0xFF) + ((data[i4 + 1] & 0xFF) << 8)
                + ((data[i4 + 2] & 0xFF) << 16) + ((data[i4 + 3] & 0xFF) << 24))
        k = i32(k * m)
        k = i32(k ^ ushr(k, r))
        k = i32(k * m)
        h = i32(h * m)
        h = i32(h ^ k)
    rest = length % 4
    base = length & ~3
    if rest == 3:
        h = i32(h ^ ((data[base + 2] & 0xFF) << 16))
    if rest >= 2:
        h = i32(h ^ ((data[base + 1] & 0xFF) << 8))
    if rest >= 1:
        h = i32(h ^ (data[base] & 0xFF))
        h = i32(h * m)
    h = i32(h ^ ushr(h, 13))
    h = i32(h * m)
    h = i32(h ^ ushr(h, 15))
    return h


@given(key=st.binary(max_size=200), partitions=st.integers(min_value=1, max_value=10_000))
def test_partition_for_is_the_java_default_partitioner(key: bytes, partitions: int) -> None:
    h = _java_murmur2(key)
    assert murmur2(key) == h and -(2**31) <= h < 2**31
    p = partition_for(key, partitions)
    assert p == (h & 0x7FFFFFFF) % partitions and 0 <= p < partitions


@given(key=st.binary(max_size=64), n=st.integers(min_value=1, max_value=64),
       times=st.integers(min_value=1, max_value=8))
def test_a_multiple_of_the_count_splits_each_partition(key: bytes, n: int, times: int) -> None:
    """Growing the partitions to a multiple keeps every key within the partition it had
    modulo the old count (what a re-partitioning plan can rely on)."""
    assert partition_for(key, n * times) % n == partition_for(key, n)


def test_a_generation_whose_outputs_are_not_all_listed_is_named() -> None:
    topics = Topics("g1.")
    every = dict.fromkeys(topics.outputs(), 6)
    assert missing_topics_problem(every, topics, "svc-stream") is None
    assert missing_topics_problem({}, topics, "svc-stream").startswith(
        "none of the output topics of prefix 'g1.' are visible to svc-stream: run "
        "`onewindow provision` with ONEWINDOW_TOPIC_PREFIX=g1. first")
    some = {k: v for k, v in every.items() if k != topics.dead_letters}
    assert missing_topics_problem(some, topics, "svc-stream").startswith(
        f"1 of the output topics ({topics.dead_letters}) of prefix 'g1.'")
