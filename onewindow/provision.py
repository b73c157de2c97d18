"""Provision the cluster: topics, principals (SCRAM credentials) and ACLs; idempotent.

Run by `onewindow provision` and `onewindow up`, signed in as the broker's own principal
(the only super user). The ACLs follow interfaces.md ("who may do what"), derived from
the department registry by the pure `acl_plan`; a department removed from the registry
loses its ACLs and its credential on the next run. `onewindow provision --show` prints
the plan.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialDeletion,
    UserScramCredentialUpsertion,
)

from onewindow.broker_wait import BrokerUnreachable, wait_for_broker
from onewindow.config import Settings
from onewindow.errors import OneWindowError
from onewindow.security.kafka_auth import (
    ADMIN,
    GATEWAY,
    OPS,
    SERVICES,
    SINK,
    STREAM,
    CredentialStore,
    credential_store,
    department_of_principal,
    department_principal,
    producer_config,
)
from onewindow.topics import Topics, durability_config, replication_for


class ProvisionError(OneWindowError):
    """A topic could not be created, or exists with a layout that breaks co-partitioning."""


@dataclass(frozen=True)
class TopicPlan:
    name: str
    partitions: int
    config: dict[str, str]


def material_index_topic(topics: Topics) -> str:
    """The materials app's internal repartition topic: one record per (material, index
    key), keyed by the index key (stream_apps.materials_processor)."""
    return f"{topics.prefix}onewindow.material-index"


def plan(topics: Topics, departments: Iterable[str], partitions: int) -> list[TopicPlan]:
    """Every topic the stack needs. Inputs and case-keyed outputs share one partition
    count so that they are co-partitioned by case_id; the materials app's index topic has
    the same count (its table partitions follow it), and so has the case-state app's
    calendar-check topic (a check on partition p reads and writes the table's partition p).

    The two tables' changelogs are created here too (compacted, the same count), as
    Faust would create them at a worker's first start: a worker then finds them on every
    broker. Left to Faust on a fresh cluster, the worker created its changelog and asked
    a broker that had not heard of it yet, which answered 0 partitions, and Faust's
    partition check stopped the worker (`PartitionsMismatch`, issue 17). So are both
    apps' leader topics (one partition each; `Topics.leader_topics`)."""
    out = [TopicPlan(topics.input(d), partitions, {}) for d in sorted(departments)]
    out.append(TopicPlan(topics.case_state, partitions,
                         {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1",
                          "segment.ms": "3600000"}))
    out.append(TopicPlan(topics.case_activity, partitions, {}))
    out.append(TopicPlan(topics.material_links, partitions, {}))
    out.append(TopicPlan(topics.dead_letters, partitions, {}))
    out.append(TopicPlan(material_index_topic(topics), partitions, {}))
    out.append(TopicPlan(topics.calendar_checks, partitions, {}))
    out += [TopicPlan(name, partitions, {"cleanup.policy": "compact"})
            for name in (topics.case_fold_changelog, topics.material_index_changelog)]
    out += [TopicPlan(name, 1, {}) for name in topics.leader_topics]
    return out


def ensure_topics(admin_conf: dict[str, object], wanted: list[TopicPlan], replication: int = 1,
                  timeout: float = 30.0) -> list[str]:
    """Create what is missing; check what exists. Returns the names it created.
    `admin_conf`: librdkafka settings of a client allowed to create topics.

    A topic is created with `replication` copies and `onewindow.topics.durability_config`
    (`min.insync.replicas` 2 from three copies on, no unclean leader election) under its
    own settings. Raises ProvisionError for an existing topic with another partition count
    or fewer copies than `replication` (Kafka does not add copies by a setting:
    docs/operations.md, "A three-broker cluster")."""
    admin = AdminClient(admin_conf)
    existing = admin.list_topics(timeout=timeout).topics
    for t in wanted:
        have = existing.get(t.name)
        if have is not None and len(have.partitions) != t.partitions:
            raise ProvisionError(
                f"topic {t.name} has {len(have.partitions)} partitions, expected {t.partitions}: "
                "all input topics must be co-partitioned (same count)")
        copies = min((len(p.replicas) for p in have.partitions.values()), default=replication) \
            if have is not None else replication
        if copies < replication:
            raise ProvisionError(
                f"topic {t.name} has {copies} replicas, expected {replication}: add them with "
                "kafka-reassign-partitions, or provision a new generation of topics")
    missing = [t for t in wanted if t.name not in existing]
    if not missing:
        return []
    made: set[str] = set()  # over every attempt: one sent again finds these existing

    def create(client: AdminClient, request_timeout: float) -> None:
        futures = client.create_topics(
            [NewTopic(t.name, num_partitions=t.partitions, replication_factor=replication,
                      config={**durability_config(replication), **t.config})
             for t in missing if t.name not in made],
            operation_timeout=timeout, request_timeout=request_timeout)
        for name, fut in futures.items():
            try:
                fut.result()
                made.add(name)
            except KafkaException as exc:
                err = exc.args[0] if exc.args else None
                if isinstance(err, KafkaError) and \
                        err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    continue  # raced with another provisioner: harmless
                if _again(exc):
                    raise  # sent again (`_admin_request`)
                detail = err.str() if isinstance(err, KafkaError) else str(exc)
                raise ProvisionError(f"creating topic {name} failed: {detail}") from exc

    _admin_request(admin_conf, create, "creating topics", timeout=timeout)
    return sorted(made)


# --------------------------------------------------------------------------- ACLs


@dataclass(frozen=True, order=True)
class Grant:
    """One ALLOW ACL: `principal` may `operation` on the `resource` named `name`
    (`pattern` LITERAL: that name; PREFIXED: every name that starts with it)."""

    principal: str
    resource: str   # TOPIC | GROUP | TRANSACTIONAL_ID
    pattern: str    # LITERAL | PREFIXED
    name: str
    operation: str  # READ | WRITE | ALL ...

    def binding(self) -> AclBinding:
        return AclBinding(ResourceType[self.resource], self.name,
                          ResourcePatternType[self.pattern], f"User:{self.principal}", "*",
                          AclOperation[self.operation], AclPermissionType.ALLOW)


def acl_plan(topics: Topics, departments: Iterable[str]) -> list[Grant]:
    """Who may do what (interfaces.md, Kafka), for one topic prefix:

    - `dept-<code>`: WRITE its own input topic (an idempotent producer needs no more:
      KIP-679), and WRITE transactional ids that start with `dept-<code>-`; nothing else,
      reading included;
    - `svc-stream` (both Faust apps): READ the input topics, READ and WRITE the
      `onewindow.` topics (outputs, the material index), ALL on the internal topics of
      its two app ids (`onewindow-case-state-`, `onewindow-materials-`: changelogs, the
      leader topic) and READ on those two consumer groups;
    - `svc-sink` (the sink and the rebuild): READ the four output topics, its groups;
    - `svc-ops`: READ the dead letters;
    - `svc-gateway`: WRITE every input topic (it publishes for authenticated
      departments).
    Nobody gets CREATE or ALTER on the cluster; the broker's own principal is the only
    super user."""
    pre = topics.prefix
    out: list[Grant] = []
    for code in sorted(departments):
        who = department_principal(code)
        out.append(Grant(who, "TOPIC", "LITERAL", topics.input(code), "WRITE"))
        # the dash ends the prefix: `dept-ga` must not get `dept-gaj-...`'s ids
        out.append(Grant(who, "TRANSACTIONAL_ID", "PREFIXED", f"{pre}{who}-", "WRITE"))
    out += [
        Grant(STREAM, "TOPIC", "PREFIXED", f"{pre}dept.", "READ"),
        Grant(STREAM, "TOPIC", "PREFIXED", f"{pre}onewindow.", "READ"),
        Grant(STREAM, "TOPIC", "PREFIXED", f"{pre}onewindow.", "WRITE"),
        *(g for app in (topics.case_state_app, topics.materials_app) for g in (
            Grant(STREAM, "TOPIC", "PREFIXED", f"{app}-", "ALL"),
            Grant(STREAM, "GROUP", "LITERAL", app, "READ"))),
        Grant(OPS, "TOPIC", "LITERAL", topics.dead_letters, "READ"),
        Grant(OPS, "GROUP", "PREFIXED", f"{pre}onewindow-ops", "READ"),
        Grant(GATEWAY, "TOPIC", "PREFIXED", f"{pre}dept.", "WRITE"),
    ]
    out += [Grant(SINK, "TOPIC", "LITERAL", t, "READ") for t in topics.outputs()]
    out.append(Grant(SINK, "GROUP", "PREFIXED", f"{pre}onewindow-sink", "READ"))
    return sorted(out)


def _managed(binding: AclBinding, topics: Topics) -> bool:
    """An ACL this prefix's provisioning owns: one of our principals on one of our names."""
    user = binding.principal.removeprefix("User:")
    ours = user in SERVICES or department_of_principal(user) is not None
    pre = topics.prefix
    return ours and (binding.name.startswith(f"{pre}dept") or
                     binding.name.startswith(f"{pre}onewindow"))


def _grant_of(b: AclBinding) -> Grant:
    return Grant(b.principal.removeprefix("User:"), b.restype.name, b.resource_pattern_type.name,
                 b.name, b.operation.name)


@dataclass
class SecurityReport:
    users_created: list[str] = field(default_factory=list)
    users_deleted: list[str] = field(default_factory=list)
    acls_created: int = 0
    acls_deleted: int = 0


_ANY = AclBindingFilter(ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
                        AclOperation.ANY, AclPermissionType.ANY)
_SCRAM = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)


#: librdkafka's codes of a request that may not have reached the cluster, or whose answer
#: was lost: the admin request is sent again (every one provisioning sends is idempotent)
_AGAIN = frozenset({KafkaError._TIMED_OUT, KafkaError.REQUEST_TIMED_OUT,  # noqa: SLF001
                    KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN,  # noqa: SLF001
                    KafkaError.NOT_CONTROLLER, KafkaError._WAIT_COORD,  # noqa: SLF001
                    # librdkafka 2.x drops a bootstrap address's handle once the metadata
                    # names the broker otherwise; a request on it ends so (a newcomer saw
                    # it on a cluster just started)
                    KafkaError._DESTROY_BROKER})  # noqa: SLF001

#: seconds each admin request is given before it is sent again
REQUEST_TIMEOUT = 15.0


def _again(exc: KafkaException) -> bool:
    err = exc.args[0] if exc.args else None
    return isinstance(err, KafkaError) and (err.code() in _AGAIN or err.retriable())


def _admin_request(admin_conf: dict[str, object], send: Callable[[AdminClient, float], Any],
                   what: str, *, timeout: float = 60.0,
                   done_on_retry: Callable[[KafkaError], bool] = lambda _e: False,
                   say: Callable[[str], None] | None = None) -> Any:
    """Run ``send(admin, request_timeout)`` (an admin request given that many seconds; it
    waits for its own futures and returns what they give) and return its result, sending
    it again through a new client while it times out or meets a transport error, for up
    to ``timeout`` s in all.

    librdkafka sends an admin request to one broker it is connected to; a broker frozen
    mid-connection (SIGSTOP, a stalled VM) still counts as connected until its socket
    times out, and a request sent to it timed out (issue 17: provisioning on a cluster
    with a node stopped failed on CreateAcls). A new client's connection to that node
    never finishes its handshake, so the request goes to a live one. Every request
    provisioning sends is idempotent (an upsertion, a creation of what is missing, a
    listing); ``done_on_retry`` says which error of a retried request means the first
    one took effect (a deletion answered "not found"). Each retry is told through
    ``say`` in one line. Raises ProvisionError naming ``what`` for any other error (a
    refusal: exit status 2), BrokerUnreachable when it still times out after
    ``timeout`` (exit status 1, as for a broker that never answered)."""
    deadline = time.monotonic() + timeout
    admin, attempt = AdminClient(admin_conf), 0
    while True:
        attempt += 1
        try:
            return send(admin, max(1.0, min(REQUEST_TIMEOUT, deadline - time.monotonic())))
        except KafkaException as exc:
            err = exc.args[0] if exc.args else None
            if attempt > 1 and isinstance(err, KafkaError) and done_on_retry(err):
                return None
            told = err.str() if isinstance(err, KafkaError) else str(exc)
            if not _again(exc):
                raise ProvisionError(f"{what}: {told}") from exc
            if time.monotonic() + 1.0 >= deadline:
                raise BrokerUnreachable(f"{what}: no broker answered within {timeout:g}s "
                                        f"({told})") from exc
            if say is not None:
                say(f"{what}: {told}; asking again")
        time.sleep(1.0)
        admin = AdminClient(admin_conf)


def _each(futures: Mapping[Any, Any]) -> list[Any]:
    """The results of an admin request's futures, in order (raises the first error)."""
    return [fut.result() for fut in futures.values()]


def _existing_users(admin_conf: dict[str, object], timeout: float,
                    say: Callable[[str], None] | None) -> set[str]:
    return _admin_request(
        admin_conf, lambda a, t: set(a.describe_user_scram_credentials(
            request_timeout=t).result()),
        "listing SCRAM users", timeout=timeout, say=say)


# --------------------------------------------------------------------------- every broker
# A credential or an ACL is committed to the cluster's metadata log when the request that
# made it returns; each broker applies the log on its own and enforces the change only
# from then (a broker that starts again opens its listener only once it has caught up:
# Kafka 3.9 BrokerServer.startup). Kafka's own end-to-end tests wait on every broker's
# authorizer after creating ACLs (TestUtils.waitAndVerifyAcls); so does provisioning.
# librdkafka cannot send a request to a broker of one's choice: aiokafka's connection can.

#: seconds one broker is given to accept a connection and answer one request
ASK_TIMEOUT = 5.0
#: seconds of waiting on the brokers before provisioning says what it waits for
SAY_AFTER = 3.0

#: Kafka's protocol codes (ResourceType, PatternType, AclOperation; AclPermissionType
#: ALLOW is 3): only what `Grant` names
_RESOURCE = {2: "TOPIC", 3: "GROUP", 4: "CLUSTER", 5: "TRANSACTIONAL_ID"}
_PATTERN = {3: "LITERAL", 4: "PREFIXED"}
_ALLOW = 3


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    return (host.strip("[]") or address.strip(), int(port) if port.isdigit() else 9092)


def client_addresses(admin_conf: Mapping[str, object], timeout: float = 10.0) -> list[str]:
    """Every address a client of the cluster may be sent to, "host:port", sorted: those of
    `bootstrap.servers` in `admin_conf` (librdkafka settings) and each live broker's
    advertised one."""
    boot = {a.strip() for a in str(admin_conf["bootstrap.servers"]).split(",") if a.strip()}
    md = AdminClient(dict(admin_conf)).list_topics(timeout=timeout)
    return sorted(boot | {f"{b.host}:{b.port}" for b in md.brokers.values()})


def _sign_in(admin_conf: Mapping[str, object], user: str | None = None,
             password: str | None = None) -> dict[str, Any]:
    """aiokafka's connection settings for librdkafka's `admin_conf`, as `user` if given."""
    from aiokafka.helpers import create_ssl_context  # noqa: PLC0415 - see _connect

    protocol = str(admin_conf.get("security.protocol", "PLAINTEXT")).upper()
    out: dict[str, Any] = {"security_protocol": protocol}
    if protocol.startswith("SASL"):
        out.update(sasl_mechanism=str(admin_conf["sasl.mechanism"]),
                   sasl_plain_username=user or str(admin_conf["sasl.username"]),
                   sasl_plain_password=password or str(admin_conf["sasl.password"]))
    if protocol.endswith("SSL"):
        ca = admin_conf.get("ssl.ca.location")
        out["ssl_context"] = create_ssl_context(cafile=str(ca) if ca else None)
    return out


class _Down(OSError):
    """The address refuses connections, or cannot be reached: no broker listens there."""


async def _connect(address: str, settings: dict[str, Any]) -> Any:
    # aiokafka, not librdkafka, because librdkafka cannot be told which broker to ask;
    # imported here: the shared core loads no runtime framework on import (test_layers)
    from aiokafka.conn import create_conn  # noqa: PLC0415

    host, port = _host_port(address)
    try:
        return await asyncio.wait_for(
            create_conn(host, port, client_id="onewindow-provision",
                        request_timeout_ms=int(ASK_TIMEOUT * 1000), **settings),
            ASK_TIMEOUT)
    except TimeoutError:
        raise  # it accepted the connection and did not answer: a broker starting or stalled
    except ssl.SSLError as exc:  # not a broker that is down: one this client cannot trust
        raise ProvisionError(f"TLS with the broker at {address} failed: {exc}") from exc
    except OSError as exc:  # refused, unreachable (TimeoutError is an OSError too)
        raise _Down(str(exc)) from exc


async def broker_acls(address: str, admin_conf: Mapping[str, object]) -> frozenset[Grant]:
    """The ALLOW ACLs that the broker at `address` ("host:port") itself enforces: its
    own answer to DescribeAcls, from its authorizer, as `Grant`s; `admin_conf` are the
    librdkafka settings of a client allowed to describe ACLs. Raises OSError when nothing
    listens there, `TimeoutError` (after `ASK_TIMEOUT`) or aiokafka's `KafkaError` when
    it does not answer, ProvisionError when it answers an error or TLS fails."""
    from aiokafka.protocol.admin import DescribeAclsRequest  # noqa: PLC0415 - see _connect

    conn = await _connect(address, _sign_in(admin_conf))
    try:  # every ACL: ANY (1) of each kind, any name, principal and host
        res = await conn.send(DescribeAclsRequest(
            resource_type=1, resource_name=None, resource_pattern_type_filter=1,
            principal=None, host=None, operation=1, permission_type=1))
    finally:
        await conn.close()
    if res.error_code:
        raise ProvisionError(f"broker {address} answered DescribeAcls with error "
                             f"{res.error_code}: {res.error_message}")
    out = set()
    for restype, name, pattern, entries in res.resources:
        for principal, _host, operation, permission in entries:
            if permission == _ALLOW and restype in _RESOURCE and pattern in _PATTERN:
                try:
                    op = AclOperation(operation).name
                except ValueError:
                    op = str(operation)
                out.add(Grant(principal.removeprefix("User:"), _RESOURCE[restype],
                              _PATTERN[pattern], name, op))
    return frozenset(out)


async def _signs_in(address: str, admin_conf: Mapping[str, object], user: str,
                    password: str) -> bool:
    from aiokafka.errors import KafkaError as AIOKafkaError  # noqa: PLC0415 - see _connect

    try:
        conn = await _connect(address, _sign_in(admin_conf, user, password))
    except AIOKafkaError:  # authentication failed: it does not know the credential yet
        return False
    await conn.close()
    return True


async def _lacking(address: str, admin_conf: Mapping[str, object], wanted: frozenset[Grant],
                   gone: frozenset[Grant], sign_ins: Mapping[str, str]) -> str | None:
    """What the broker at `address` does not enforce yet (None: all of it, or it is
    down)."""
    from aiokafka.errors import KafkaError as AIOKafkaError  # noqa: PLC0415 - see _connect

    try:
        have = await broker_acls(address, admin_conf)
        lacks = [*(f"ACL {g}" for g in sorted(wanted - have)),
                 *(f"removal of ACL {g}" for g in sorted(gone & have))]
        signed = await asyncio.gather(*(_signs_in(address, admin_conf, user, password)
                                        for user, password in sign_ins.items()))
        lacks += [f"the credential of {user}"
                  for user, ok in zip(sign_ins, signed, strict=True) if not ok]
        return f"{len(lacks)} missing, e.g. {lacks[0]}" if lacks else None
    except _Down:
        return None
    except (TimeoutError, AIOKafkaError) as exc:
        return f"no answer ({type(exc).__name__} {exc})".replace(" )", ")")


def wait_on_every_broker(admin_conf: Mapping[str, object], wanted: Iterable[Grant], *,
                         gone: Iterable[Grant] = (), sign_ins: Mapping[str, str] | None = None,
                         timeout: float = 30.0,
                         say: Callable[[str], None] | None = None) -> None:
    """Until every broker at `client_addresses(admin_conf)`, each asked itself, enforces
    the ACLs `wanted` and none of `gone`, and lets each principal of `sign_ins` (name ->
    password) sign in. An address that refuses connections is not waited for (no broker
    runs there; one that starts again catches up before it listens); one that accepts and
    does not answer is (a broker starting, or stalled: it would answer a client from a
    stale copy). Once it has waited `SAY_AFTER` s, says so through `say` in one line,
    naming the brokers and what they lack (a newcomer saw provisioning sit silent for
    30 s with a node stalled). Raises BrokerUnreachable (exit status 1) after `timeout`
    seconds naming each broker that does not. Not from inside a running asyncio event
    loop (it runs its own)."""
    want, drop = frozenset(wanted), frozenset(gone)
    users = dict(sign_ins or {})
    deadline = time.monotonic() + timeout
    todo = client_addresses(admin_conf, timeout=min(timeout, 15.0))

    async def ask(addresses: list[str]) -> dict[str, str]:
        found = await asyncio.gather(*(_lacking(a, admin_conf, want, drop, users)
                                       for a in addresses))
        return {a: why for a, why in zip(addresses, found, strict=True) if why is not None}

    started, told = time.monotonic(), False
    while True:
        lacking = asyncio.run(ask(todo))
        if not lacking:
            return
        lines = "; ".join(f"{a}: {why}" for a, why in sorted(lacking.items()))
        if time.monotonic() > deadline:
            raise BrokerUnreachable(
                f"not every broker enforces the credentials and ACLs within {timeout:g}s: "
                + lines)
        if say is not None and not told and time.monotonic() - started >= SAY_AFTER:
            told = True
            say(f"waiting up to {timeout:g}s for every broker to apply the credentials "
                f"and ACLs ({lines})")
        todo = sorted(lacking)
        time.sleep(0.3)


def ensure_security(admin_conf: dict[str, object], topics: Topics, departments: Iterable[str],
                    store: CredentialStore, *, rotate: Iterable[str] = (),
                    timeout: float = 30.0,
                    say: Callable[[str], None] | None = None) -> SecurityReport:
    """Make the cluster's principals and ACLs those of `acl_plan`, idempotently.

    Every service and `dept-<code>` principal gets a SCRAM-SHA-512 credential (a random
    password kept in `store`; a principal in `rotate` gets a new one); a `dept-*`
    principal whose department left the registry loses its credential, its file and its
    ACLs. ACLs of this prefix that the plan lacks are deleted.

    Returns once every broker a client can reach (`client_addresses`) enforces all of it,
    each asked itself (`wait_on_every_broker`): a credential or an ACL is committed to
    the metadata log before each broker has applied it, and a broker that has not yet
    refuses (issue 17: a department's producer bootstrapped through a broker a second
    behind was answered TOPIC_AUTHORIZATION_FAILED and its events failed). Each admin
    request is sent again while it times out (`_admin_request`). Raises ProvisionError
    for a refusal; BrokerUnreachable when a request or a broker has not answered after
    `timeout` seconds, naming it. Waits and retries are told through `say`."""
    departments = sorted(departments)
    report = SecurityReport()
    wanted_users = [*SERVICES, *(department_principal(c) for c in departments)]
    rotate = set(rotate)
    existing = _existing_users(admin_conf, timeout, say)
    sign_ins: dict[str, str] = {}  # the credentials set now: each broker must know them
    for user in wanted_users:
        had = store.get(user)
        if user in rotate:
            store.remove(user)
        password = store.ensure(user)
        if user in existing and had and user not in rotate:
            continue
        # one alteration per user per request (KRaft refuses two for one user)
        up = UserScramCredentialUpsertion(user, _SCRAM, password.encode())
        _admin_request(admin_conf, lambda a, t, up=up: _each(a.alter_user_scram_credentials(
            [up], request_timeout=t)),
            f"setting the credential of {user}", timeout=timeout, say=say)
        report.users_created.append(user)
        sign_ins[user] = password
    gone = sorted(u for u in existing if department_of_principal(u) is not None
                  and u not in wanted_users)
    for user in gone:
        rm = UserScramCredentialDeletion(user, ScramMechanism.SCRAM_SHA_512)
        _admin_request(admin_conf, lambda a, t, rm=rm: _each(a.alter_user_scram_credentials(
            [rm], request_timeout=t)),
            f"deleting the credential of {user}", timeout=timeout, say=say,
            done_on_retry=lambda e: e.code() == KafkaError.RESOURCE_NOT_FOUND)
        store.remove(user)
        report.users_deleted.append(user)

    plan = acl_plan(topics, departments)
    present = _admin_request(
        admin_conf, lambda a, t: a.describe_acls(_ANY, request_timeout=t).result(),
        "listing ACLs", timeout=timeout, say=say)
    have = {_grant_of(b) for b in present}
    missing = [g for g in plan if g not in have]
    if missing:
        _admin_request(admin_conf, lambda a, t: _each(a.create_acls(
            [g.binding() for g in missing], request_timeout=t)),
            "creating ACLs", timeout=timeout, say=say)
        report.acls_created = len(missing)
    wanted = set(plan)
    stale = [b for b in present if _managed(b, topics) and _grant_of(b) not in wanted]
    if stale:
        filters = [AclBindingFilter(b.restype, b.name, b.resource_pattern_type, b.principal,
                                    b.host, b.operation, b.permission_type) for b in stale]
        _admin_request(admin_conf, lambda a, t: _each(a.delete_acls(
            filters, request_timeout=t)), "deleting ACLs", timeout=timeout,
            say=say)
        report.acls_deleted = len(stale)

    wait_on_every_broker(admin_conf, wanted, gone={_grant_of(b) for b in stale},
                         sign_ins=sign_ins, timeout=timeout, say=say)
    return report


def replication_of(settings: Settings, admin_conf: dict[str, object],
                   timeout: float = 30.0) -> int:
    """The copies of each topic created: ``ONEWINDOW_REPLICATION_FACTOR`` when set, else
    `onewindow.topics.replication_for` the live brokers the cluster lists (min(3, n), as
    `onewindow up --brokers N` sets): a generation provisioned on a three-broker cluster
    without the variable gets three copies, not one (a newcomer's finding, issue 17).
    Raises KafkaException when the cluster does not answer within ``timeout`` s."""
    if "replication_factor" in settings.model_fields_set:
        return settings.replication_factor
    brokers = AdminClient(dict(admin_conf)).list_topics(timeout=timeout).brokers
    return replication_for(max(1, len(brokers)))


def provision(settings: Settings, departments: Iterable[str], *, rotate: Iterable[str] = (),
              timeout: float = 30.0, wait: float = 30.0,
              say: Callable[[str], None] | None = None,
              tell: Callable[[str], None] | None = None,
              ) -> tuple[list[str], SecurityReport | None]:
    """Topics, then (on a secured cluster) principals and ACLs, for `settings`'s prefix.
    Returns the topics created and the security report (None on a PLAINTEXT cluster).

    First waits up to `wait` seconds for the broker to answer (with backoff, each failed
    attempt told through `say` in one line: onewindow.broker_wait); raises
    BrokerUnreachable (exit status 1, one line) when it does not, or when it stops
    answering midway. Every later step may take `timeout` seconds (a request sent again,
    the wait for every broker to apply the ACLs: `ensure_security`, which tells its
    retries and waits through `tell`); after that, BrokerUnreachable too."""
    departments = sorted(departments)
    topics = Topics(settings.topic_prefix)
    conf = producer_config(settings, ADMIN)
    wait_for_broker(conf, timeout=wait, say=say)
    try:
        created = ensure_topics(conf, plan(topics, departments, settings.partitions),
                                replication=replication_of(settings, conf, timeout),
                                timeout=timeout)
    except KafkaException as exc:
        err = exc.args[0] if exc.args else None
        raise BrokerUnreachable(f"Kafka on {settings.kafka_bootstrap} stopped answering: "
                                f"{err.str() if isinstance(err, KafkaError) else exc}") from exc
    if settings.kafka_security_protocol == "PLAINTEXT":
        return created, None
    report = ensure_security(conf, topics, departments, credential_store(settings),
                             rotate=rotate, timeout=timeout, say=tell)
    return created, report
