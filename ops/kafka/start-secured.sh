#!/usr/bin/env bash
# Start Kafka (KRaft, one combined broker+controller) secured exactly as onewindow's local
# broker (onewindow/kafka_local.py): SASL/SCRAM-SHA-512 on the client listener, SASL/PLAIN
# on the controller listener, Kafka's StandardAuthorizer with no access where no ACL
# matches, and one super user, the broker's own principal `admin`, whose SCRAM credential
# is written into the metadata log when the data directory is first formatted.
#
# docker-compose.yml runs it in the official apache/kafka image (entrypoint). Inputs:
#   KAFKA_ADMIN_PASSWORD_FILE  the broker's password (a compose secret; never in the env)
#   KAFKA_ADVERTISED_HOST      the name clients use (default: kafka)
#   KAFKA_DATA_DIR             log.dirs (default: /var/lib/kafka/data)
#   KAFKA_HOME                 the Kafka installation (default: /opt/kafka)
#   KAFKA_CLIENT_PORT / KAFKA_CONTROLLER_PORT (default 9092 / 9093)
#   KAFKA_CLUSTER_ID           fixed cluster id (default: a new one at first format)
# One node of a cluster (docker-compose.cluster.yml: three combined nodes, as
# onewindow.kafka_local.LocalKafkaCluster runs them):
#   KAFKA_NODE_ID              this node's id (default 1)
#   KAFKA_INITIAL_CONTROLLERS  every voter of the controller quorum, the same on each node:
#                              id@host:port:directory-id,... (ids from `kafka-storage.sh
#                              random-uuid`); the first format uses it (--initial-controllers)
#   KAFKA_CLUSTER_ID           then required, the same on each node
# Topics, the consumer offsets and the transaction state get min(3, nodes) replicas,
# min.insync.replicas 2 from three on (else 1), never an unclean leader election
# (onewindow.topics.replication_for / min_insync_for).
set -euo pipefail
home=${KAFKA_HOME:-/opt/kafka}
data=${KAFKA_DATA_DIR:-/var/lib/kafka/data}
host=${KAFKA_ADVERTISED_HOST:-kafka}
port=${KAFKA_CLIENT_PORT:-9092}
cport=${KAFKA_CONTROLLER_PORT:-9093}
conf=${KAFKA_CONFIG_DIR:-/tmp/onewindow-kafka}
pw=$(tr -d '\n' < "${KAFKA_ADMIN_PASSWORD_FILE:?set KAFKA_ADMIN_PASSWORD_FILE}")
case "$pw" in *[!A-Za-z0-9_-]*|"")
  echo "start-secured: the admin password must be non-empty [A-Za-z0-9_-] (SCRAM's parser splits on , and =)" >&2
  exit 2;;
esac
node=${KAFKA_NODE_ID:-1}
voters=${KAFKA_INITIAL_CONTROLLERS:-}
if [ -n "$voters" ]; then
  cid=${KAFKA_CLUSTER_ID:?a node of a cluster needs KAFKA_CLUSTER_ID, the same on every node}
  quorum="" count=0 member=no
  IFS=, read -ra entries <<< "$voters"
  for e in "${entries[@]}"; do
    if ! [[ "$e" =~ ^([0-9]+)@([^:@]+:[0-9]+):[A-Za-z0-9_-]{22}$ ]]; then
      echo "start-secured: KAFKA_INITIAL_CONTROLLERS entry '$e' is not id@host:port:directory-id" >&2
      exit 2
    fi
    [ "${BASH_REMATCH[1]}" = "$node" ] && member=yes
    quorum="${quorum:+$quorum,}${BASH_REMATCH[2]}"
    count=$((count + 1))
  done
  if [ "$member" != yes ]; then
    echo "start-secured: node $node is not in KAFKA_INITIAL_CONTROLLERS" >&2
    exit 2
  fi
  # the other controllers reach this one by its name: every interface, SASL/PLAIN
  controller_listener="CONTROLLER://:${cport}"
  advertised="CLIENT://${host}:${port},CONTROLLER://${host}:${cport}"
  first_format=(--initial-controllers "$voters")
else
  cid=${KAFKA_CLUSTER_ID:-}
  quorum="127.0.0.1:${cport}" count=1
  controller_listener="CONTROLLER://127.0.0.1:${cport}"
  advertised="CLIENT://${host}:${port}"
  first_format=(--standalone)
fi
rf=$(( count < 3 ? count : 3 ))
isr=$(( rf >= 3 ? 2 : 1 ))
umask 077
mkdir -p "$conf"
cat > "$conf/server.properties" <<PROPS
process.roles=broker,controller
node.id=${node}
listeners=CLIENT://:${port},${controller_listener}
advertised.listeners=${advertised}
controller.listener.names=CONTROLLER
controller.quorum.bootstrap.servers=${quorum}
inter.broker.listener.name=CLIENT
listener.security.protocol.map=CLIENT:SASL_PLAINTEXT,CONTROLLER:SASL_PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.client.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${pw}";
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="${pw}" user_admin="${pw}";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin
allow.everyone.if.no.acl.found=false
auto.create.topics.enable=false
log.dirs=${data}
log.retention.hours=-1
default.replication.factor=${rf}
min.insync.replicas=${isr}
unclean.leader.election.enable=false
offsets.topic.replication.factor=${rf}
transaction.state.log.replication.factor=${rf}
transaction.state.log.min.isr=${isr}
group.initial.rebalance.delay.ms=0
PROPS
# a client configuration for the healthcheck and for operators' kafka-*.sh tools
cat > "$conf/admin.properties" <<PROPS
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${pw}";
PROPS
if [ ! -f "$data/meta.properties" ]; then
  cid=${cid:-$("$home/bin/kafka-storage.sh" random-uuid)}
  "$home/bin/kafka-storage.sh" format "${first_format[@]}" -t "$cid" \
    -c "$conf/server.properties" --add-scram "SCRAM-SHA-512=[name=admin,password=${pw}]"
fi
exec "$home/bin/kafka-server-start.sh" "$conf/server.properties"
